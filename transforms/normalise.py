"""Turning one raw item into a normalised notice: dates, clean text, URLs and identity."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from html import escape
from urllib.parse import urlsplit

from noticeboard.catalog import Source
from noticeboard.models import NormalisedNotice, ParsedDate, RawItem
from noticeboard.settings import Settings
from transforms.dates import parse_date_with_reason
from transforms.html import clean_url, html_to_text, sanitize_html, summarize
from transforms.identity import canonical_url, content_hash, notice_id

logger = logging.getLogger(__name__)

MAX_TITLE_CHARS = 500
UNTITLED_CHARS = 120
_LANGUAGE_TAG = re.compile(r"^([a-zA-Z]{2,3})(?:[-_][A-Za-z0-9]+)*$")


def normalise_item(
    raw: RawItem,
    source: Source,
    *,
    settings: Settings,
    now: datetime,
) -> NormalisedNotice:
    """Normalise `raw` from `source`; raises ValueError when it has no title, text or link.

    A missing or unreadable date gives `published=None` (the raw string is kept and a warning
    names the source); the store then falls back to the first-seen time and marks it.
    """
    link = _web_link(raw.url, source.id)
    url = clean_url(link)
    canonical = canonical_url(link)

    body_html = sanitize_html(raw.body_html or "", link)
    summary_source = sanitize_html(raw.summary_html or "", link)
    summary_plain = html_to_text(summary_source)
    body_text = html_to_text(body_html) if body_html else summary_plain
    summary_text = summarize(summary_plain or body_text, settings.summary_chars)
    summary_html = summary_source if summary_source else _paragraph(summary_text)
    if not body_html:
        body_html = summary_source

    title = _clean_title(raw.title) or summarize(body_text, UNTITLED_CHARS) or url
    if not title:
        raise ValueError(
            f"source {source.id}: item guid={raw.guid!r} has no title, no text and no link; "
            "check the connector's selectors"
        )

    published = _parse(raw.published_raw, "published", raw, source, now)
    updated = _parse(raw.updated_raw, "updated", raw, source, now)
    identity = notice_id(source.id, raw.guid, canonical or None, fallback=title)

    return NormalisedNotice(
        id=identity,
        source_id=source.id,
        guid=raw.guid.strip() if raw.guid and raw.guid.strip() else None,
        url=url or None,
        canonical_url=canonical or None,
        title=title,
        summary_html=summary_html,
        summary_text=summary_text,
        body_html=body_html,
        body_text=body_text,
        published=published,
        published_raw=raw.published_raw,
        updated=updated,
        declared_language=_language_code(raw.language),
        content_hash=content_hash(title, body_text),
        alternates=_clean_alternates(raw.alternates),
    )


def _clean_title(title: str | None) -> str:
    if not title:
        return ""
    text = html_to_text(title).replace("\n", " ")
    text = re.sub(r"\s+", " ", text).strip()
    return summarize(text, MAX_TITLE_CHARS)


def _paragraph(text: str) -> str:
    return f"<p>{escape(text, quote=False)}</p>" if text else ""


def _parse(
    value: str | None,
    field: str,
    raw: RawItem,
    source: Source,
    now: datetime,
) -> ParsedDate | None:
    if value is None or not value.strip():
        return None

    parsed, reason = parse_date_with_reason(
        value, source.timezone, languages=source.languages, now=now
    )
    if parsed is None:
        logger.warning(
            "date_unparsed source=%s field=%s raw=%r guid=%s reason=%s",
            source.id,
            field,
            value,
            raw.guid,
            reason,
        )
    return parsed


def _language_code(language: str | None) -> str | None:
    if not language:
        return None
    match = _LANGUAGE_TAG.match(language.strip())
    return match.group(1).lower() if match else None


def _clean_alternates(alternates: dict[str, str] | None) -> dict[str, str]:
    cleaned: dict[str, str] = {}
    for language, href in (alternates or {}).items():
        code = _language_code(language) or language.strip().lower()
        url = clean_url(href)
        if code and url:
            cleaned[code] = url
    return cleaned


def _web_link(url: str | None, source_id: str) -> str | None:
    """Return `url` if it is an absolute http(s) address, else None.

    A javascript:, data: or relative link is dropped and logged, so it never reaches a feed, a
    post or a mail.
    """
    if not url:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    logger.warning(
        "link_dropped source=%s reason=not an absolute http(s) URL scheme=%s", source_id, parts.scheme or "-"
    )
    return None
