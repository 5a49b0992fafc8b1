"""Field cases of charset, bozo and relative-link faults, read from the shared cases folder."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from connectors import ingest_source
from connectors._charset import decode_document
from connectors.feeds import parse_feed
from connectors.html import extract_article
from connectors.http import FetchedDocument, HttpFetcher
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import RawItem as RawItemRow
from tests.connectors.conftest import LocalServer, Reply, make_source

NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def _recorded_reply(path: Path) -> Reply:
    """Turn a raw HTTP response file (status line, headers, blank line, body) into a reply."""
    head, _, body = path.read_bytes().partition(b"\n\n")
    status_line, *header_lines = head.decode("latin-1").split("\n")
    headers = dict(line.split(": ", 1) for line in header_lines if line)
    return Reply(int(status_line.split()[1]), body, headers)


def test_html_without_charset(cases_dir: Path, server: LocalServer, settings: Settings) -> None:
    server.route("/tiedote", _recorded_reply(cases_dir / "BR-01.http"))

    document = HttpFetcher(settings).fetch(server.url("/tiedote"), source_id="case-br01")
    article = extract_article(document.text, document.final_url)

    assert "<title>Tiedote: Tietyö päättyy Esimerkkitiellä</title>" in document.text
    assert "Liikenne palautuu normaaliksi torstaina." in article.body_html
    assert "Ã" not in document.text
    assert article.language == "fi"


def test_bozo_good_feed_ok(
    cases_dir: Path, server: LocalServer, settings: Settings, store: Store
) -> None:
    server.route("/rss.xml", _recorded_reply(cases_dir / "BR-02.http"))
    source = make_source(
        "case-br02", "rss", server.url("/rss.xml"), country="EE", timezone="Europe/Tallinn"
    )

    report = ingest_source(store, source, HttpFetcher(settings), settings, now=NOW)

    with store.session() as session:
        payloads = session.scalars(select(RawItemRow.payload)).all()
    assert report.status == "ok"
    assert report.warnings != []
    assert len(payloads) == 1
    assert payloads[0]["title"] == "Teetööd Näidise tänaval lõpevad"
    assert payloads[0]["published_raw"] == "Wed, 04 Mar 2026 10:15:00 +0200"
    assert payloads[0]["language"] == "et"


def test_relative_links_final_url(cases_dir: Path) -> None:
    body = (cases_dir / "BR-04.xml").read_bytes()
    decoded = decode_document(body, "application/rss+xml")
    document = FetchedDocument(
        url="http://agency.example.ee/rss",
        final_url="https://agency.example.ee/rss.xml",
        status=200,
        headers={"content-type": "application/rss+xml"},
        body=body,
        text=decoded.text,
        charset=decoded.charset,
    )
    source = make_source("case-br04", "rss", "http://agency.example.ee/rss", country="EE")

    item = parse_feed(document, source).items[0]

    assert item.url == "https://agency.example.ee/uudised/2026/taotlusvoor"
    summary = item.summary_html or ""
    assert 'href="https://agency.example.ee/dokumendid/tingimused.pdf"' in summary
    assert 'href="https://agency.example.ee/kontakt"' in summary
    assert 'src="https://agency.example.ee/pildid/taotlus.png"' in summary
