"""SMTP delivery under the ledger: crashes, transient and permanent errors, dry runs."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter import delivery, send_digests, send_immediate
from publishers.newsletter.sender import SendError, SmtpSender
from publishers.newsletter.tables import NewsletterMail, Subscriber
from tests.publishers.newsletter.conftest import NOW, RecordingHandler, add_notice, add_subscriber

LATER = NOW + timedelta(hours=2)


def _no_sleep(_seconds: float) -> None:
    return None


def _ledger(store: Store) -> list[NewsletterMail]:
    with store.session() as session:
        return list(session.scalars(select(NewsletterMail).order_by(NewsletterMail.id)))


def _status(store: Store, address: str) -> str:
    with store.session() as session:
        return session.scalars(select(Subscriber.status).where(Subscriber.email == address)).one()


def test_crash_after_send_no_duplicate(
    store: Store, settings: Settings, smtp: RecordingHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscriber(store, "anna@example.org", frequency="daily")
    add_notice(store, "n1", "Tietyö päättyy")

    def crash(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt("simulated crash after the SMTP server accepted the message")

    monkeypatch.setattr(delivery, "_record_sent", crash)
    with pytest.raises(KeyboardInterrupt):
        send_digests(store, settings, "daily", now=LATER)
    monkeypatch.undo()

    rerun = send_digests(store, settings, "daily", now=LATER + timedelta(minutes=10))
    late = send_digests(store, settings, "daily", now=LATER + timedelta(hours=1))

    assert len(smtp.received) == 1
    assert rerun.sent == 0
    assert late.sent == 0
    assert [row.status for row in _ledger(store)] == ["handed-over"]


def test_daily_digest_once_per_day(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org", frequency="daily")
    add_notice(store, "n1", "Tietyö päättyy")
    send_digests(store, settings, "daily", now=LATER)
    add_notice(store, "n2", "Asuntotuki muuttuu", first_seen_at=LATER + timedelta(minutes=1))

    same_day = send_digests(store, settings, "daily", now=LATER + timedelta(hours=1))
    next_day = send_digests(store, settings, "daily", now=LATER + timedelta(days=1))

    assert same_day.sent == 0
    assert next_day.sent == 1
    assert "Asuntotuki muuttuu" in smtp.received[1].message().get_body(("plain",)).get_content()
    assert "Tietyö päättyy" not in smtp.received[1].message().get_body(("plain",)).get_content()


def test_digest_respects_preferences(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "fi@example.org", regions=["FI"], topics=["housing"])
    add_subscriber(store, "ee@example.org", regions=["EE-37"])
    add_subscriber(store, "weekly@example.org", frequency="weekly")
    add_notice(store, "n1", "Asuntotuki muuttuu", regions=["FI-18"], topics=["housing"])
    add_notice(store, "n2", "Tietyö päättyy", regions=["FI-18"], topics=["transport"])
    add_notice(
        store, "n3", "Teetööd lõpevad", regions=["EE-37"], topics=["transport"], language="et"
    )

    report = send_digests(store, settings, "daily", now=LATER)

    fi_text = smtp.messages_to("fi@example.org")[0].get_body(("plain",)).get_content()
    ee_text = smtp.messages_to("ee@example.org")[0].get_body(("plain",)).get_content()
    assert report.sent == 2
    assert "Asuntotuki muuttuu" in fi_text
    assert "Tietyö päättyy" not in fi_text
    assert "Teetööd lõpevad" in ee_text
    assert "Asuntotuki muuttuu" not in ee_text
    assert smtp.messages_to("weekly@example.org") == []


def test_digest_groups_by_region_and_topic(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Asuntotuki muuttuu", regions=["FI-18"], topics=["housing"])
    add_notice(store, "n2", "Tietyö päättyy", regions=["FI-18"], topics=["transport"])

    send_digests(store, settings, "daily", now=LATER)
    text = smtp.received[0].message().get_body(("plain",)).get_content()

    assert "== Uusimaa – Housing ==" in text
    assert "== Uusimaa – Transport ==" in text
    assert (
        text.index("Housing")
        < text.index("Asuntotuki")
        < text.index("Transport")
        < text.index("Tietyö")
    )


def test_empty_digest_not_sent(store: Store, settings: Settings, smtp: RecordingHandler) -> None:
    add_subscriber(store, "anna@example.org", topics=["asylum"])
    add_notice(store, "n1", "Tietyö päättyy")

    report = send_digests(store, settings, "daily", now=LATER)

    assert report.sent == 0
    assert smtp.received == []
    assert _ledger(store) == []


def test_withdrawn_notice_not_mailed(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    from noticeboard.store.tables import Notice

    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")
    with store.session() as session:
        session.get(Notice, "n1").withdrawn_at = NOW + timedelta(minutes=30)  # type: ignore[union-attr]

    report = send_digests(store, settings, "daily", now=LATER)

    assert report.sent == 0


def test_pending_subscriber_gets_nothing(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    from publishers.newsletter.subscribers import Preferences, sign_up

    with store.session() as session:
        sign_up(
            session,
            "pending@example.org",
            Preferences(frequency="immediate"),
            now=NOW - timedelta(days=1),
        )
    add_notice(store, "n1", "Tietyö päättyy")

    immediate = send_immediate(store, settings, now=LATER)
    daily = send_digests(store, settings, "daily", now=LATER)

    assert immediate.sent + daily.sent == 0
    assert smtp.received == []


def test_transient_error_retried(store: Store, settings: Settings, smtp: RecordingHandler) -> None:
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")
    smtp.data_replies = ["451 4.3.0 Try again later"]
    sender = SmtpSender(settings, sleep=_no_sleep)

    report = send_digests(store, settings, "daily", now=LATER, sender=sender)

    assert report.sent == 1
    assert len(smtp.received) == 1
    assert [row.status for row in _ledger(store)] == ["sent"]


def test_transient_exhausted_sent_next_run(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")
    smtp.data_replies = ["451 4.3.0 Try again later"] * 3
    first = send_digests(
        store, settings, "daily", now=LATER, sender=SmtpSender(settings, sleep=_no_sleep)
    )

    second = send_digests(store, settings, "daily", now=LATER + timedelta(minutes=30))

    assert first.retry == 1
    assert second.sent == 1
    assert len(smtp.received) == 1
    assert "Tietyö päättyy" in smtp.received[0].message().get_body(("plain",)).get_content()


def test_permanent_rejection_suspends(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "gone@example.org")
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")
    smtp.rcpt_replies["gone@example.org"] = "550 5.1.1 <gone@example.org>: mailbox unavailable"

    report = send_digests(
        store, settings, "daily", now=LATER, sender=SmtpSender(settings, sleep=_no_sleep)
    )
    rerun = send_digests(store, settings, "daily", now=LATER + timedelta(days=1))

    rows = _ledger(store)
    assert report.failed == 1
    assert report.suspended == 1
    assert report.sent == 1
    assert _status(store, "gone@example.org") == "suspended"
    assert rows[0].status == "failed"
    assert "550" in (rows[0].last_error or "")
    assert "gone@example.org" not in (rows[0].last_error or "")
    assert rerun.failed == 0


def test_permanent_data_error_not_suspended(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")
    smtp.data_replies = ["554 5.7.1 Message rejected as spam"]

    report = send_digests(store, settings, "daily", now=LATER)

    assert report.failed == 1
    assert _status(store, "anna@example.org") == "active"
    assert [row.status for row in _ledger(store)] == ["failed"]


def test_server_down_reports_retry(store: Store, settings: Settings) -> None:
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")
    closed = settings.replace(smtp_port=1)
    sender = SmtpSender(closed, sleep=_no_sleep, timeout=2)

    report = send_digests(store, closed, "daily", now=LATER, sender=sender)

    assert report.retry == 1
    assert [row.status for row in _ledger(store)] == ["retry"]


def test_sender_batches_connections(settings: Settings, smtp: RecordingHandler) -> None:
    from email.message import EmailMessage

    sender = SmtpSender(settings, batch_size=2)
    for number in range(5):
        message = EmailMessage()
        message["From"] = "news@news.example.org"
        message["To"] = f"reader{number}@example.org"
        message["Subject"] = f"Tiedote {number}"
        message.set_content("Hei")
        sender.send(message)
    sender.close()

    assert len(smtp.received) == 5


def test_send_error_is_transient_on_4xx(settings: Settings, smtp: RecordingHandler) -> None:
    from email.message import EmailMessage

    smtp.rcpt_replies["grey@example.org"] = "450 4.2.0 Greylisted"
    message = EmailMessage()
    message["From"] = "news@news.example.org"
    message["To"] = "grey@example.org"
    message["Subject"] = "Tiedote"
    message.set_content("Hei")

    with pytest.raises(SendError) as caught:
        SmtpSender(settings, sleep=_no_sleep, max_attempts=2).send(message)

    assert caught.value.permanent is False
    assert caught.value.recipient_rejected is False


def test_dry_run_writes_files(
    store: Store, settings: Settings, smtp: RecordingHandler, tmp_path: Path
) -> None:
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")

    report = send_digests(store, settings, "daily", now=LATER, dry_run_dir=tmp_path / "mails")
    real = send_digests(store, settings, "daily", now=LATER)

    files = sorted((tmp_path / "mails").glob("*.eml"))
    assert len(files) == 1
    assert report.files == files
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in files[0].read_bytes()
    assert real.sent == 1


def test_plain_http_base_url_warns(
    store: Store, settings: Settings, smtp: RecordingHandler, caplog: pytest.LogCaptureFixture
) -> None:
    add_subscriber(store, "anna@example.org")
    add_notice(store, "n1", "Tietyö päättyy")
    plain = settings.replace(public_base_url="http://news.example.org")

    send_digests(store, plain, "daily", now=LATER)

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("unsubscribe_url_not_https" in message for message in warnings)
    assert len(smtp.received) == 1
