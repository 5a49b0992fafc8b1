"""Drill: the pipeline is killed with SIGKILL while publishing, then run again.

A killed run leaves a delivery intent behind for the notice it was posting. The ledger takes such
an intent over only after `INTENT_STALE_AFTER`, so the last run is a small script over `Runner`
whose clock is set past that interval.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from noticeboard.store import open_store
from noticeboard.store.tables import Notice
from publishers.ledger import INTENT_STALE_AFTER
from publishers.newsletter.subscribers import Preferences, confirm, sign_up
from publishers.newsletter.tables import NewsletterMail
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
from tests.servers.platforms import MastodonServer, Received, Reply, WebhookReceiver

pytestmark = pytest.mark.slow

SOURCES = ("drill-a", "drill-b")
ITEMS_PER_SOURCE = 8
SUBSCRIBERS = ("first@example.org", "second@example.org")
MARKER = re.compile(r"kill-[ab]-\d{3}")

LATE_RUN = """
import sys
from datetime import datetime, timedelta, timezone
from noticeboard.pipeline import Runner

runner = Runner.from_env(sys.argv[1])
runner.run(now=datetime.now(timezone.utc) + timedelta(seconds=float(sys.argv[2])))
runner.close()
"""


class SlowMastodon(MastodonServer):
    """The fake Mastodon, replying to each request after `delay` seconds."""

    delay = 0.15

    def handle(self, request: Received) -> Reply:
        time.sleep(self.delay)
        return super().handle(request)


def _setup(tmp_path: Path, feed_site, mail_sink, mastodon, webhook) -> tuple[Path, dict[str, str], str]:
    feeds = {}
    for source_id in SOURCES:
        path = f"/{source_id}.xml"
        items = drill_items(feed_site.url, f"kill-{source_id[-1]}", ITEMS_PER_SOURCE)
        feed_site.pages[path] = Page(rss(items))
        feeds[source_id] = path
    catalog = write_catalog(tmp_path / "catalog.yaml", feed_site.url, feeds)

    database_url = f"sqlite:///{tmp_path / 'noticeboard.db'}"
    store = open_store(database_url)
    with store.session() as session:
        for address in SUBSCRIBERS:
            subscriber = sign_up(session, address, Preferences(language="fi", frequency="immediate"), now=datetime.now(UTC))
            confirm(subscriber.subscriber, now=datetime.now(UTC))
    store.dispose()

    environment = pipeline_environment(
        database_url,
        tmp_path / "public",
        publishers="mastodon,webhook",
        mastodon_url=mastodon.url,
        mastodon_token=mastodon.token,
        webhook_url=f"{webhook.url}/hook",
        webhook_secret=webhook.secret,
        smtp_host="127.0.0.1",
        smtp_port=str(mail_sink.port),
        immediate_daily_limit="1000",
    )
    return catalog, environment, database_url


def _kill_when(process: subprocess.Popen[str], condition, description: str) -> None:
    reached = wait_until(condition, RUN_TIMEOUT_SECONDS, process)
    assert process.poll() is None, f"the run ended before {description}: {process.communicate()[1][-3000:]}"
    assert reached, f"timed out waiting for {description}"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def _late_run(catalog: Path, environment: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    shift = INTENT_STALE_AFTER.total_seconds() + 60
    return subprocess.run(
        [sys.executable, "-c", LATE_RUN, str(catalog), str(shift)],
        cwd=cwd, env=environment, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS, check=False,
    )


def _stored(database_url: str) -> list[tuple[str, int]]:
    store = open_store(database_url)
    with store.session() as session:
        rows = [(row.id, row.version) for row in session.scalars(select(Notice))]
    store.dispose()
    return rows


def _markers() -> list[str]:
    return [f"kill-{source_id[-1]}-{number:03d}" for source_id in SOURCES for number in range(ITEMS_PER_SOURCE)]


def _statuses_per_marker(mastodon: MastodonServer) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status in mastodon.statuses.values():
        for marker in set(MARKER.findall(status["status"])):
            counts[marker] = counts.get(marker, 0) + 1
    return counts


def _mails_per_marker(mail_sink) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for mail in mail_sink.messages:
        for marker in set(MARKER.findall(mail.text())):
            for recipient in mail.recipients:
                counts[(recipient, marker)] = counts.get((recipient, marker), 0) + 1
    return counts


def test_kill_during_social_posts(tmp_path, feed_site, mail_sink):
    with SlowMastodon(token="drill-token") as mastodon, WebhookReceiver(secret="drill-secret") as webhook:
        catalog, environment, database_url = _setup(tmp_path, feed_site, mail_sink, mastodon, webhook)

        first = start_pipeline(catalog, environment, tmp_path)
        _kill_when(first, lambda: len(mastodon.statuses) >= 3, "three Mastodon statuses")
        posted_before_kill = len(mastodon.statuses)

        second = run_pipeline(catalog, environment, tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        late = _late_run(catalog, environment, tmp_path)
        assert late.returncode == 0, late.stderr[-3000:]

        stored = _stored(database_url)

    total = len(SOURCES) * ITEMS_PER_SOURCE
    mails = _mails_per_marker(mail_sink)
    assert 3 <= posted_before_kill < total
    assert len(stored) == total
    assert len(mastodon.statuses) == total
    assert _statuses_per_marker(mastodon) == dict.fromkeys(_markers(), 1)
    assert len(webhook.accepted) == total
    assert len({entry["item"]["id"] for entry in webhook.accepted.values()}) == total
    assert len(mails) == total * len(SUBSCRIBERS)
    assert set(mails.values()) == {1}


def test_kill_during_mail_never_duplicates(tmp_path, feed_site, mail_sink):
    mail_sink.delay = 0.2
    with SlowMastodon(token="drill-token") as mastodon, WebhookReceiver(secret="drill-secret") as webhook:
        mastodon.delay = 0.0
        catalog, environment, database_url = _setup(tmp_path, feed_site, mail_sink, mastodon, webhook)

        # Immediate mails go out from the run after the one that stored the notices, because a
        # run selects notices first seen before its own start time.
        first = run_pipeline(catalog, environment, tmp_path)
        assert first.returncode == 0, first.stderr[-3000:]
        mailing = start_pipeline(catalog, environment, tmp_path)
        _kill_when(mailing, lambda: len(mail_sink.messages) >= 2, "two mails")

        second = run_pipeline(catalog, environment, tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        late = _late_run(catalog, environment, tmp_path)
        assert late.returncode == 0, late.stderr[-3000:]

        store = open_store(database_url)
        with store.session() as session:
            intents = session.scalar(select(func.count()).select_from(NewsletterMail).where(NewsletterMail.status == "intent"))
        store.dispose()

    total = len(SOURCES) * ITEMS_PER_SOURCE
    mails = _mails_per_marker(mail_sink)
    assert set(mails.values()) == {1}
    # The mail ledger is at most once: a kill between recording the intent and the SMTP
    # transaction loses that mail, and the ledger keeps its `intent` row as the record.
    assert len(mails) + intents == total * len(SUBSCRIBERS)
    assert len(mastodon.statuses) == total
