"""Immediate mails: matching notices, the daily limit and deferral to the digest."""

from __future__ import annotations

from datetime import timedelta

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter import send_digests, send_immediate
from tests.publishers.newsletter.conftest import NOW, RecordingHandler, add_notice, add_subscriber


def test_immediate_matches_preferences(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(
        store, "anna@example.org", frequency="immediate", regions=["FI"], topics=["transport"]
    )
    add_notice(store, "n1", "Tietyö päättyy", regions=["FI-18"], topics=["transport"])
    add_notice(store, "n2", "Asuntotuki muuttuu", regions=["FI-18"], topics=["housing"])
    add_notice(
        store, "n3", "Vägarbetet avslutas", regions=["SE-AB"], topics=["transport"], language="sv"
    )

    report = send_immediate(store, settings, now=NOW + timedelta(minutes=5))

    subjects = [message["Subject"] for message in smtp.messages_to("anna@example.org")]
    assert report.sent == 1
    assert subjects == ["Tietyö päättyy"]


def test_immediate_rerun_sends_nothing(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    add_notice(store, "n1", "Tietyö päättyy")

    send_immediate(store, settings, now=NOW + timedelta(minutes=5))
    second = send_immediate(store, settings, now=NOW + timedelta(minutes=10))

    assert second.sent == 0
    assert len(smtp.received) == 1


def test_immediate_skips_unready_and_old(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    add_notice(store, "draft", "Luonnos", stage="translated")
    add_notice(store, "old", "Vanha", first_seen_at=NOW - timedelta(days=10))

    report = send_immediate(store, settings, now=NOW + timedelta(minutes=5))

    assert report.sent == 0
    assert smtp.received == []


def test_immediate_limit_defers_rest(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    for number in range(4):
        add_notice(
            store, f"n{number}", f"Tiedote {number}", first_seen_at=NOW + timedelta(minutes=number)
        )

    report = send_immediate(store, settings, now=NOW + timedelta(minutes=30))

    messages = smtp.messages_to("anna@example.org")
    limit_notes = [
        m for m in messages if "last immediate mail today" in m.get_body(("plain",)).get_content()
    ]
    assert report.sent == 2
    assert report.deferred == 2
    assert [m["Subject"] for m in messages] == ["Tiedote 0", "Tiedote 1"]
    assert len(limit_notes) == 1
    assert messages[1] is limit_notes[0]


def test_deferred_notices_in_daily_digest(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    for number in range(3):
        add_notice(
            store, f"n{number}", f"Tiedote {number}", first_seen_at=NOW + timedelta(minutes=number)
        )
    send_immediate(store, settings, now=NOW + timedelta(minutes=30))

    report = send_digests(store, settings, "daily", now=NOW + timedelta(hours=8))
    again = send_immediate(store, settings, now=NOW + timedelta(hours=9))

    digest = smtp.messages_to("anna@example.org")[-1]
    text = digest.get_body(("plain",)).get_content()
    assert report.sent == 1
    assert "Tiedote 2" in text
    assert "Tiedote 0" not in text
    assert "waited for this digest" in text
    assert again.sent == 0


def test_limit_counts_per_local_day(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    add_subscriber(store, "anna@example.org", frequency="immediate")
    add_notice(store, "n0", "Tiedote 0", first_seen_at=NOW)
    add_notice(store, "n1", "Tiedote 1", first_seen_at=NOW + timedelta(minutes=1))
    send_immediate(store, settings, now=NOW + timedelta(minutes=5))
    next_day = NOW + timedelta(hours=11)  # 2026-03-05 01:00 in Helsinki
    add_notice(store, "n2", "Tiedote 2", first_seen_at=next_day - timedelta(minutes=5))

    report = send_immediate(store, settings, now=next_day)

    assert report.sent == 1
    assert report.deferred == 0


def test_deferred_kept_after_switch_to_weekly(
    store: Store, settings: Settings, smtp: RecordingHandler
) -> None:
    from publishers.newsletter.subscribers import find_by_address

    add_subscriber(store, "anna@example.org", frequency="immediate")
    for number in range(3):
        add_notice(
            store, f"n{number}", f"Tiedote {number}", first_seen_at=NOW + timedelta(minutes=number)
        )
    send_immediate(store, settings, now=NOW + timedelta(minutes=30))
    with store.session() as session:
        find_by_address(session, "anna@example.org").frequency = "weekly"  # type: ignore[union-attr]

    report = send_digests(store, settings, "weekly", now=NOW + timedelta(days=1))

    text = smtp.messages_to("anna@example.org")[-1].get_body(("plain",)).get_content()
    assert report.sent == 1
    assert "Tiedote 2" in text
    assert "Tiedote 0" not in text
