"""HTML sanitising, plain text, summaries and URL cleaning."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transforms.html import clean_url, html_to_text, sanitize_html, summarize

BASE = "https://agency.example.ee/uudised/2026/taotlus"

# Script-injection vectors in the style of the OWASP XSS filter evasion cheat sheet.
XSS_VECTORS = [
    "<script>alert(1)</script>",
    "<SCRIPT SRC=https://evil.example/xss.js></SCRIPT>",
    '<img src="x" onerror="alert(1)">',
    "<img src=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    '<a href="jav&#x09;ascript:alert(1)">x</a>',
    '<a href="&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)">x</a>',
    '<a href=" javascript:alert(1)">x</a>',
    '<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">x</a>',
    '<img src="data:image/svg+xml,<svg onload=alert(1)>">',
    '<iframe src="https://evil.example/"></iframe>',
    "<svg/onload=alert(1)>",
    "<body onload=alert(1)>",
    '<div style="background:url(javascript:alert(1))">x</div>',
    "<style>@import 'https://evil.example/x.css';</style>",
    '<object data="https://evil.example/x.swf"></object>',
    '<embed src="https://evil.example/x.swf">',
    '<form action="https://evil.example/"><input name="q"></form>',
    '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">',
    '<link rel="stylesheet" href="https://evil.example/x.css">',
    '<p onmouseover="alert(1)">hover</p>',
    "<<script>alert(1)//<</script>",
    '<a href="vbscript:msgbox(1)">x</a>',
    '<base href="https://evil.example/">',
    "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
]
FORBIDDEN = (
    "<script",
    "onerror",
    "onload",
    "onmouseover",
    "javascript:",
    "vbscript:",
    "data:",
    "<iframe",
    "<style",
    "<object",
    "<embed",
    "<form",
    "<meta",
    "<link",
    "<base",
    "style=",
)


@pytest.mark.parametrize("vector", XSS_VECTORS)
def test_sanitize_removes_injection(vector: str) -> None:
    cleaned = sanitize_html(vector, BASE).lower()

    for fragment in FORBIDDEN:
        assert fragment not in cleaned


def test_sanitize_keeps_structure() -> None:
    html = (
        "<h2>Otsikko</h2><p>Teksti <strong>tärkeä</strong></p>"
        "<ul><li>yksi</li><li>kaksi</li></ul><ol><li>a</li></ol>"
        "<table><tr><th>Päivä</th></tr><tr><td>4.12.</td></tr></table>"
    )

    cleaned = sanitize_html(html, BASE)

    for tag in ("<h2>", "<strong>", "<ul>", "<li>", "<ol>", "<table>", "<th>", "<td>"):
        assert tag in cleaned


def test_sanitize_resolves_relative_urls() -> None:
    html = (
        '<p><a href="/dokumendid/tingimused.pdf">x</a> <a href="../../kontakt">y</a>'
        ' <img src="/pildid/taotlus.png"></p>'
    )

    cleaned = sanitize_html(html, BASE)

    assert 'href="https://agency.example.ee/dokumendid/tingimused.pdf"' in cleaned
    assert 'href="https://agency.example.ee/kontakt"' in cleaned
    assert 'src="https://agency.example.ee/pildid/taotlus.png"' in cleaned


def test_sanitize_strips_tracking() -> None:
    html = (
        '<a href="https://x.example.fi/a?id=4&amp;utm_source=rss&amp;fbclid=abc&amp;gclid=1">x</a>'
    )

    cleaned = sanitize_html(html, None)

    assert 'href="https://x.example.fi/a?id=4"' in cleaned


def test_sanitize_decodes_entities() -> None:
    assert (
        sanitize_html("<p>P&auml;&auml;t&ouml;s &ndash; 5&nbsp;&euro;</p>", None)
        == "<p>Päätös – 5 €</p>"
    )


def test_sanitize_collapses_space() -> None:
    assert (
        sanitize_html("<p>\n  yksi \n\t kaksi  </p>\n\n<p> kolme</p>", None)
        == "<p>yksi kaksi</p><p>kolme</p>"
    )


def test_sanitize_links_get_rel() -> None:
    assert 'rel="noopener noreferrer"' in sanitize_html(
        '<a href="https://x.example.fi/">x</a>', None
    )


def test_sanitize_empty() -> None:
    assert sanitize_html("", BASE) == ""


def test_text_has_paragraph_breaks() -> None:
    html = (
        "<h2>Otsikko</h2><p>Eka  kappale.</p><p>Toka<br>rivi &amp; loppu</p>"
        "<ul><li>a</li><li>b</li></ul>"
    )

    assert html_to_text(html) == "Otsikko\n\nEka kappale.\n\nToka\nrivi & loppu\n\n- a\n\n- b"


def test_text_skips_scripts() -> None:
    assert html_to_text("<p>a</p><script>var x = 1;</script><style>p{}</style><p>b</p>") == "a\n\nb"


def test_summary_short_unchanged() -> None:
    assert summarize("Lyhyt teksti.", 100) == "Lyhyt teksti."


def test_summary_cuts_at_sentence() -> None:
    text = "Tie suljetaan maanantaina. Kiertotie on merkitty opastein koko matkalle."

    assert summarize(text, 40) == "Tie suljetaan maanantaina. …"


def test_summary_cuts_at_word() -> None:
    text = "Kiertotie on merkitty opastein koko matkalle ja liikenteen ohjaajat"

    assert summarize(text, 30) == "Kiertotie on merkitty…"


def test_summary_long_word_cut() -> None:
    assert summarize("Liikenneturvallisuusviranomainen", 10) == "Liikennet…"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300), st.integers(min_value=0, max_value=120))
def test_summary_within_limit(text: str, limit: int) -> None:
    assert len(summarize(text, limit)) <= limit


def test_clean_url_removes_tracking_and_fragment() -> None:
    url = "HTTPS://Agency.Example.FI:443/tiedotteet/1?utm_source=rss&id=7&_=1717171717&mc_cid=x#top"

    assert clean_url(url) == "https://agency.example.fi/tiedotteet/1?id=7"


def test_clean_url_resolves_relative() -> None:
    assert clean_url("/uudised/2026/taotlusvoor", "https://agency.example.ee/rss.xml") == (
        "https://agency.example.ee/uudised/2026/taotlusvoor"
    )


def test_clean_url_empty() -> None:
    assert clean_url(None) == ""


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_sanitize_never_raises(html: str) -> None:
    cleaned = sanitize_html(html, BASE)

    assert "<script" not in cleaned.lower()


_TAGS = st.sampled_from(
    ["p", "a", "img", "script", "style", "iframe", "svg", "div", "table", "td", "li"]
)
_ATTRIBUTES = st.sampled_from(
    ['href="javascript:alert(1)"', 'src="data:x"', 'onclick="x()"', 'href="/rel"', 'style="x"', ""]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_TAGS, _ATTRIBUTES, st.text(max_size=20)), max_size=12))
def test_sanitize_markup_never_unsafe(parts: list[tuple[str, str, str]]) -> None:
    html = "".join(f"<{tag} {attribute}>{text}</{tag}>" for tag, attribute, text in parts)

    cleaned = sanitize_html(html, BASE).lower()

    for fragment in ("<script", "javascript:", "data:", "onclick", "<iframe", "style="):
        assert fragment not in cleaned


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_text_and_url_never_raise(value: str) -> None:
    html_to_text(value)
    clean_url(value, BASE)
