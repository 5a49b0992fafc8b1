"""The hand-over checkpoint of SMTP delivery: what a crash leaves and what later runs send.

A crash is simulated by raising KeyboardInterrupt at a chosen step. The sender then closes its
socket as the operating system would for a killed process, and the SMTP server discards a message
whose data did not end.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import threading
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter import delivery, send_digests, send_immediate
from publishers.newsletter.digests import INTENT_STALE_AFTER
from publishers.newsletter.sender import END_OF_DATA, SmtpSender, dot_stuffed
from publishers.newsletter.tables import NewsletterMail, NewsletterMailItem
from tests.publishers.newsletter.conftest import (
    NOW,
    RecordingHandler,
    _free_port,
    add_notice,
    add_subscriber,
)

FIRST = NOW + timedelta(minutes=5)
RERUN = FIRST + timedelta(minutes=5)
LATE = FIRST + INTENT_STALE_AFTER + timedelta(minutes=1)


def _no_sleep(_seconds: float) -> None:
    return None


def _crash(*_args: object, **_kwargs: object) -> None:
    raise KeyboardInterrupt("simulated kill")


def _ledger(store: Store) -> list[NewsletterMail]:
    with store.session() as session:
        return list(session.scalars(select(NewsletterMail).order_by(NewsletterMail.id)))


def _items(store: Store) -> list[tuple[str, str, int | None]]:
    with store.session() as session:
        rows = session.scalars(select(NewsletterMailItem).order_by(NewsletterMailItem.id))
        return [(item.notice_id, item.state, item.mail_id) for item in rows]


def _message(subject: str = "Tiedote", text: str = "Hei\n") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "news@news.example.org"
    message["To"] = "anna@example.org"
    message["Subject"] = subject
    message.set_content(text)
    return message


def _immediate_setup(store: Store) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    add_notice(store, "n1", "Tietyö päättyy")


def test_dot_stuffed_quotes_data() -> None:
    assert dot_stuffed(b"a\nb\r\n.c\r.d") == b"a\r\nb\r\n..c\r\n..d\r\n"
    assert dot_stuffed(b".\r\n") == b"..\r\n"
    assert dot_stuffed(b"") == b"\r\n"


def test_checkpoint_between_data_and_end_line(
    settings: Settings, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[Any] = []
    original_send = smtplib.SMTP.send

    def recording_send(self: smtplib.SMTP, data: Any) -> None:
        events.append(data)
        original_send(self, data)

    def checkpoint() -> None:
        events.append(("checkpoint", len(smtp.received)))

    monkeypatch.setattr(smtplib.SMTP, "send", recording_send)
    with SmtpSender(settings, sleep=_no_sleep) as sender:
        sender.send(_message("Checkpoint", "Hei\n.piste rivin alussa\n"), checkpoint=checkpoint)

    position = events.index(("checkpoint", 0))
    data = events[position - 1]
    assert isinstance(data, bytes)
    assert b"Subject: Checkpoint" in data
    assert data.endswith(b"\r\n")
    assert b"\r\n..piste rivin alussa\r\n" in data
    assert events[position + 1] == END_OF_DATA
    assert len(smtp.received) == 1
    assert b"\r\n.piste rivin alussa\r\n" in smtp.received[0].data


def test_checkpoint_error_discards_message(settings: Settings, smtp: RecordingHandler) -> None:
    sender = SmtpSender(settings, sleep=_no_sleep)

    with pytest.raises(KeyboardInterrupt):
        sender.send(_message("Dropped"), checkpoint=_crash)
    sender.send(_message("Kept"))
    sender.close()

    assert [item.message()["Subject"] for item in smtp.received] == ["Kept"]


def test_kill_before_handover_resent_once(
    store: Store, settings: Settings, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    _immediate_setup(store)
    monkeypatch.setattr(delivery, "_record_handover", _crash)
    with pytest.raises(KeyboardInterrupt):
        send_immediate(store, settings, now=FIRST)
    monkeypatch.undo()
    after_kill = [row.status for row in _ledger(store)]

    rerun = send_immediate(store, settings, now=RERUN)
    late = send_immediate(store, settings, now=LATE)
    later = send_immediate(store, settings, now=LATE + timedelta(minutes=30))

    rows = _ledger(store)
    assert after_kill == ["intent"]
    assert rerun.sent == 0
    assert rerun.skipped == 0
    assert late.sent == 1
    assert later.sent == 0
    assert len(smtp.received) == 1
    assert [row.status for row in rows] == ["sent"]
    assert rows[0].attempts == 2
    assert _items(store) == [("n1", "mailed", rows[0].id)]


def test_kill_before_handover_digest_resent(
    store: Store, settings: Settings, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscriber(store, "anna@example.org", frequency="daily")
    add_notice(store, "n1", "Tietyö päättyy")
    monkeypatch.setattr(delivery, "_record_handover", _crash)
    with pytest.raises(KeyboardInterrupt):
        send_digests(store, settings, "daily", now=FIRST)
    monkeypatch.undo()

    rerun = send_digests(store, settings, "daily", now=RERUN)
    late = send_digests(store, settings, "daily", now=LATE)

    assert rerun.sent == 0
    assert late.sent == 1
    assert len(smtp.received) == 1
    assert [row.status for row in _ledger(store)] == ["sent"]


def test_kill_after_handover_not_resent(
    store: Store, settings: Settings, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    _immediate_setup(store)
    monkeypatch.setattr(delivery, "_record_sent", _crash)
    with pytest.raises(KeyboardInterrupt):
        send_immediate(store, settings, now=FIRST)
    monkeypatch.undo()

    late = send_immediate(store, settings, now=LATE)

    assert late.sent == 0
    assert len(smtp.received) == 1
    assert [row.status for row in _ledger(store)] == ["handed-over"]


def test_kill_before_end_line_loses_mail(
    store: Store, settings: Settings, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The documented window: the hand-over is committed, the end line never written.
    _immediate_setup(store)
    record_handover = delivery._record_handover

    def commit_then_crash(*args: Any, **kwargs: Any) -> None:
        record_handover(*args, **kwargs)
        raise KeyboardInterrupt("simulated kill after the hand-over commit")

    monkeypatch.setattr(delivery, "_record_handover", commit_then_crash)
    with pytest.raises(KeyboardInterrupt):
        send_immediate(store, settings, now=FIRST)
    monkeypatch.undo()

    late = send_immediate(store, settings, now=LATE)

    assert late.sent == 0
    assert smtp.received == []
    assert [row.status for row in _ledger(store)] == ["handed-over"]


def test_4xx_after_end_line_retry(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    _immediate_setup(store)
    smtp.data_replies = ["451 4.3.0 Try again later"] * 3
    sender = SmtpSender(settings, sleep=_no_sleep)

    first = send_immediate(store, settings, now=FIRST, sender=sender)
    after_first = [(row.status, row.last_error) for row in _ledger(store)]
    items_after_first = _items(store)
    second = send_immediate(store, settings, now=RERUN, sender=sender)
    sender.close()

    assert first.retry == 1
    assert after_first == [("retry", "SMTP server replied 451: 4.3.0 Try again later")]
    assert items_after_first == []
    assert second.sent == 1
    assert len(smtp.received) == 1
    assert [row.status for row in _ledger(store)] == ["sent"]


def test_4xx_retry_resets_intent(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    # Between a rejected attempt and the retry the row is `intent` again, so a kill during the
    # backoff leaves a mail that a later run sends.
    _immediate_setup(store)
    smtp.data_replies = ["451 4.3.0 Try again later"]
    during_backoff: list[str] = []

    def record_status(_seconds: float) -> None:
        during_backoff.extend(row.status for row in _ledger(store))

    sender = SmtpSender(settings, sleep=record_status)
    report = send_immediate(store, settings, now=FIRST, sender=sender)
    sender.close()

    assert during_backoff == ["intent"]
    assert report.sent == 1
    assert len(smtp.received) == 1
    assert [row.status for row in _ledger(store)] == ["sent"]


def test_5xx_after_end_line_failed(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    _immediate_setup(store)
    smtp.data_replies = ["554 5.7.1 Message rejected as spam"]

    first = send_immediate(store, settings, now=FIRST)
    late = send_immediate(store, settings, now=LATE)

    rows = _ledger(store)
    assert first.failed == 1
    assert late.sent == 0
    assert smtp.received == []
    assert [row.status for row in rows] == ["failed"]
    assert _items(store) == [("n1", "mailed", rows[0].id)]


class SilentAfterDataHandler(RecordingHandler):
    """Stores each message at the end of its data, then never replies."""

    async def handle_DATA(self, server, session, envelope):  # noqa: N802, ANN001, ANN201
        await super().handle_DATA(server, session, envelope)
        await asyncio.sleep(30)
        return "250 Message accepted"


@pytest.fixture
def silent_server(settings: Settings) -> Iterator[tuple[SilentAfterDataHandler, Settings]]:
    handler = SilentAfterDataHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield handler, settings.replace(smtp_port=controller.port)
    finally:
        controller.stop()


def test_no_reply_after_end_line_kept(
    store: Store,
    silent_server: tuple[SilentAfterDataHandler, Settings],
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler, silent_settings = silent_server
    _immediate_setup(store)
    sender = SmtpSender(silent_settings, sleep=_no_sleep, timeout=0.5)

    with caplog.at_level(logging.WARNING, logger=delivery.__name__):
        first = send_immediate(store, silent_settings, now=FIRST, sender=sender)
    late = send_immediate(store, silent_settings, now=LATE, sender=sender)
    sender.close()

    rows = _ledger(store)
    warnings = [record.getMessage() for record in caplog.records]
    assert first.sent == 1
    assert late.sent == 0
    assert len(handler.received) == 1
    assert [row.status for row in rows] == ["handed-over"]
    assert "may have accepted" in (rows[0].last_error or "")
    assert any(
        message.startswith(
            f"mail outcome unknown subscriber={rows[0].subscriber_id} kind=immediate "
            f"period=n1 mail={rows[0].id} "
        )
        for message in warnings
    )


def test_claim_taken_over_not_handed_over(
    store: Store, settings: Settings, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A run slower than INTENT_STALE_AFTER: while it sits at the checkpoint, a later run takes
    # the mail over and sends it.
    _immediate_setup(store)
    record_handover = delivery._record_handover
    reports = []

    def later_run_first(*args: Any, **kwargs: Any) -> None:
        monkeypatch.setattr(delivery, "_record_handover", record_handover)
        reports.append(send_immediate(store, settings, now=LATE))
        record_handover(*args, **kwargs)

    monkeypatch.setattr(delivery, "_record_handover", later_run_first)
    slow = send_immediate(store, settings, now=FIRST)

    rows = _ledger(store)
    assert len(reports) == 1
    assert reports[0].sent == 1
    assert slow.sent == 0
    assert slow.skipped == 1
    assert len(smtp.received) == 1
    assert [(row.status, row.attempts) for row in rows] == [("sent", 2)]


def test_concurrent_takeover_sends_once(
    postgres_store: Store,
    settings: Settings,
    smtp: RecordingHandler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _immediate_setup(postgres_store)
    monkeypatch.setattr(delivery, "_record_handover", _crash)
    with pytest.raises(KeyboardInterrupt):
        send_immediate(postgres_store, settings, now=FIRST)
    monkeypatch.undo()

    # Both runs have planned the mail before either releases the stale intent.
    both_planned = threading.Barrier(2, timeout=30)
    release = delivery._release_stale_intents

    def release_together(*args: Any, **kwargs: Any) -> int:
        both_planned.wait()
        return release(*args, **kwargs)

    monkeypatch.setattr(delivery, "_release_stale_intents", release_together)
    reports: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            reports.append(send_immediate(postgres_store, settings, now=LATE))
        except BaseException as error:  # noqa: BLE001 (reported by the asserts below)
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(report.sent for report in reports) == [0, 1]
    assert sorted(report.skipped for report in reports) == [0, 1]
    assert len(smtp.received) == 1
    assert [row.status for row in _ledger(postgres_store)] == ["sent"]
