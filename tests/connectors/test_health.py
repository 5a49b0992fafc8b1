"""Source health: backoff and recovery, staleness and alerts once per change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from connectors import ingest_source
from connectors.health import OK, Outcome, failure_backoff, record_outcome
from connectors.http import HttpFetcher
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import SourceState
from tests.connectors.conftest import LocalServer, Reply, data, make_source

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
RSS = {"Content-Type": "application/rss+xml"}


def _state(store: Store, source_id: str) -> SourceState:
    with store.session() as session:
        state = session.get(SourceState, source_id)
        assert state is not None
        return state


def test_failure_sets_backoff(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(503))
    source = make_source("health-test", "rss", server.url("/rss.xml"))

    ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    state = _state(store, source.id)
    assert state.consecutive_failures == 1
    assert state.next_fetch_after == NOW + timedelta(minutes=15)


def test_backoff_skips_until_due(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(503))
    source = make_source("health-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)
    ingest_source(store, source, fetcher, settings, now=NOW)
    requests_before = len(server.requests)

    report = ingest_source(store, source, fetcher, settings, now=NOW + timedelta(minutes=5))

    assert report.status == "skipped"
    assert len(server.requests) == requests_before


def test_backoff_doubles_and_caps() -> None:
    settings = Settings(failure_backoff_cap=3600.0)

    delays = [failure_backoff(failures, settings) for failures in (1, 2, 3, 4, 500)]

    assert delays == [900.0, 1800.0, 3600.0, 3600.0, 3600.0]


def test_recovers_by_itself(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(503))
    source = make_source("health-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)
    ingest_source(store, source, fetcher, settings, now=NOW)
    ingest_source(store, source, fetcher, settings, now=NOW + timedelta(minutes=20))
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))

    report = ingest_source(store, source, fetcher, settings, now=NOW + timedelta(hours=2))

    state = _state(store, source.id)
    assert report.status == "ok"
    assert state.consecutive_failures == 0
    assert state.next_fetch_after is None
    assert state.last_success_at == NOW + timedelta(hours=2)


def test_retry_after_extends_backoff(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(429, headers={"Retry-After": "7200"}))
    source = make_source("health-test", "rss", server.url("/rss.xml"))

    ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    assert _state(store, source.id).next_fetch_after == NOW + timedelta(seconds=7200)


def test_stale_when_silent_long() -> None:
    settings = Settings(stale_factor=4.0)
    state = SourceState(
        source_id="s1",
        consecutive_failures=0,
        last_new_item_at=NOW - timedelta(days=5),
        mean_interval_seconds=timedelta(days=1).total_seconds(),
    )

    status = record_outcome(state, Outcome("not-modified"), settings, now=NOW)

    assert status == "stale"
    assert state.last_status == "stale"


def test_not_stale_within_rhythm() -> None:
    settings = Settings(stale_factor=4.0)
    state = SourceState(
        source_id="s1",
        consecutive_failures=0,
        last_new_item_at=NOW - timedelta(days=3),
        mean_interval_seconds=timedelta(days=1).total_seconds(),
    )

    assert record_outcome(state, Outcome(OK), settings, now=NOW) == OK


def test_rhythm_learnt_from_new_items() -> None:
    state = SourceState(
        source_id="s1", consecutive_failures=0, last_new_item_at=NOW - timedelta(hours=10)
    )

    record_outcome(state, Outcome(OK, items=3, new_items=1), Settings(), now=NOW)

    assert state.mean_interval_seconds == 36000.0
    assert state.last_new_item_at == NOW


def test_alerts_once_per_change(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(503))
    server.route("/hook", Reply(204))
    settings = settings.replace(alert_webhook_url=server.url("/hook"))
    source = make_source("health-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)

    for hours in (0, 1, 2):
        ingest_source(
            store, source, fetcher, settings, now=NOW + timedelta(hours=hours), force=True
        )
    failed_alerts = len(server.hits("/hook"))
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    for hours in (3, 4):
        ingest_source(
            store, source, fetcher, settings, now=NOW + timedelta(hours=hours), force=True
        )

    alerts = [json.loads(request.body) for request in server.hits("/hook")]
    assert failed_alerts == 1
    assert [alert["status"] for alert in alerts] == ["failed", "ok"]
    assert alerts[0]["source_id"] == "health-test"
    assert _state(store, source.id).alerted_status is None


def test_failed_alert_retried_next_run(
    server: LocalServer, settings: Settings, store: Store
) -> None:
    server.route("/rss.xml", Reply(503))
    server.route("/hook", Reply(500), Reply(204))
    settings = settings.replace(alert_webhook_url=server.url("/hook"))
    source = make_source("health-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)

    for hours in (0, 1, 2):
        ingest_source(
            store, source, fetcher, settings, now=NOW + timedelta(hours=hours), force=True
        )

    assert len(server.hits("/hook")) == 2
    assert _state(store, source.id).alerted_status == "failed"
