"""Drill: property-based tests of the feed parser wrapper, the date parser and the sanitiser.

The number of examples is bounded so the drills stay fast in CI; raise `EXAMPLES` locally for a
longer search.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from xml.sax.saxutils import escape

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.feeds import parse_feed
from connectors.http import FetchedDocument
from noticeboard.catalog import Source
from noticeboard.errors import SourceError
from noticeboard.models import RawItem
from tests.drills.test_hostile_input import INJECTIONS, live_markup
from transforms.dates import MIN_YEAR, parse_date
from transforms.html import html_to_text, sanitize_html

EXAMPLES = 150
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SOURCE = Source(
    id="fuzz-source",
    authority="Fuzz authority",
    country="FI",
    regions=("FI",),
    languages=("fi",),
    timezone="Europe/Helsinki",
    kind="rss",
    urls=("http://127.0.0.1/feed.xml",),
)
ZONES = ("Europe/Helsinki", "Europe/Stockholm", "Europe/Tallinn", "Europe/Riga")

MONTH_WORDS = ("joulukuuta", "december", "detsember", "decembris", "декабря", "Dec", "maalis", "maj", "kell", "klo", "gada")
date_text = st.one_of(
    st.text(max_size=80),
    st.lists(
        st.one_of(
            st.integers(min_value=0, max_value=3000).map(str),
            st.sampled_from(MONTH_WORDS),
            st.sampled_from((".", ":", "-", "T", "Z", "+02:00", " ", ",", "/")),
        ),
        max_size=12,
    ).map("".join),
)

tags = st.sampled_from(("p", "div", "a", "b", "script", "img", "svg", "iframe", "style", "table", "td", "ul", "li", "math"))
attributes = st.sampled_from(
    ('href="javascript:alert(1)"', 'src="x"', "onerror=alert(1)", 'href="/relative?utm_source=x"', 'style="x:expression(1)"', "")
)


@st.composite
def html_fragments(draw: st.DrawFn) -> str:
    """Markup soup: random tags, attributes, known injection vectors and free text."""
    parts = draw(
        st.lists(
            st.one_of(
                st.builds(lambda tag, attribute: f"<{tag} {attribute}>", tags, attributes),
                st.builds(lambda tag: f"</{tag}>", tags),
                st.sampled_from(INJECTIONS),
                st.text(max_size=20),
                st.sampled_from(("&lt;script&gt;", "&#106;avascript:", "<!--", "-->", "<![CDATA[", "]]>")),
            ),
            max_size=15,
        )
    )
    return "".join(parts)


@st.composite
def feed_documents(draw: st.DrawFn) -> bytes:
    """An RSS or Atom document with generated items, sometimes cut short or with junk inside."""
    items = draw(
        st.lists(
            st.fixed_dictionaries(
                {"title": st.text(max_size=40), "body": html_fragments(), "date": date_text, "guid": st.text(max_size=10)}
            ),
            max_size=5,
        )
    )
    if draw(st.booleans()):
        entries = "".join(
            f"<item><title>{escape(item['title'])}</title><guid>{escape(item['guid'])}</guid>"
            f"<description>{escape(item['body'])}</description><pubDate>{escape(item['date'])}</pubDate></item>"
            for item in items
        )
        document = f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>{entries}</channel></rss>'
    else:
        entries = "".join(
            f"<entry><title>{escape(item['title'])}</title><id>{escape(item['guid'])}</id>"
            f"<content type=\"html\">{escape(item['body'])}</content><updated>{escape(item['date'])}</updated></entry>"
            for item in items
        )
        document = f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>{entries}</feed>'

    cut = draw(st.integers(min_value=0, max_value=len(document)))
    if draw(st.booleans()):
        document = document[:cut]
    junk = draw(st.binary(max_size=30))
    return document.encode("utf-8") + junk


def _document(body: bytes, content_type: str = "application/rss+xml") -> FetchedDocument:
    return FetchedDocument(
        url="http://127.0.0.1/feed.xml",
        final_url="http://127.0.0.1/feed.xml",
        status=200,
        headers={"content-type": content_type},
        body=body,
        text=body.decode("utf-8", "replace"),
    )


@FUZZ
@given(feed_documents())
def test_parse_feed_generated_documents(body):
    try:
        result = parse_feed(_document(body), SOURCE)
    except SourceError as error:
        assert error.source_id == SOURCE.id
        return

    assert all(isinstance(item, RawItem) for item in result.items)
    assert all(item.source_id == SOURCE.id for item in result.items)


@FUZZ
@given(st.binary(max_size=2000))
def test_parse_feed_binary_garbage(body):
    try:
        result = parse_feed(_document(body), SOURCE)
    except SourceError as error:
        assert "fuzz-source" in str(error)
        return

    assert isinstance(result.items, list)


@FUZZ
@given(date_text, st.sampled_from(ZONES))
def test_parse_date_never_raises(raw, zone):
    now = datetime(2026, 6, 1, tzinfo=UTC)

    parsed = parse_date(raw, zone, now=now)

    if parsed is not None:
        assert parsed.instant.utcoffset() == timedelta(0)
        assert parsed.instant.year >= MIN_YEAR - 1
        assert parsed.instant <= now + timedelta(days=3)
        assert parsed.raw == raw


@FUZZ
@given(html_fragments())
def test_sanitize_html_leaves_no_live_markup(html):
    cleaned = sanitize_html(html, "http://127.0.0.1/base/")

    assert live_markup(cleaned) == []


@FUZZ
@given(html_fragments())
def test_sanitize_html_is_idempotent(html):
    cleaned = sanitize_html(html, "http://127.0.0.1/base/")

    assert sanitize_html(cleaned, "http://127.0.0.1/base/") == cleaned


@FUZZ
@given(st.text(max_size=500))
def test_html_to_text_never_raises(html):
    text = html_to_text(html)

    assert isinstance(text, str)
