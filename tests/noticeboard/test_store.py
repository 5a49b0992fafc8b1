"""Storage: time zones survive both backends, migrations match the tables."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select

import noticeboard.store.all_tables  # noqa: F401
from noticeboard.store import Store, open_store
from noticeboard.store.tables import Base, Notice

HELSINKI_WINTER = timezone(timedelta(hours=2))


def _add_notice(store: Store, published: datetime) -> None:
    now = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)
    with store.session() as session:
        session.add(
            Notice(
                id="n1",
                source_id="s1",
                title="Tiedote",
                published_at=published,
                first_seen_at=now,
                changed_at=now,
                content_hash="0" * 64,
            )
        )


def _check_offset_kept(store: Store) -> None:
    _add_notice(store, datetime(2026, 3, 4, 10, 15, tzinfo=HELSINKI_WINTER))

    with store.session() as session:
        stored = session.scalars(select(Notice.published_at)).one()
        later = session.scalars(
            select(Notice).where(Notice.published_at >= datetime(2026, 3, 4, 9, 0, tzinfo=timezone.utc))
        ).all()

    assert stored == datetime(2026, 3, 4, 8, 15, tzinfo=timezone.utc)
    assert stored.tzinfo is not None
    assert later == []


def test_sqlite_keeps_instant(store: Store) -> None:
    _check_offset_kept(store)


@pytest.mark.postgres
def test_postgres_keeps_instant(postgres_store: Store) -> None:
    _check_offset_kept(postgres_store)


def test_naive_datetime_rejected(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        _add_notice(store, datetime(2026, 3, 4, 10, 15))


def _assert_migrations_match(url: str) -> None:
    opened = open_store(url)
    with opened.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        differences = compare_metadata(context, Base.metadata)
    opened.dispose()
    assert differences == []


def test_sqlite_migrations_match_tables(sqlite_url: str) -> None:
    _assert_migrations_match(sqlite_url)


@pytest.mark.postgres
def test_postgres_migrations_match_tables(postgres_url: str) -> None:
    _assert_migrations_match(postgres_url)
