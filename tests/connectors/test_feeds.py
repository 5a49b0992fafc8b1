"""Feeds: recovered bozo entries, links against the final URL, languages and alternates."""

from __future__ import annotations

import pytest

from connectors.feeds import parse_feed
from connectors.http import HttpFetcher
from noticeboard.errors import ParseError
from noticeboard.settings import Settings
from tests.connectors.conftest import LocalServer, Reply, data, make_source


def test_text_xml_without_charset_ok(server: LocalServer, settings: Settings) -> None:
    server.route("/rss.xml", Reply(body=data("rss_et.xml"), headers={"Content-Type": "text/xml"}))
    source = make_source("feed-test", "rss", server.url("/rss.xml"))

    result = parse_feed(
        HttpFetcher(settings).fetch(server.url("/rss.xml"), source_id=source.id), source
    )

    assert len(result.items) == 2
    assert result.items[0].title == "Sillaremont Jõe tänaval algab esmaspäeval"
    assert result.items[0].published_raw == "Mon, 02 Mar 2026 09:00:00 +0200"
    assert any(warning.startswith("encoding") for warning in result.warnings)


def test_links_resolved_against_final_url(server: LocalServer, settings: Settings) -> None:
    server.route("/rss", Reply(301, headers={"Location": "/uus/rss.xml"}))
    server.route(
        "/uus/rss.xml",
        Reply(body=data("rss_et.xml"), headers={"Content-Type": "application/rss+xml"}),
    )
    source = make_source("feed-test", "rss", server.url("/rss"))

    result = parse_feed(
        HttpFetcher(settings).fetch(server.url("/rss"), source_id=source.id), source
    )

    first = result.items[0]
    assert first.url == server.url("/teated/2026/sillaremont")
    assert f'href="{server.url("/uus/kaart.html")}"' in (first.summary_html or "")
    assert f'src="{server.url("/pildid/sild.jpg")}"' in (first.summary_html or "")


def test_feed_language_declared(server: LocalServer, settings: Settings) -> None:
    server.route(
        "/rss.xml", Reply(body=data("rss_et.xml"), headers={"Content-Type": "application/rss+xml"})
    )
    source = make_source("feed-test", "rss", server.url("/rss.xml"))

    result = parse_feed(
        HttpFetcher(settings).fetch(server.url("/rss.xml"), source_id=source.id), source
    )

    assert result.language == "et"
    assert [item.language for item in result.items] == ["et", "et"]


def test_atom_alternates_and_languages(server: LocalServer, settings: Settings) -> None:
    server.route(
        "/atom.xml",
        Reply(body=data("atom_sv.xml"), headers={"Content-Type": "application/atom+xml"}),
    )
    source = make_source("feed-test", "atom", server.url("/atom.xml"))

    result = parse_feed(
        HttpFetcher(settings).fetch(server.url("/atom.xml"), source_id=source.id), source
    )

    swedish, finnish = result.items
    assert swedish.url == server.url("/sv/nyheter/vagarbete")
    assert swedish.language == "sv"
    assert swedish.alternates == {
        "fi": server.url("/fi/uutiset/tietyo"),
        "en": server.url("/en/news/roadworks"),
    }
    assert finnish.language == "fi"
    assert result.warnings == []


def test_truncated_feed_keeps_entries(server: LocalServer, settings: Settings) -> None:
    server.route(
        "/rss.xml",
        Reply(body=data("rss_truncated.xml"), headers={"Content-Type": "application/rss+xml"}),
    )
    source = make_source("feed-test", "rss", server.url("/rss.xml"))

    result = parse_feed(
        HttpFetcher(settings).fetch(server.url("/rss.xml"), source_id=source.id), source
    )

    assert [item.title for item in result.items] == [
        "Ūdens padeve Liepu ielā tiks pārtraukta",
        "Jauns autobusu saraksts no aprīļa",
    ]
    assert any(warning.startswith("malformed feed") for warning in result.warnings)


def test_unreadable_feed_fails(server: LocalServer, settings: Settings) -> None:
    server.route(
        "/rss.xml",
        Reply(
            body=b'<?xml version="1.0"?><rss><channel><title>x',
            headers={"Content-Type": "text/xml"},
        ),
    )
    source = make_source("feed-test", "rss", server.url("/rss.xml"))
    document = HttpFetcher(settings).fetch(server.url("/rss.xml"), source_id=source.id)

    with pytest.raises(ParseError) as raised:
        parse_feed(document, source)

    assert "feed-test" in str(raised.value)
    assert "SAXParseException" in str(raised.value)


def test_html_page_is_not_a_feed(server: LocalServer, settings: Settings) -> None:
    server.route(
        "/rss.xml", Reply(body=data("listing_fi.html"), headers={"Content-Type": "text/html"})
    )
    source = make_source("feed-test", "rss", server.url("/rss.xml"))
    document = HttpFetcher(settings).fetch(server.url("/rss.xml"), source_id=source.id)

    with pytest.raises(ParseError):
        parse_feed(document, source)


def test_windows_1252_feed_claiming_utf8(server: LocalServer, settings: Settings) -> None:
    server.route(
        "/rss.xml",
        Reply(
            body=data("rss_fi_cp1252.xml"),
            headers={"Content-Type": "application/rss+xml; charset=utf-8"},
        ),
    )
    source = make_source("feed-test", "rss", server.url("/rss.xml"))

    result = parse_feed(
        HttpFetcher(settings).fetch(server.url("/rss.xml"), source_id=source.id), source
    )

    assert result.items[0].title == "Tietyö päättyy – liikenne palautuu"
    assert any("windows-1252" in warning for warning in result.warnings)


def test_empty_valid_feed_has_no_items(server: LocalServer, settings: Settings) -> None:
    empty = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
    server.route("/rss.xml", Reply(body=empty, headers={"Content-Type": "application/rss+xml"}))
    source = make_source("feed-test", "rss", server.url("/rss.xml"))

    result = parse_feed(
        HttpFetcher(settings).fetch(server.url("/rss.xml"), source_id=source.id), source
    )

    assert result.items == []
