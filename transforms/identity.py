"""Stable notice ids, canonical URLs and hashes of a notice's material text.

A notice's id is derived from its source and guid, so the same notice gets the same id on every
run. The canonical URL is used instead when the guid is missing or looks volatile (it carries a
session, a time stamp or a cache-busting parameter). `content_hash` ignores what is not material:
white space, tracking parameters in links and "page generated at" time stamps.
"""

from __future__ import annotations

import functools
import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from noticeboard.models import RawItem
from transforms.html import clean_url, html_to_text, is_tracking_parameter

_SEPARATOR = "\x1f"
_VOLATILE_GUID = re.compile(
    r"(jsessionid|phpsessid|sessionid|[?&;](sid|session|ts|timestamp|time|nocache|cb|_)=)",
    re.IGNORECASE,
)
_URL_IN_TEXT = re.compile(r"https?://[^\s<>\"')\]]+", re.IGNORECASE)
_SPACE = re.compile(r"\s+")
_STAMP_DATE = (
    r"[\s:,\-–]*(?:[\d./:\-+]+|(?<=\d)[TZ]|\b(?:klo|kl|kell|at|on|um|в)\b|\s)*"
    r"(?:\b(?:EET|EEST|CET|CEST|UTC|GMT)\b)?"
)
# Boilerplate that changes on every render. The phrase and the date or time after it are removed.
_PAGE_STAMP = re.compile(
    r"(?:page (?:was )?(?:generated|rendered|updated|created)(?: (?:at|on))?"
    r"|generated (?:at|on)|last generated|rendered (?:at|on)"
    r"|sivu (?:päivitetty|luotu|generoitu|muodostettu)"
    r"|sidan (?:uppdaterad|genererad|skapad)(?: den)?"
    r"|lehte? (?:uuendatud|genereeritud|loodud)|lehekülg (?:uuendatud|genereeritud)"
    r"|lapa (?:atjaunota|ģenerēta|izveidota)"
    r"|страница (?:обновлена|сгенерирована|создана))" + _STAMP_DATE,
    re.IGNORECASE,
)
# Words that each match of `_PAGE_STAMP` or `_RENDER_TIME` contains, in lower case. Text without
# any of them skips the expressions, which cost more than the rest of the normalisation.
_STAMP_HINTS = ("page", "generated", "rendered", "sivu", "sidan", "leht", "lapa", "страница")
_RENDER_HINTS = ("generated", "rendered", "created")
_RENDER_TIME = re.compile(
    r"(?:generated|rendered|created) in \d+(?:[.,]\d+)?\s*(?:ms|s|seconds|sekuntia|sekunder)\b",
    re.IGNORECASE,
)


def notice_id(
    source_id: str,
    guid: str | None,
    canonical_url: str | None,
    *,
    fallback: str | None = None,
) -> str:
    """Return the stable id of a notice: 32 hex digits.

    The guid is used unless it is empty or volatile. A guid that is a URL is canonicalised first,
    so a site that moves its guids from http to https keeps its ids. `fallback` (the title, for
    items with neither guid nor link) is used last. Raises ValueError when all three are empty.
    """
    guid_key = stable_guid(guid)
    if guid_key:
        material = f"guid{_SEPARATOR}{guid_key}"
    elif canonical_url:
        material = f"url{_SEPARATOR}{canonical_url}"
    elif fallback and fallback.strip():
        material = f"text{_SEPARATOR}{_fold(fallback)}"
    else:
        raise ValueError(
            f"source {source_id}: item has no guid, no link and no title, so it has no identity; "
            "check the connector's selectors"
        )
    return _digest(source_id + _SEPARATOR + material)


def stable_guid(guid: str | None) -> str | None:
    """Return the guid in comparable form, or None when it is empty or looks volatile."""
    if guid is None or not guid.strip():
        return None
    guid = guid.strip()
    if _VOLATILE_GUID.search(guid):
        return None
    if guid.lower().startswith(("http://", "https://")):
        return canonical_url(guid) or None
    return guid


def canonical_url(url: str | None) -> str:
    """Return the form of `url` used for identity and comparisons.

    Besides what `clean_url` does, http becomes https, a leading `www.` and a trailing slash are
    dropped and the parameters are sorted. A fragment is kept when it looks like an item anchor
    (`#item-2`), because on some listing pages it is the only difference between notices. A
    fragment with `=` in it is tracking or state and is dropped. Returns "" for an empty URL.
    """
    cleaned = clean_url(url, keep_fragment=True)
    if not cleaned:
        return ""
    try:
        parts = urlsplit(cleaned)
    except ValueError:
        return cleaned

    scheme = "https" if parts.scheme in ("http", "https") else parts.scheme
    host = parts.netloc.removeprefix("www.")
    path = parts.path.rstrip("/") if parts.path not in ("", "/") else ""
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    fragment = parts.fragment if parts.fragment and "=" not in parts.fragment else ""
    return urlunsplit((scheme, host, path, query, fragment))


def content_hash(title: str, body_text: str) -> str:
    """Return a SHA-256 hex digest of the material text of a title and body."""
    material = material_text(title) + _SEPARATOR + material_text(body_text)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=64)
def material_text(text: str | None) -> str:
    """Return `text` without what changes between renders of an unchanged notice.

    Cached because the content hash and the SimHash of a notice both need the material text of
    its title and body, and the page-stamp expression is slow.
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFC", text)
    lowered = text.lower()
    if "http" in lowered:
        text = _URL_IN_TEXT.sub(lambda match: _strip_url_tracking(match.group(0)), text)
    if any(hint in lowered for hint in _STAMP_HINTS):
        text = _PAGE_STAMP.sub(" ", text)
    if any(hint in lowered for hint in _RENDER_HINTS):
        text = _RENDER_TIME.sub(" ", text)
    # Splitting on white space and joining with one space collapses and trims it, as `\s+` would.
    return " ".join(text.split())


def listing_key(raw: RawItem) -> str:
    """Return the key under which a fetch lists an item, for withdrawal tracking.

    The key is computed from the canonical link first, then the guid, then the title, because a
    link survives the guid regeneration of a site rebuild. `keys_of_notice` gives the same keys
    for a stored notice.
    """
    title = html_to_text(raw.title or "")
    return _listing_key(canonical_url(raw.url), raw.guid, title)


def keys_of_notice(canonical: str | None, guid: str | None, title: str | None) -> str:
    """Return the listing key of a stored notice, from its stored canonical URL, guid and title."""
    return _listing_key(canonical or "", guid, title or "")


def _listing_key(canonical: str, guid: str | None, title: str) -> str:
    if canonical:
        return "u:" + _digest(canonical)[:24]
    if guid and guid.strip():
        return "g:" + _digest(guid.strip())[:24]
    return "t:" + _digest(_fold(title))[:24]


def _strip_url_tracking(url: str) -> str:
    trailing = ""
    while url and url[-1] in ".,;:!?":
        trailing = url[-1] + trailing
        url = url[:-1]
    try:
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return url + trailing
    kept = [(name, value) for name, value in pairs if not is_tracking_parameter(name)]
    if len(kept) == len(pairs):
        return url + trailing
    return (
        urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(kept), parts.fragment))
        + trailing
    )


def _fold(text: str) -> str:
    return _SPACE.sub(" ", unicodedata.normalize("NFC", text)).strip().casefold()


def _digest(material: str) -> str:
    return hashlib.blake2b(material.encode("utf-8"), digest_size=16).hexdigest()
