"""RSS 0.9x, 1.0 and 2.0 and Atom feeds, read with feedparser.

feedparser gets the text that the fetcher decoded, re-encoded as UTF-8, so the charset rules of
`connectors._charset` apply to feeds too. The original Content-Type goes along, with its charset
changed to UTF-8 when it named one. The final URL after redirects goes along as Content-Location,
because feedparser resolves relative links only against a base it knows. Without it, links in a
feed fetched with requests stay relative (`/uudised/...`).

feedparser never raises on malformed XML: it sets `bozo` and keeps what it recovered. A bozo feed
with entries is read, and its error is logged and returned as a warning. A CharacterEncodingOverride
on a feed that decoded fine is only a warning. A document with no entries that is bozo or not a
feed at all raises `ParseError`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

import feedparser

from connectors._charset import header_charset
from connectors._language import primary_language
from connectors.http import FetchedDocument
from noticeboard.catalog import Source
from noticeboard.errors import ParseError
from noticeboard.models import RawItem

logger = logging.getLogger(__name__)

XML_ENCODING = re.compile(r"""^(\s*<\?xml[^>]*?\bencoding\s*=\s*["'])([^"']*)(["'])""")
CHARSET_PARAM = re.compile(r"charset\s*=\s*[^;]*", re.IGNORECASE)


@dataclass
class FeedResult:
    """The items of one feed document and the problems that did not stop reading it."""

    items: list[RawItem]
    warnings: list[str] = field(default_factory=list)
    language: str | None = None


def parse_feed(document: FetchedDocument, source: Source) -> FeedResult:
    """Read every entry of a fetched feed as a `RawItem`."""
    # feedparser's own HTML sanitiser is off: normalisation sanitises all markup with nh3 under a
    # stricter allow-list, and skipping the first pass saves a fifth of the parsing time.
    # Relative URIs are still resolved here, against the final URL, because only the parser
    # tracks the `xml:base` of each element.
    parsed = feedparser.parse(
        _utf8_body(document), response_headers=_feed_headers(document), sanitize_html=False
    )
    warnings: list[str] = []
    if document.encoding_warning:
        warnings.append(f"encoding: {document.encoding_warning}")

    entries = parsed.get("entries") or []
    if parsed.get("bozo"):
        error = parsed.get("bozo_exception")
        detail = f"{type(error).__name__}: {error}"
        if not entries:
            logger.error(
                "feed_unreadable source=%s url=%s error=%s", source.id, document.final_url, detail
            )
            raise ParseError(source.id, document.final_url, f"not a readable feed ({detail})")
        kind = (
            "encoding"
            if isinstance(error, feedparser.CharacterEncodingOverride)
            else "malformed feed"
        )
        logger.warning(
            "feed_recovered source=%s url=%s entries=%d error=%s",
            source.id,
            document.final_url,
            len(entries),
            detail,
        )
        warnings.append(f"{kind}: {detail}")
    elif not entries and not parsed.get("version"):
        raise ParseError(
            source.id,
            document.final_url,
            "document is neither RSS nor Atom; check the URL and the source kind",
        )

    feed_language = primary_language(parsed.feed.get("language"))
    items: list[RawItem] = []
    for entry in entries:
        item = _raw_item(entry, source, feed_language)
        if item.title or item.url or item.guid:
            items.append(item)
        else:
            # A truncated document often ends in an entry that has nothing left to read.
            logger.warning(
                "entry_skipped source=%s url=%s reason=empty", source.id, document.final_url
            )
            warnings.append("skipped an entry without title, link or id")
    return FeedResult(items=items, warnings=warnings, language=feed_language)


def _utf8_body(document: FetchedDocument) -> bytes:
    text = XML_ENCODING.sub(r"\1utf-8\3", document.text, count=1)
    return text.encode("utf-8")


def _feed_headers(document: FetchedDocument) -> dict[str, str]:
    headers = {"content-location": document.final_url}
    content_type = document.content_type
    if content_type:
        if header_charset(content_type):
            content_type = CHARSET_PARAM.sub("charset=utf-8", content_type)
        headers["content-type"] = content_type
    language = document.headers.get("content-language")
    if language:
        headers["content-language"] = language
    return headers


def _raw_item(entry: Any, source: Source, feed_language: str | None) -> RawItem:
    summary = entry.get("summary")
    body = None
    contents = entry.get("content") or []
    if contents:
        body = "".join(part.get("value", "") for part in contents) or None
        if summary == body:
            summary = None

    language = _entry_language(entry) or feed_language
    alternates = _alternates(entry)
    published = entry.get("published") or None
    # `entry.get("updated")` falls back to `published` with a DeprecationWarning in feedparser 6.
    updated = dict.get(entry, "updated") or None
    return RawItem(
        source_id=source.id,
        guid=entry.get("id") or None,
        url=_main_link(entry, language),
        title=entry.get("title") or None,
        summary_html=summary or None,
        body_html=body,
        published_raw=published,
        updated_raw=updated,
        language=language,
        alternates=alternates,
        categories=[tag.get("term") for tag in entry.get("tags") or [] if tag.get("term")],
        author=entry.get("author") or None,
    )


def _main_link(entry: Any, language: str | None) -> str | None:
    """Return the entry's own link: an alternate link without hreflang, or one in its language.

    feedparser's `link` is the last alternate link, which can be another language version.
    """
    candidates = [
        link
        for link in entry.get("links") or []
        if link.get("rel") == "alternate" and link.get("href")
    ]
    for link in candidates:
        if not link.get("hreflang"):
            return str(link["href"])
    for link in candidates:
        if language and primary_language(link.get("hreflang")) == language:
            return str(link["href"])
    return entry.get("link") or None


def _entry_language(entry: Any) -> str | None:
    for key in ("title_detail", "summary_detail"):
        detail = entry.get(key) or {}
        language = primary_language(detail.get("language"))
        if language:
            return language
    for content in entry.get("content") or []:
        language = primary_language(content.get("language"))
        if language:
            return language
    return None


def _alternates(entry: Any) -> dict[str, str]:
    alternates: dict[str, str] = {}
    for link in entry.get("links") or []:
        hreflang = link.get("hreflang")
        href = link.get("href")
        if link.get("rel") == "alternate" and hreflang and href:
            alternates[hreflang.strip().lower()] = href
    return alternates
