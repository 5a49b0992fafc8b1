"""Delivery ledger: claims, takeovers, backoff, and two workers at once on both databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from noticeboard.errors import DeliveryError
from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers import ledger
from publishers.mastodon import MastodonChannel
from publishers.social import PublishReport, publish_pending
from tests.publishers.conftest import add_notice
from tests.servers.platforms import MastodonServer

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def test_claim_once(store: Store) -> None:
    first = ledger.claim(store, "mastodon", "n1", 1, worker="a", now=NOW)
    second = ledger.claim(store, "mastodon", "n1", 1, worker="b", now=NOW)

    assert first is not None
    assert first.reconcile is False
    assert second is None


def test_stale_intent_taken_over(store: Store) -> None:
    _check_takeover(store)


@pytest.mark.postgres
def test_stale_intent_taken_over_postgres(postgres_store: Store) -> None:
    _check_takeover(postgres_store)


def _check_takeover(store: Store) -> None:
    ledger.claim(store, "mastodon", "n1", 1, worker="a", now=NOW)

    later = NOW + ledger.INTENT_STALE_AFTER
    taken = ledger.claim(store, "mastodon", "n1", 1, worker="b", now=later)
    again = ledger.claim(store, "mastodon", "n1", 1, worker="c", now=later)

    assert taken is not None
    assert taken.reconcile is True
    assert again is None


def test_sent_never_reclaimed(store: Store) -> None:
    delivery_claim = ledger.claim(store, "webhook", "n1", 1, worker="a", now=NOW)
    assert delivery_claim is not None
    ledger.record_sent(store, delivery_claim, "r1", now=NOW)

    assert ledger.claim(store, "webhook", "n1", 1, worker="b", now=NOW + timedelta(days=30)) is None


def test_previous_remote_id(store: Store) -> None:
    delivery_claim = ledger.claim(store, "mastodon", "n1", 1, worker="a", now=NOW)
    assert delivery_claim is not None
    ledger.record_sent(store, delivery_claim, "status-1", now=NOW)

    next_version = ledger.claim(store, "mastodon", "n1", 2, worker="a", now=NOW)

    assert next_version is not None
    assert next_version.previous_remote_id == "status-1"


def test_idempotency_key_stable() -> None:
    assert ledger.idempotency_key("mastodon", "n1", 1) == ledger.idempotency_key(
        "mastodon", "n1", 1
    )
    assert ledger.idempotency_key("mastodon", "n1", 1) != ledger.idempotency_key(
        "mastodon", "n1", 2
    )


@pytest.mark.parametrize(
    ("attempts", "retry_after", "expected"),
    [
        (1, None, timedelta(minutes=1)),
        (3, None, timedelta(minutes=4)),
        (30, None, ledger.RETRY_CAP),
        (1, 600.0, timedelta(minutes=10)),
    ],
)
def test_retry_delay(attempts: int, retry_after: float | None, expected: timedelta) -> None:
    assert ledger.retry_delay(attempts, retry_after) == expected


def test_gives_up_after_max_attempts(store: Store) -> None:
    status = ""
    when = NOW
    for _ in range(ledger.MAX_ATTEMPTS):
        delivery_claim = ledger.claim(store, "webhook", "n1", 1, worker="a", now=when)
        assert delivery_claim is not None
        status = ledger.record_failure(store, delivery_claim, DeliveryError("HTTP 503"), now=when)
        when += timedelta(days=1)

    assert status == ledger.PERMANENT
    assert ledger.claim(store, "webhook", "n1", 1, worker="a", now=when) is None


def _two_workers(store: Store, settings: Settings, server: MastodonServer) -> list[PublishReport]:
    reports: list[PublishReport] = []
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        channel = MastodonChannel(settings)
        barrier.wait()
        reports.append(publish_pending(store, settings, now=NOW, channels=[channel], worker=name))

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return reports


def _check_two_workers(store: Store, tmp_settings: Settings) -> None:
    for number in range(30):
        add_notice(store, f"n{number:02d}", minutes=number)
    with MastodonServer(token="t") as server:
        settings = tmp_settings.replace(mastodon_url=server.url, mastodon_token="t")
        reports = _two_workers(store, settings, server)

        posts = [request for request in server.received if request.method == "POST"]
        sent = sum(report.channels["mastodon"].sent for report in reports)
        assert len(reports) == 2
        assert len(server.statuses) == 30
        assert len(posts) == 30
        assert sent == 30


def test_two_workers_sqlite(store: Store, settings: Settings) -> None:
    _check_two_workers(store, settings)


@pytest.mark.postgres
def test_two_workers_postgres(postgres_store: Store, settings: Settings) -> None:
    _check_two_workers(postgres_store, settings)
