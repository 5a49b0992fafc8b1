"""ingest_source: conditional fetches, new rows only, listing, isolation and health."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

import connectors.ingest
from connectors import check_source, ingest_source
from connectors.feeds import FeedResult
from connectors.http import FetchedDocument, HttpFetcher
from noticeboard.catalog import Source
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import RawItem as RawItemRow
from noticeboard.store.tables import SourceState
from tests.connectors.conftest import (
    LISTING_SELECTORS,
    LocalServer,
    Recorded,
    Reply,
    data,
    make_source,
)

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)
RSS = {"Content-Type": "application/rss+xml"}


def _rows(store: Store) -> int:
    with store.session() as session:
        return session.scalar(select(func.count()).select_from(RawItemRow)) or 0


def _state(store: Store, source_id: str) -> SourceState:
    with store.session() as session:
        state = session.get(SourceState, source_id)
        assert state is not None
        return state


def _etag_feed(request: Recorded) -> Reply:
    if request.headers.get("if-none-match") == '"r1"':
        return Reply(304, headers={"ETag": '"r1"'})
    return Reply(body=data("rss_et.xml"), headers={**RSS, "ETag": '"r1"'})


def test_new_items_stored(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))

    report = ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    assert report.status == "ok"
    assert report.fetched_items == 2
    assert report.new_items == 2
    assert _rows(store) == 2


def test_not_modified_skips_parsing(
    server: LocalServer, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.route("/rss.xml", _etag_feed)
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)
    ingest_source(store, source, fetcher, settings, now=NOW)

    def parse_forbidden(*args: object) -> None:
        raise AssertionError("a 304 must not be parsed")

    monkeypatch.setattr(connectors.ingest, "parse_feed", parse_forbidden)
    report = ingest_source(store, source, fetcher, settings, now=NOW + timedelta(hours=1))

    assert report.status == "not-modified"
    assert server.hits("/rss.xml")[-1].headers["if-none-match"] == '"r1"'
    assert _rows(store) == 2


def test_same_body_skips_parsing(
    server: LocalServer, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)
    ingest_source(store, source, fetcher, settings, now=NOW)

    monkeypatch.setattr(
        connectors.ingest, "parse_feed", lambda *args: pytest.fail("unchanged body parsed")
    )
    report = ingest_source(store, source, fetcher, settings, now=NOW + timedelta(hours=1))

    assert report.status == "not-modified"


def test_refetch_adds_no_rows(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)
    ingest_source(store, source, fetcher, settings, now=NOW)

    ingest_source(store, source, fetcher, settings, now=NOW + timedelta(hours=1), force=True)
    regenerated = data("rss_et.xml").replace(b"teade-901", b"teade-901-uus")
    server.route("/rss.xml", Reply(body=regenerated, headers=RSS))
    report = ingest_source(store, source, fetcher, settings, now=NOW + timedelta(hours=2))

    assert report.new_items == 0
    assert _rows(store) == 2


def test_listing_recorded(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", _etag_feed)
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)

    ingest_source(store, source, fetcher, settings, now=NOW)
    ingest_source(store, source, fetcher, settings, now=NOW + timedelta(hours=1))

    state = _state(store, source.id)
    assert state.listing is not None
    assert len(state.listing) == 2
    assert state.listing == sorted(state.listing)
    assert state.successful_fetches == 2
    assert state.etag == '"r1"'


def test_failure_is_a_report(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(404))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))

    report = ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    assert report.status == "failed"
    assert report.error is not None
    assert "ingest-test" in report.error
    assert server.url("/rss.xml") in report.error
    assert "HTTP 404" in report.error


def test_failing_source_spares_others(
    server: LocalServer, settings: Settings, store: Store
) -> None:
    server.route("/good.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    server.route("/bad.xml", Reply(500))
    fetcher = HttpFetcher(settings)
    bad = make_source("bad-source", "rss", server.url("/bad.xml"))
    good = make_source("good-source", "rss", server.url("/good.xml"))

    reports = [ingest_source(store, source, fetcher, settings, now=NOW) for source in (bad, good)]

    assert [report.status for report in reports] == ["failed", "ok"]


def test_parser_crash_spares_others(
    server: LocalServer, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.route("/good.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    server.route("/bad.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    real_parse_feed = connectors.ingest.parse_feed

    def crash_on_bad(document: FetchedDocument, source: Source) -> FeedResult:
        if source.id == "bad-source":
            raise ZeroDivisionError("bug")
        return real_parse_feed(document, source)

    monkeypatch.setattr(connectors.ingest, "parse_feed", crash_on_bad)
    fetcher = HttpFetcher(settings)
    bad = make_source("bad-source", "rss", server.url("/bad.xml"))
    good = make_source("good-source", "rss", server.url("/good.xml"))

    reports = [ingest_source(store, source, fetcher, settings, now=NOW) for source in (bad, good)]

    assert [report.status for report in reports] == ["failed", "ok"]
    assert "ZeroDivisionError" in (reports[0].error or "")
    assert server.url("/bad.xml") in (reports[0].error or "")
    assert _state(store, "bad-source").consecutive_failures == 1


def test_invalid_selector_fails_source(
    server: LocalServer, settings: Settings, store: Store
) -> None:
    server.route(
        "/tiedotteet/", Reply(body=data("listing_fi.html"), headers={"Content-Type": "text/html"})
    )
    broken = dataclasses.replace(LISTING_SELECTORS, item="li.news-item[")
    source = make_source("html-test", "html", server.url("/tiedotteet/"), selectors=broken)

    report = ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)
    checked = check_source(source, HttpFetcher(settings), settings)

    assert report.status == "failed"
    assert "selectors.item 'li.news-item[' is not valid CSS" in (report.error or "")
    assert checked.status == "failed"


def test_store_error_is_reraised(
    server: LocalServer, settings: Settings, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))

    def lost_database(*args: object) -> int:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(connectors.ingest, "_insert_items", lost_database)

    with pytest.raises(OperationalError):
        ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)


def test_layout_changed_status(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route(
        "/tiedotteet/",
        Reply(body=data("listing_changed.html"), headers={"Content-Type": "text/html"}),
    )
    source = make_source("html-test", "html", server.url("/tiedotteet/"))

    report = ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    assert report.status == "layout-changed"
    assert _state(store, source.id).last_status == "layout-changed"


def test_empty_feed_status(server: LocalServer, settings: Settings, store: Store) -> None:
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    server.route("/rss.xml", Reply(body=empty, headers=RSS))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))

    report = ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    assert report.status == "empty"


def test_encoding_warning_counted(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers={"Content-Type": "text/xml"}))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))

    report = ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    assert report.status == "ok"
    assert len(report.warnings) == 1
    assert _state(store, source.id).warnings == 1


def test_check_source_stores_nothing(server: LocalServer, settings: Settings, store: Store) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))

    report = check_source(source, HttpFetcher(settings), settings)

    assert report.status == "ok"
    assert report.fetched_items == 2
    assert _rows(store) == 0


@pytest.mark.postgres
def test_ingest_on_postgres(server: LocalServer, settings: Settings, postgres_store: Store) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers=RSS))
    source = make_source("ingest-test", "rss", server.url("/rss.xml"))
    fetcher = HttpFetcher(settings)

    first = ingest_source(postgres_store, source, fetcher, settings, now=NOW)
    second = ingest_source(
        postgres_store, source, fetcher, settings, now=NOW + timedelta(hours=1), force=True
    )

    assert first.new_items == 2
    assert second.new_items == 0
    assert _rows(postgres_store) == 2
