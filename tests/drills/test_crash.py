"""Drill: the pipeline is killed with SIGKILL while publishing, then run again.

A killed run leaves a delivery intent behind for the notice it was posting. The ledger takes such
an intent over only after `INTENT_STALE_AFTER`, so the last run is a small script over `Runner`
whose clock is set past that interval.
"""

from __future__ import annotations

import asyncio
import email
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from noticeboard.store import open_store
from noticeboard.store.tables import Notice
from publishers.ledger import INTENT_STALE_AFTER
from publishers.newsletter.subscribers import Preferences, confirm, sign_up
from publishers.newsletter.tables import NewsletterMail
from tests.drills.conftest import (
    RUN_TIMEOUT_SECONDS,
    MailSink,
    Page,
    ReceivedMail,
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


class HandOverSink(MailSink):
    """The SMTP sink of the mail drill, which stores a message as soon as its data ends.

    A mail server commits a message when the data ends and replies afterwards, so a client killed
    while waiting for the reply has still delivered. `rcpt_delay` delays each RCPT TO reply and
    `reply_delay` each reply to the end of the data, so that a kill can land at either step.
    """

    def __init__(self) -> None:
        super().__init__()
        self.rcpt_delay = 0.0
        self.reply_delay = 0.0
        self.recipients_seen = 0

    async def handle_RCPT(  # noqa: N802 (aiosmtpd hook)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self.recipients_seen += 1
        if self.rcpt_delay:
            await asyncio.sleep(self.rcpt_delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook)
        message = email.message_from_bytes(envelope.content)
        self.messages.append(ReceivedMail(list(envelope.rcpt_tos), message))
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        return "250 Message accepted for delivery"


@pytest.fixture
def hand_over_sink() -> Iterator[HandOverSink]:
    sink = HandOverSink().start()
    yield sink
    sink.stop()


@pytest.mark.parametrize("moment", ["before-hand-over", "after-hand-over"])
def test_kill_during_mail_delivers_exactly_once(tmp_path, feed_site, hand_over_sink, moment):
    sink = hand_over_sink
    with (
        SlowMastodon(token="drill-token") as mastodon,
        WebhookReceiver(secret="drill-secret") as webhook,
    ):
        mastodon.delay = 0.0
        catalog, environment, database_url = _setup(tmp_path, feed_site, sink, mastodon, webhook)

        # The run that stores the notices also mails them to the immediate subscribers.
        mailing = start_pipeline(catalog, environment, tmp_path)
        if moment == "before-hand-over":
            # The run has recorded the intent of its third mail and waits for the RCPT TO reply.
            sink.rcpt_delay = 0.5
            _kill_when(mailing, lambda: sink.recipients_seen >= 3, "the third RCPT TO")
            assert len(sink.messages) == 2
        else:
            # The run has handed its second mail over and waits for the reply to its data.
            sink.reply_delay = 0.5
            _kill_when(mailing, lambda: len(sink.messages) >= 2, "the end of the second data")
            assert sink.recipients_seen == 2
        sink.rcpt_delay = sink.reply_delay = 0.0

        second = run_pipeline(catalog, environment, tmp_path)
        assert second.returncode == 0, second.stderr[-3000:]
        late = _late_run(catalog, environment, tmp_path)
        assert late.returncode == 0, late.stderr[-3000:]

        store = open_store(database_url)
        with store.session() as session:
            statuses = dict(
                session.execute(
                    select(NewsletterMail.status, func.count()).group_by(NewsletterMail.status)
                ).all()
            )
        store.dispose()

    total = len(SOURCES) * ITEMS_PER_SOURCE
    expected = {(address, marker): 1 for address in SUBSCRIBERS for marker in _markers()}
    assert _mails_per_marker(sink) == expected
    assert "intent" not in statuses
    assert sum(statuses.values()) == total * len(SUBSCRIBERS)
    if moment == "before-hand-over":
        # The killed run's third mail was released and sent again by the late run.
        assert statuses == {"sent": total * len(SUBSCRIBERS)}
    else:
        # The server stored the killed run's second mail, which never got its reply recorded.
        assert statuses == {"sent": total * len(SUBSCRIBERS) - 1, "handed-over": 1}
    assert len(mastodon.statuses) == total
