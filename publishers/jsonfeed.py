"""JSON Feed 1.1 items and pages (https://www.jsonfeed.org/version/1.1/).

`build_item` turns a stored notice into the item object that every publisher shares: the feed
files, the HTTP API, the webhook body, and the Atom entries derived from it. Items are rendered in
the notice's own language, or in a target language where a finished translation exists.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from noticeboard.catalog import Catalog
from noticeboard.views import NoticeView, TranslationView

VERSION_URL = "https://jsonfeed.org/version/1.1"
EXTENSION_KEY = "_noticeboard"
PUBLIC_URL_SCHEMES = ("http", "https")
UNSAFE_URL_CHARACTERS = re.compile(r'[\x00-\x20\x7f"<>\\^`{|}]')


@dataclass(frozen=True)
class FeedContext:
    """The inputs of item rendering besides the notice: the public address and authority names."""

    base_url: str
    authorities: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def create(cls, base_url: str, catalog: Catalog | None = None) -> FeedContext:
        """Build the context; without a catalog, authors are named by their source id."""
        authorities: dict[str, str] = {}
        if catalog is not None:
            authorities = {source.id: source.authority for source in catalog.sources.values()}
        return cls(base_url=base_url.rstrip("/"), authorities=authorities)

    def notice_url(self, notice_id: str) -> str:
        """Return the API address of one notice, used where the authority gave no link."""
        return f"{self.base_url}/notices/{notice_id}"

    def feed_url(self, path: str) -> str:
        """Return the public address of a feed file, given its path under the output folder."""
        return f"{self.base_url}/{path}"


def rfc3339(moment: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with a `Z` suffix, to whole seconds."""
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment.isoformat()} given; feeds need aware values")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public_url(value: str | None) -> str | None:
    """Return `value` when it is an absolute http(s) URL, else None.

    Characters that RFC 3986 does not allow in a URL are percent-encoded (space, `<`, `>`, `"`,
    backslash and the like). So the result cannot end an attribute or a link in HTML, Markdown
    or XML.
    """
    if not value:
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in PUBLIC_URL_SCHEMES or not parts.netloc:
        return None
    return UNSAFE_URL_CHARACTERS.sub(lambda match: quote(match.group(0), safe=""), value)


def item_languages(view: NoticeView) -> list[str]:
    """Return the languages a notice can be shown in: its own, then its finished translations."""
    languages: list[str] = []
    if view.notice.language:
        languages.append(view.notice.language)
    for language in sorted(view.translations):
        if language not in languages:
            languages.append(language)
    return languages


def build_item(
    view: NoticeView, context: FeedContext, language: str | None = None
) -> dict[str, Any]:
    """Return the JSON Feed item of a notice, in `language` where translated, else as stored.

    Only the sanitised HTML and plain text that normalisation stored are used.
    """
    notice = view.notice
    translation = None
    if language and language != notice.language:
        translation = view.translations.get(language)

    if translation is not None:
        title = translation.title
        summary = translation.summary_text
        content_html = translation.body_html or translation.summary_html
        content_text = translation.body_text or translation.summary_text
        shown_language = translation.language
    else:
        title = notice.title
        summary = notice.summary_text
        content_html = notice.body_html or notice.summary_html
        content_text = notice.body_text or notice.summary_text
        shown_language = notice.language

    item: dict[str, Any] = {
        "id": notice.id,
        "url": (
            public_url(notice.canonical_url)
            or public_url(notice.url)
            or context.notice_url(notice.id)
        ),
        "title": title,
        "content_html": content_html,
        "content_text": content_text or title,
        "summary": summary,
    }
    if notice.published_at is not None:
        item["date_published"] = rfc3339(notice.published_at)
    item["date_modified"] = rfc3339(notice.updated_at or notice.changed_at)
    if shown_language:
        item["language"] = shown_language
    authority = context.authorities.get(notice.source_id) or notice.authority or notice.source_id
    item["authors"] = [{"name": authority}]
    item["tags"] = [*view.regions, *view.topics]
    item[EXTENSION_KEY] = _extension(view, context, translation)
    return item


def _extension(
    view: NoticeView, context: FeedContext, translation: TranslationView | None
) -> dict[str, Any]:
    notice = view.notice
    extension: dict[str, Any] = {
        "source": notice.source_id,
        "version": notice.version,
        "original_language": notice.language,
        "regions": view.regions,
        "topics": view.topics,
        "translation_provider": None,
        "variant_group": notice.variant_group,
        "duplicate_group": notice.duplicate_group,
        "published_precision": notice.published_precision,
    }
    if translation is not None:
        extension["translation_provider"] = translation.provider
        extension["original"] = {
            "language": notice.language,
            "title": notice.title,
            "url": context.notice_url(notice.id),
        }
        if notice.language:
            extension["original"]["feed_url"] = context.feed_url(
                f"languages/{notice.language}.json"
            )
    return extension


def dumps_item(item: Mapping[str, Any]) -> bytes:
    """Serialise an item compactly; equal items always give equal bytes."""
    return json.dumps(item, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render_page(
    meta: Mapping[str, Any],
    items: Sequence[bytes],
    next_url: str | None,
) -> bytes:
    """Assemble one feed page from its top-level fields and already serialised items."""
    head = {"version": VERSION_URL, **meta}
    parts = [json.dumps(head, ensure_ascii=False, separators=(",", ":")).encode("utf-8")[:-1]]
    parts.append(b',"items":[')
    parts.append(b",".join(items))
    parts.append(b"]")
    if next_url:
        parts.append(b',"next_url":' + json.dumps(next_url).encode("utf-8"))
    parts.append(b"}\n")
    return b"".join(parts)
