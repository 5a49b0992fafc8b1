"""Value objects passed between the pipeline stages.

Connectors turn a source's documents into `RawItem` values. Transforms turn a raw item into a
`NormalisedNotice`, then add language, translations and `Tag` values. The store keeps all of them;
publishers read what is due from the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class DatePrecision(StrEnum):
    """How much of a published time the source printed."""

    DATETIME = "datetime"
    DATE = "date"
    NONE = "none"


@dataclass(frozen=True)
class ParsedDate:
    """A date string read as an instant, with its provenance.

    `instant` is time-zone aware and in UTC. For a date without a time it is local midnight of that
    day in the source's zone, and `precision` is DATE so that readers are shown the day only.
    """

    instant: datetime
    precision: DatePrecision
    zone_assumed: bool
    raw: str


@dataclass
class RawItem:
    """One item as a connector found it, before normalisation.

    Text fields are as the source wrote them (HTML allowed); URLs are absolute, resolved against the
    final URL of the document. `language` is the language the document or item declared, if any.
    """

    source_id: str
    guid: str | None = None
    url: str | None = None
    title: str | None = None
    summary_html: str | None = None
    body_html: str | None = None
    published_raw: str | None = None
    updated_raw: str | None = None
    language: str | None = None
    alternates: dict[str, str] = field(default_factory=dict)
    categories: list[str] = field(default_factory=list)
    author: str | None = None


@dataclass
class NormalisedNotice:
    """A raw item after date parsing, sanitising and identity, ready to be stored."""

    id: str
    source_id: str
    guid: str | None
    url: str | None
    canonical_url: str | None
    title: str
    summary_html: str
    summary_text: str
    body_html: str
    body_text: str
    published: ParsedDate | None
    published_raw: str | None
    updated: ParsedDate | None
    declared_language: str | None
    content_hash: str
    alternates: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LanguageResult:
    """The language of a text and how it was decided (`declared`, `detected` or `inferred`)."""

    code: str | None
    confidence: float
    method: str


@dataclass(frozen=True)
class Tag:
    """A region or topic tag with the rule that produced it, for `notices --explain`."""

    kind: str
    value: str
    rule: str
    detail: str = ""
