"""Atom 1.0 (RFC 4287) entries and pages, derived from the JSON Feed items.

Entries are built from the same item objects as the JSON feeds, so both formats show the same
fields. Text is escaped here, and characters that XML 1.0 forbids are dropped, because stored text
comes from outside sources.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape, quoteattr

ATOM_NAMESPACE = "http://www.w3.org/2005/Atom"
EMPTY_FEED_UPDATED = "1970-01-01T00:00:00Z"
INVALID_XML_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: str) -> str:
    if not value.isprintable():
        value = INVALID_XML_CHARACTERS.sub("", value)
    return escape(value)


def _attribute(value: str) -> str:
    return quoteattr(INVALID_XML_CHARACTERS.sub("", value))


def entry_id(item: Mapping[str, Any], base_url: str) -> str:
    """Return the permanent Atom id of an item: the API address of its notice."""
    return f"{base_url}/notices/{item['id']}"


def render_entry(item: Mapping[str, Any], base_url: str) -> bytes:
    """Return the `<entry>` element of a JSON Feed item."""
    updated = item["date_modified"]
    lines = ["<entry"]
    if item.get("language"):
        lines[0] += f" xml:lang={_attribute(item['language'])}"
    lines[0] += ">"

    lines.append(f"<id>{_text(entry_id(item, base_url))}</id>")
    lines.append(f'<title type="text">{_text(item["title"])}</title>')
    link = f'<link rel="alternate" type="text/html" href={_attribute(item["url"])}'
    if item.get("language"):
        link += f" hreflang={_attribute(item['language'])}"
    lines.append(link + "/>")
    if item.get("date_published"):
        lines.append(f"<published>{item['date_published']}</published>")
    lines.append(f"<updated>{updated}</updated>")
    for author in item.get("authors", []):
        lines.append(f"<author><name>{_text(author['name'])}</name></author>")
    for tag in item.get("tags", []):
        lines.append(f"<category term={_attribute(tag)}/>")
    if item.get("summary"):
        lines.append(f'<summary type="text">{_text(item["summary"])}</summary>')
    if item.get("content_html"):
        lines.append(f'<content type="html">{_text(item["content_html"])}</content>')
    else:
        lines.append(f'<content type="text">{_text(item["content_text"])}</content>')
    lines.append("</entry>")
    return "".join(lines).encode("utf-8")


def render_page(
    meta: Mapping[str, Any],
    entries: Sequence[bytes],
    updated: str | None,
    next_url: str | None,
) -> bytes:
    """Assemble one Atom page.

    `meta` contains `title`, `feed_url` (this page), `home_page_url` and optionally `language`.
    `updated` is the newest entry time, so an unchanged selection gives unchanged bytes.
    """
    opening = f'<feed xmlns="{ATOM_NAMESPACE}"'
    if meta.get("language"):
        opening += f" xml:lang={_attribute(meta['language'])}"
    parts = [
        '<?xml version="1.0" encoding="utf-8"?>\n',
        opening + ">\n",
        f"<id>{_text(meta['feed_url'])}</id>\n",
        f'<title type="text">{_text(meta["title"])}</title>\n',
        f"<updated>{updated or EMPTY_FEED_UPDATED}</updated>\n",
        f"<author><name>{_text(meta.get('author', 'Noticeboard'))}</name></author>\n",
        f'<link rel="self" type="application/atom+xml" href={_attribute(meta["feed_url"])}/>\n',
        f'<link rel="alternate" type="text/html" href={_attribute(meta["home_page_url"])}/>\n',
    ]
    if next_url:
        parts.append(
            f'<link rel="next" type="application/atom+xml" href={_attribute(next_url)}/>\n'
        )
    encoded = [part.encode("utf-8") for part in parts]
    for entry in entries:
        encoded.append(entry)
        encoded.append(b"\n")
    encoded.append(b"</feed>\n")
    return b"".join(encoded)
