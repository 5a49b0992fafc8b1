"""Fixtures of the publisher tests: a factory of stored, ready notices."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from noticeboard.catalog import Catalog, Source
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeTag, Translation

BASE_TIME = datetime(2026, 3, 4, 8, 0, tzinfo=UTC)

AddNotice = Callable[..., str]


def add_notice(
    store: Store,
    notice_id: str,
    *,
    source_id: str = "fi-city",
    title: str | None = None,
    language: str = "fi",
    regions: Iterable[str] = ("FI",),
    topics: Iterable[str] = ("roadworks",),
    published: datetime | None = None,
    minutes: int = 0,
    stage: str = "ready",
    withdrawn: bool = False,
    duplicate_group: str | None = None,
    variant_group: str | None = None,
    translations: dict[str, str] | None = None,
    body_html: str = "<p>Tie suljetaan <b>maanantaina</b>.</p>",
    body_text: str = "Tie suljetaan maanantaina.",
    url: str | None = "https://city.example.fi/tiedotteet/{id}",
) -> str:
    """Store one notice with tags and finished translations; returns its id."""
    moment = published if published is not None else BASE_TIME + timedelta(minutes=minutes)
    with store.session() as session:
        session.add(
            Notice(
                id=notice_id,
                source_id=source_id,
                url=url.format(id=notice_id) if url else None,
                title=title or f"Tiedote {notice_id}",
                summary_html="<p>Tie suljetaan.</p>",
                summary_text="Tie suljetaan.",
                body_html=body_html,
                body_text=body_text,
                published_at=moment,
                published_precision="datetime",
                first_seen_at=moment,
                changed_at=moment,
                language=language,
                content_hash=hashlib.sha256(notice_id.encode()).hexdigest(),
                stage=stage,
                withdrawn_at=moment if withdrawn else None,
                duplicate_group=duplicate_group,
                variant_group=variant_group,
            )
        )
        session.flush()
        for region in regions:
            session.add(NoticeTag(notice_id=notice_id, kind="region", value=region, rule="test"))
        for topic in topics:
            session.add(NoticeTag(notice_id=notice_id, kind="topic", value=topic, rule="test"))
        for target, translated_title in (translations or {}).items():
            session.add(
                Translation(
                    notice_id=notice_id,
                    language=target,
                    version=1,
                    status="done",
                    provider="fake",
                    title=translated_title,
                    summary_text="The road is closed.",
                    summary_html="<p>The road is closed.</p>",
                    body_text="The road is closed on Monday.",
                    body_html="<p>The road is closed on <b>Monday</b>.</p>",
                    updated_at=moment,
                )
            )
    return notice_id


def new_version(store: Store, notice_id: str, title: str, when: datetime) -> None:
    """Give a stored notice a new version with another title, as normalisation does."""
    with store.session() as session:
        session.execute(
            update(Notice)
            .where(Notice.id == notice_id)
            .values(title=title, version=Notice.version + 1, updated_at=when, changed_at=when)
        )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a small page size and the output in the test's folder."""
    return Settings(
        output_dir=tmp_path / "public",
        public_base_url="https://noticeboard.example",
        feed_page_size=3,
        translation_targets=("en",),
    )


@pytest.fixture
def catalog(tmp_path: Path) -> Catalog:
    """A one-source catalog naming the authority of the test notices."""
    source = Source(
        id="fi-city",
        authority="Esimerkkikaupunki",
        country="FI",
        regions=("FI",),
        languages=("fi",),
        timezone="Europe/Helsinki",
        kind="rss",
        urls=("https://city.example.fi/rss.xml",),
    )
    return Catalog(path=tmp_path / "sources.yaml", sources={source.id: source})


@pytest.fixture
def make_notice(store: Store) -> Callable[..., str]:
    """Store a ready notice in the test store: `make_notice("n1", regions=("SE",))`."""

    def make(notice_id: str, **fields: Any) -> str:
        return add_notice(store, notice_id, **fields)

    return make
