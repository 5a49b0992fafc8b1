"""HTML listings: selectors, relative links, pagination, articles and layout changes."""

from __future__ import annotations

import pytest

from connectors.html import (
    LayoutChangedError,
    check_layout,
    extract_article,
    parse_listing,
    scrape_listing,
)
from connectors.http import HttpFetcher
from noticeboard.settings import Settings
from tests.connectors.conftest import LocalServer, Reply, data, make_source

HTML = {"Content-Type": "text/html"}


def test_listing_items_read() -> None:
    source = make_source("html-test", "html", "https://kunta.example.fi/tiedotteet/")

    page = parse_listing(
        data("listing_fi.html").decode(), "https://kunta.example.fi/tiedotteet/", source
    )

    first, second = page.items
    assert first.title == "Katutyöt Koulukadulla alkavat"
    assert first.url == "https://kunta.example.fi/tiedotteet/2026/katutyot"
    assert first.published_raw == "2026-03-04T10:15:00+02:00"
    assert 'href="https://kunta.example.fi/tiedotteet/kartta.pdf"' in (first.summary_html or "")
    assert second.url == "https://kunta.example.fi/tiedotteet/tiedotteet/2026/uimahalli"
    assert second.published_raw == "13.03.2026"


def test_listing_language_from_page() -> None:
    source = make_source("html-test", "html", "https://kunta.example.fi/tiedotteet/")

    page = parse_listing(
        data("listing_fi.html").decode(), "https://kunta.example.fi/tiedotteet/", source
    )

    assert page.language == "fi"
    assert {item.language for item in page.items} == {"fi"}


def test_listing_next_page_resolved() -> None:
    source = make_source("html-test", "html", "https://kunta.example.fi/tiedotteet/")

    page = parse_listing(
        data("listing_fi.html").decode(), "https://kunta.example.fi/tiedotteet/", source
    )

    assert page.next_url == "https://kunta.example.fi/tiedotteet/?sivu=2"


def test_layout_change_detected() -> None:
    source = make_source("html-test", "html", "https://kunta.example.fi/tiedotteet/")
    page = parse_listing(
        data("listing_changed.html").decode(), "https://kunta.example.fi/tiedotteet/", source
    )

    with pytest.raises(LayoutChangedError, match="matches nothing"):
        check_layout(page, source, "https://kunta.example.fi/tiedotteet/")


def test_items_without_links_detected() -> None:
    page_html = (
        data("listing_fi.html")
        .decode()
        .replace('<a href="/tiedotteet/2026/katutyot">', "<span>")
        .replace('<a href="tiedotteet/2026/uimahalli">', "<span>")
    )
    source = make_source("html-test", "html", "https://kunta.example.fi/tiedotteet/")
    page = parse_listing(page_html, "https://kunta.example.fi/tiedotteet/", source)

    with pytest.raises(LayoutChangedError, match="2 of 2 items lack"):
        check_layout(page, source, "https://kunta.example.fi/tiedotteet/")


def test_article_main_content_only() -> None:
    article = extract_article(
        data("article_fi.html").decode(), "https://kunta.example.fi/tiedotteet/2026/katutyot"
    )

    assert "Koulukadun peruskorjaus alkaa maanantaina." in article.body_html
    assert 'href="https://kunta.example.fi/liitteet/aikataulu.pdf"' in article.body_html
    assert 'src="https://kunta.example.fi/tiedotteet/2026/kuvat/koulukatu.jpg"' in article.body_html
    for boilerplate in ("evästeet", "Etusivu", "Muita uutisia", "Kaupungin viestintä", "Jaa"):
        assert boilerplate not in article.body_html


def test_article_alternates_and_language() -> None:
    article = extract_article(
        data("article_fi.html").decode(), "https://kunta.example.fi/tiedotteet/2026/katutyot"
    )

    assert article.language == "fi"
    assert article.alternates == {"sv": "https://kunta.example.fi/sv/meddelanden/gatuarbeten"}


def test_pagination_stops_at_max_pages(server: LocalServer, settings: Settings) -> None:
    server.route("/tiedotteet/", Reply(body=data("listing_fi.html"), headers=HTML))
    server.route("/tiedotteet/?sivu=2", Reply(body=data("listing_fi_page2.html"), headers=HTML))
    server.route("/tiedotteet/?sivu=3", Reply(body=data("listing_fi_page2.html"), headers=HTML))
    fetcher = HttpFetcher(settings)
    source = make_source("html-test", "html", server.url("/tiedotteet/"), max_pages=2)

    result = scrape_listing(
        fetcher.fetch(server.url("/tiedotteet/"), source_id=source.id), source, fetcher
    )

    assert result.pages == 2
    assert [item.title for item in result.items][-1] == "Ennakkoäänestys alkaa"
    assert server.hits("/tiedotteet/?sivu=3") == []


def test_articles_fetched_when_configured(server: LocalServer, settings: Settings) -> None:
    server.route("/tiedotteet/", Reply(body=data("listing_fi.html"), headers=HTML))
    server.route("/tiedotteet/2026/katutyot", Reply(body=data("article_fi.html"), headers=HTML))
    fetcher = HttpFetcher(settings)
    source = make_source("html-test", "html", server.url("/tiedotteet/"), fetch_articles=True)

    result = scrape_listing(
        fetcher.fetch(server.url("/tiedotteet/"), source_id=source.id), source, fetcher
    )

    first, second = result.items
    assert "peruskorjaus" in (first.body_html or "")
    assert first.alternates == {"sv": server.url("/sv/meddelanden/gatuarbeten")}
    assert second.body_html is None
    assert len(result.warnings) == 1


def test_item_with_script_link_skipped_and_counted(
    server: LocalServer, settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    page_html = (
        data("listing_fi.html")
        .decode()
        .replace('href="tiedotteet/2026/uimahalli"', 'href="javascript:void(0)"')
    )
    server.route("/tiedotteet/", Reply(body=page_html.encode(), headers=HTML))
    fetcher = HttpFetcher(settings)
    source = make_source("html-test", "html", server.url("/tiedotteet/"))

    with caplog.at_level("WARNING", logger="connectors.html"):
        result = scrape_listing(
            fetcher.fetch(server.url("/tiedotteet/"), source_id=source.id), source, fetcher
        )

    assert [item.title for item in result.items] == ["Katutyöt Koulukadulla alkavat"]
    assert any("skipped 1 of 2 items" in warning for warning in result.warnings)
    assert "items_skipped source=html-test" in caplog.text
