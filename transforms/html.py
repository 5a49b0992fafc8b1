"""Cleaning the HTML and URLs that sources send, and turning HTML into plain text.

`sanitize_html` keeps an allow-list of tags (headings, paragraphs, lists, links, images, tables)
through nh3, the binding of the Rust sanitiser ammonia. Scripts, styles, iframes, event handlers
and every URL scheme but http, https and mailto are removed. Links and image sources are made
absolute against the document's URL and lose tracking parameters.
"""

from __future__ import annotations

import logging
import re
from html import escape
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import nh3

logger = logging.getLogger(__name__)

ALLOWED_TAGS = frozenset(
    {
        "a",
        "abbr",
        "b",
        "blockquote",
        "br",
        "caption",
        "code",
        "dd",
        "del",
        "div",
        "dl",
        "dt",
        "em",
        "figcaption",
        "figure",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "i",
        "img",
        "ins",
        "li",
        "ol",
        "p",
        "pre",
        "q",
        "s",
        "small",
        "span",
        "strong",
        "sub",
        "sup",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "time",
        "tr",
        "u",
        "ul",
    }
)
ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "abbr": {"title"},
    "ol": {"start"},
}
ALLOWED_SCHEMES = frozenset({"http", "https", "mailto"})
URL_ATTRIBUTES = frozenset({("a", "href"), ("img", "src")})

# Query parameters that only identify a campaign or a click. Names are compared in lower case.
TRACKING_PARAMETERS = frozenset(
    {
        "fbclid",
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "igshid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "hsctatracking",
        "mkt_tok",
        "_ga",
        "_gl",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
        "vero_conv",
        "wt.mc_id",
        "wt_mc_id",
        "xtor",
        "s_cid",
        "ncid",
        "cmpid",
        "sr_share",
        "ref_src",
        "ref_url",
        "spm",
        "trk",
        "trkcampaign",
    }
)
TRACKING_PREFIXES = ("utm_", "pk_", "mtm_", "matomo_", "piwik_", "at_", "hsa_")
# Query parameters that only defeat caches; the same document is served without them.
CACHE_BUSTING_PARAMETERS = frozenset(
    {
        "_",
        "cb",
        "cachebuster",
        "cache_buster",
        "nocache",
        "no_cache",
        "_t",
        "_ts",
        "rnd",
        "rand",
        "random",
    }
)

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "caption",
        "dd",
        "div",
        "dl",
        "dt",
        "figcaption",
        "figure",
        "footer",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hr",
        "li",
        "main",
        "nav",
        "ol",
        "p",
        "pre",
        "section",
        "table",
        "tr",
        "ul",
    }
)
_SKIPPED_TAGS = frozenset({"script", "style", "template", "noscript", "iframe", "object", "head"})
_SPACE_CHARACTERS = r"[ \t\r\n\f\v\u00a0\u200b\u2028\u2029]"
# The runs of white space that are not a single space already. Replacing only those with a space
# gives the same text as replacing every run, and is much faster, because most runs are one space.
_SPACE_TO_COLLAPSE = re.compile(
    r"[\t\r\n\f\v\u00a0\u200b\u2028\u2029]" + _SPACE_CHARACTERS + "*| " + _SPACE_CHARACTERS + "+"
)
# A block tag, captured, so that splitting on it keeps the tags. Beginning with `<` lets the
# expression engine skip to each tag instead of trying every character.
_BLOCK_TAG = re.compile(
    r"(</?(?:"
    + "|".join(sorted(_BLOCK_TAGS | {"br", "li", "tr", "td", "th", "tbody", "thead", "tfoot"}))
    + r")\b[^>]*>)"
)
_SENTENCE_END = re.compile(r"[.!?…](?=\s)")
ELLIPSIS = "…"


MAX_SANITIZE_PASSES = 3


def sanitize_html(html: str, base_url: str | None) -> str:
    """Return `html` reduced to the allow-list, with absolute, tracking-free URLs.

    White space is collapsed and entities other than `&amp;`, `&lt;`, `&gt;` and `&quot;` come
    out as characters. Returns an empty string for empty or unreadable input, never raises.
    """
    if not html or not html.strip():
        return ""

    def filter_attribute(tag: str, attribute: str, value: str) -> str | None:
        if (tag, attribute) not in URL_ATTRIBUTES:
            return value
        return _safe_url(value, base_url)

    def clean(markup: str) -> str:
        return nh3.clean(
            markup,
            tags=set(ALLOWED_TAGS),
            attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
            url_schemes=set(ALLOWED_SCHEMES),
            attribute_filter=filter_attribute,
            link_rel="noopener noreferrer",
            strip_comments=True,
        )

    try:
        cleaned = _collapse_space(clean(html))
        # Misnested markup (an <a> inside a <table> inside an <a>) can come out of one pass in a
        # form that a second pass parses differently; repeat until the output is stable, so that
        # sanitising stored HTML again never changes it.
        for _ in range(MAX_SANITIZE_PASSES):
            again = _collapse_space(clean(cleaned))
            if again == cleaned:
                break
            cleaned = again
    except Exception as error:  # noqa: BLE001 (hostile input must not stop a run)
        logger.warning("sanitize_failed base_url=%s error=%s", base_url, error)
        return escape(html_to_text(html))

    return cleaned


def _safe_url(value: str, base_url: str | None) -> str | None:
    resolved = clean_url(value, base_url, keep_fragment=True)
    scheme = urlsplit(resolved).scheme.lower() if resolved else ""
    if scheme not in ALLOWED_SCHEMES:
        return None
    return resolved


def _collapse_space(html: str) -> str:
    """Collapse white space to single spaces and drop it next to block tags."""
    collapsed = _SPACE_TO_COLLAPSE.sub(" ", html.replace("&nbsp;", " "))
    # Splitting keeps the tags at the odd positions; the text between them loses its edges.
    parts = _BLOCK_TAG.split(collapsed)
    return "".join(
        part if position % 2 else part.strip() for position, part in enumerate(parts)
    ).strip()


class _TextExtractor(HTMLParser):
    """Collects text with a blank line after each block and a line break at `<br>`."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    """Return the text of `html`, paragraphs separated by a blank line and list items by `- `."""
    if not html:
        return ""

    # Without `<` or `&` there is no markup or entity, and the parser would return the text as is.
    text = html if "<" not in html and "&" not in html else _extract_text(html)
    paragraphs = []
    for block in re.split(r"\n\s*\n", text):
        lines = [_SPACE_TO_COLLAPSE.sub(" ", line).strip() for line in block.split("\n")]
        joined = "\n".join(line for line in lines if line)
        if joined and joined != "-":
            paragraphs.append(joined)
    return "\n\n".join(paragraphs)


def _extract_text(html: str) -> str:
    """Return the text of `html` with the line breaks that its block tags stand for."""
    extractor = _TextExtractor()
    try:
        extractor.feed(html)
        extractor.close()
    except Exception as error:  # noqa: BLE001 (html.parser can fail on some broken markup)
        logger.debug("html_to_text_partial error=%s", error)
    return "".join(extractor.parts)


def summarize(text: str, max_chars: int) -> str:
    """Shorten `text` to at most `max_chars` characters, ending with an ellipsis when cut.

    The cut falls after the last whole sentence when that keeps at least half the room, else
    after the last whole word. A single word longer than the room is cut inside the word.
    """
    text = _SPACE_TO_COLLAPSE.sub(" ", text or "").strip()
    if max_chars <= 0:
        return ""
    if len(text) <= max_chars:
        return text
    if max_chars == 1:
        return ELLIPSIS

    room = text[: max_chars - 1]
    sentence_ends = [match.end() for match in _SENTENCE_END.finditer(room + " ")]
    if sentence_ends and sentence_ends[-1] >= max_chars // 2 and sentence_ends[-1] <= max_chars - 2:
        return room[: sentence_ends[-1]] + " " + ELLIPSIS

    cut = room.rfind(" ")
    if cut > 0 and text[max_chars - 1] != " ":
        room = room[:cut]
    return room.rstrip(" ,;:-–—") + ELLIPSIS


def clean_url(url: str | None, base: str | None = None, *, keep_fragment: bool = False) -> str:
    """Return `url` made absolute against `base`, without tracking or cache-busting parameters.

    Scheme and host are lower-cased, default ports and the fragment are dropped (unless
    `keep_fragment`), and the remaining parameters keep their order. Returns an empty string for
    an empty or unreadable URL, never raises.
    """
    if not url or not url.strip():
        return ""
    try:
        joined = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(joined)
        query = _strip_parameters(parts.query)
        netloc = _normalise_netloc(parts.scheme.lower(), parts.netloc)
        fragment = parts.fragment if keep_fragment else ""
        return urlunsplit((parts.scheme.lower(), netloc, parts.path, query, fragment))
    except ValueError as error:
        logger.debug("clean_url_failed url=%r error=%s", url, error)
        return ""


def is_tracking_parameter(name: str) -> bool:
    """Tell whether a query parameter only tracks campaigns or defeats caches."""
    lowered = name.lower()
    return (
        lowered in TRACKING_PARAMETERS
        or lowered in CACHE_BUSTING_PARAMETERS
        or lowered.startswith(TRACKING_PREFIXES)
    )


def _strip_parameters(query: str) -> str:
    if not query:
        return ""
    pairs = parse_qsl(query, keep_blank_values=True)
    kept = [(name, value) for name, value in pairs if not is_tracking_parameter(name)]
    if len(kept) == len(pairs):
        return query
    return urlencode(kept)


def _normalise_netloc(scheme: str, netloc: str) -> str:
    userinfo, _, hostport = netloc.rpartition("@")
    host, _, port = hostport.partition(":") if not hostport.startswith("[") else (hostport, "", "")
    host = host.lower().rstrip(".")
    if (scheme, port) in (("http", "80"), ("https", "443")):
        port = ""
    rebuilt = host + (f":{port}" if port else "")
    return f"{userinfo}@{rebuilt}" if userinfo else rebuilt
