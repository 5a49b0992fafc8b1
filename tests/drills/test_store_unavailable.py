"""Drill: the store goes away in the middle of a run, and the next run completes.

PostgreSQL: the database stops accepting connections and every open one is terminated with
`pg_terminate_backend` from another connection. SQLite: another process holds the file with
`BEGIN EXCLUSIVE` for longer than the store's busy timeout.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from noticeboard.store.engine import SQLITE_BUSY_TIMEOUT_SECONDS
from tests.drills.conftest import (
    RUN_TIMEOUT_SECONDS,
    Page,
    drill_items,
    pipeline_environment,
    rss,
    run_pipeline,
    start_pipeline,
    wait_until,
    write_catalog,
)
from tests.servers.platforms import MastodonServer, Received, Reply

pytestmark = pytest.mark.slow

ITEMS = 12


class SlowMastodon(MastodonServer):
    """The fake Mastodon, replying to each request after a pause so a run stays in publishing."""

    def handle(self, request: Received) -> Reply:
        time.sleep(0.3)
        return super().handle(request)


def _catalog(tmp_path: Path, feed_site) -> Path:
    feed_site.pages["/drill-store.xml"] = Page(rss(drill_items(feed_site.url, "store", ITEMS)))
    return write_catalog(tmp_path / "catalog.yaml", feed_site.url, {"drill-store": "/drill-store.xml"})


def _environment(database_url: str, tmp_path: Path, mastodon: MastodonServer) -> dict[str, str]:
    return pipeline_environment(
        database_url,
        tmp_path / "public",
        publishers="mastodon",
        mastodon_url=mastodon.url,
        mastodon_token=mastodon.token,
    )


def test_postgres_connection_dropped(tmp_path, feed_site, postgres_url):
    catalog = _catalog(tmp_path, feed_site)
    database = make_url(postgres_url).database
    admin = create_engine(make_url(postgres_url).set(database="postgres"), isolation_level="AUTOCOMMIT")

    with SlowMastodon(token="store-token") as mastodon:
        environment = _environment(postgres_url, tmp_path, mastodon)
        process = start_pipeline(catalog, environment, tmp_path)
        assert wait_until(lambda: len(mastodon.statuses) >= 1, RUN_TIMEOUT_SECONDS, process)
        with admin.connect() as connection:
            connection.execute(text(f'alter database "{database}" allow_connections false'))
            connection.execute(
                text("select pg_terminate_backend(pid) from pg_stat_activity where datname = :name and pid <> pg_backend_pid()"),
                {"name": database},
            )
        try:
            _, stderr = process.communicate(timeout=RUN_TIMEOUT_SECONDS)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'alter database "{database}" allow_connections true'))

        again = run_pipeline(catalog, environment, tmp_path)
        posted = len(mastodon.statuses)
    admin.dispose()

    assert process.returncode != 0
    assert again.returncode == 0, again.stderr[-3000:]
    assert posted == ITEMS
    assert database in stderr, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]


def test_sqlite_file_locked(tmp_path, feed_site):
    catalog = _catalog(tmp_path, feed_site)
    database_file = tmp_path / "noticeboard.db"
    database_url = f"sqlite:///{database_file}"

    with SlowMastodon(token="store-token") as mastodon:
        environment = _environment(database_url, tmp_path, mastodon)
        process = start_pipeline(catalog, environment, tmp_path)
        assert wait_until(lambda: len(mastodon.statuses) >= 1, RUN_TIMEOUT_SECONDS, process)

        blocker = sqlite3.connect(database_file, timeout=SQLITE_BUSY_TIMEOUT_SECONDS + 30, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            _, stderr = process.communicate(timeout=SQLITE_BUSY_TIMEOUT_SECONDS + RUN_TIMEOUT_SECONDS)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        again = run_pipeline(catalog, environment, tmp_path)
        posted = len(mastodon.statuses)

    assert again.returncode == 0, again.stderr[-3000:]
    assert posted == ITEMS
    assert process.returncode != 0, stderr[-3000:]
    assert str(database_file) in stderr, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
