"""Drill: four pipeline processes at once over the same sources on one PostgreSQL database."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from noticeboard.store import open_store
from noticeboard.store.tables import Delivery, Notice, NoticeEvent, NoticeVersion, RawItem
from tests.drills.conftest import (
    RUN_TIMEOUT_SECONDS,
    Page,
    drill_items,
    pipeline_environment,
    rss,
    start_pipeline,
    write_catalog,
)
from tests.servers.platforms import MastodonServer, WebhookReceiver

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

PROCESSES = 4
SOURCES = ("drill-p", "drill-q", "drill-r")
ITEMS_PER_SOURCE = 6
MARKER = re.compile(r"race-[pqr]-\d{3}")


def _count(session, statement) -> int:
    return int(session.scalar(statement) or 0)


def test_four_runs_at_once(tmp_path, feed_site, postgres_url):
    feeds = {}
    for source_id in SOURCES:
        path = f"/{source_id}.xml"
        feed_site.pages[path] = Page(rss(drill_items(feed_site.url, f"race-{source_id[-1]}", ITEMS_PER_SOURCE)))
        feeds[source_id] = path
    catalog = write_catalog(tmp_path / "catalog.yaml", feed_site.url, feeds)
    open_store(postgres_url).dispose()  # migrate once, as a deployment does before starting workers

    with MastodonServer(token="race-token") as mastodon, WebhookReceiver(secret="race-secret") as webhook:
        environment = pipeline_environment(
            postgres_url,
            tmp_path / "public",
            publishers="mastodon,webhook",
            mastodon_url=mastodon.url,
            mastodon_token=mastodon.token,
            webhook_url=f"{webhook.url}/hook",
            webhook_secret=webhook.secret,
        )
        processes = [start_pipeline(catalog, environment, tmp_path) for _ in range(PROCESSES)]
        outcomes = [process.communicate(timeout=RUN_TIMEOUT_SECONDS) for process in processes]
        statuses = [status["status"] for status in mastodon.statuses.values()]
        webhook_items = [entry["item"]["id"] for entry in webhook.accepted.values()]

    total = len(SOURCES) * ITEMS_PER_SOURCE
    for process, (_, stderr) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, stderr[-3000:]
        assert "deadlock" not in stderr.lower(), stderr[-3000:]

    store = open_store(postgres_url)
    with store.session() as session:
        notices = _count(session, select(func.count()).select_from(Notice))
        guids = _count(session, select(func.count(func.distinct(Notice.guid))))
        versions = _count(session, select(func.count()).select_from(NoticeVersion))
        newest_version = _count(session, select(func.max(Notice.version)))
        created_events = _count(session, select(func.count()).select_from(NoticeEvent).where(NoticeEvent.kind == "created"))
        raw_items = _count(session, select(func.count()).select_from(RawItem))
        sent = dict(session.execute(select(Delivery.channel, func.count()).where(Delivery.status == "sent").group_by(Delivery.channel)).all())
    store.dispose()

    markers = [marker for status in statuses for marker in set(MARKER.findall(status))]
    assert notices == total
    assert guids == total
    assert versions <= total
    assert newest_version == 1
    assert created_events == total
    assert raw_items == total
    assert sent == {"mastodon": total, "webhook": total}
    assert len(markers) == total
    assert len(set(markers)) == total
    assert len(webhook_items) == total
    assert len(set(webhook_items)) == total
