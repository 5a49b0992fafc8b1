"""Read models of stored notices, shared by the CLI export, the feeds, the API and the mailers.

`NoticeView` gathers a notice with its tags and translations, so that every publisher shows the
same fields. `export_record` is the documented `notices --format jsonl` object.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from noticeboard.store.tables import Notice, NoticeTag, Translation

DEFAULT_BATCH_SIZE = 500


@dataclass
class TranslationView:
    """A finished translation of a notice into one language."""

    language: str
    title: str
    summary_text: str
    summary_html: str
    body_text: str
    body_html: str
    provider: str | None


@dataclass
class NoticeView:
    """A stored notice with its tags and finished translations."""

    notice: Notice
    regions: list[str] = field(default_factory=list)
    topics: list[str] = field(default_factory=list)
    tag_rules: list[NoticeTag] = field(default_factory=list)
    translations: dict[str, TranslationView] = field(default_factory=dict)
    pending_languages: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return self.notice.id

    def published_iso(self, zone: str | None = None) -> str | None:
        """The published time as ISO 8601 with offset, or the date alone where no time was printed."""
        zone = zone or self.notice.source_timezone
        return format_published(self.notice.published_at, self.notice.published_precision, zone)


def format_published(moment: datetime | None, precision: str, zone: str | None) -> str | None:
    """Format a stored published time: a date for DATE precision (in `zone`), else ISO with offset."""
    if moment is None:
        return None
    local = moment.astimezone(ZoneInfo(zone)) if zone else moment
    if precision == "date":
        return local.date().isoformat()
    return local.isoformat()


def iter_notice_views(
    session: Session,
    statement: Select[tuple[Notice]] | None = None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[NoticeView]:
    """Yield views of the notices that `statement` selects, loading tags in batches.

    Without a statement every notice is yielded, newest first. Memory stays bounded by
    `batch_size`, so feeds over 100,000 notices can be streamed.
    """
    if statement is None:
        statement = select(Notice).order_by(Notice.published_at.desc().nulls_last(), Notice.id)

    batch: list[Notice] = []
    for notice in session.scalars(statement.execution_options(yield_per=batch_size)):
        batch.append(notice)
        if len(batch) >= batch_size:
            yield from load_views(session, batch)
            batch = []
    if batch:
        yield from load_views(session, batch)


def load_views(session: Session, notices: Sequence[Notice]) -> list[NoticeView]:
    """Attach tags and translations to already loaded notices."""
    views = {notice.id: NoticeView(notice=notice) for notice in notices}
    if not views:
        return []

    ids = list(views)
    tags: dict[str, list[NoticeTag]] = defaultdict(list)
    for tag in session.scalars(
        # Sorted like the unique index (notice_id, kind, value), which PostgreSQL can then walk.
        select(NoticeTag)
        .where(NoticeTag.notice_id.in_(ids))
        .order_by(NoticeTag.notice_id, NoticeTag.kind, NoticeTag.value)
    ):
        tags[tag.notice_id].append(tag)

    for notice_id, notice_tags in tags.items():
        view = views[notice_id]
        view.tag_rules = notice_tags
        view.regions = _unique(tag.value for tag in notice_tags if tag.kind == "region")
        view.topics = _unique(tag.value for tag in notice_tags if tag.kind == "topic")

    for translation in session.scalars(select(Translation).where(Translation.notice_id.in_(ids))):
        view = views[translation.notice_id]
        if translation.status == "done" and translation.title is not None:
            view.translations[translation.language] = TranslationView(
                language=translation.language,
                title=translation.title,
                summary_text=translation.summary_text or "",
                summary_html=translation.summary_html or "",
                body_text=translation.body_text or "",
                body_html=translation.body_html or "",
                provider=translation.provider,
            )
        elif translation.status == "pending":
            view.pending_languages.append(translation.language)

    return [views[notice.id] for notice in notices]


def export_record(view: NoticeView, zone: str | None = None) -> dict[str, object]:
    """Return the `notices --format jsonl` object of a notice."""
    notice = view.notice
    return {
        "id": notice.id,
        "source": notice.source_id,
        "url": notice.url,
        "title": notice.title,
        "summary": notice.summary_text,
        "published": _isoformat(notice.published_at, zone or notice.source_timezone),
        "published_raw": notice.published_raw,
        "published_precision": notice.published_precision,
        "published_zone_assumed": notice.published_zone_assumed,
        "first_seen": notice.first_seen_at.isoformat(),
        "updated": notice.updated_at.isoformat() if notice.updated_at else None,
        "language": notice.language,
        "language_confidence": notice.language_confidence,
        "regions": view.regions,
        "topics": view.topics,
        "translations": {
            language: {"title": item.title, "summary": item.summary_text, "provider": item.provider}
            for language, item in sorted(view.translations.items())
        },
        "translations_pending": sorted(view.pending_languages),
        "version": notice.version,
        "variant_group": notice.variant_group,
        "duplicate_group": notice.duplicate_group,
        "withdrawn": notice.withdrawn_at.isoformat() if notice.withdrawn_at else None,
    }


def _isoformat(moment: datetime | None, zone: str | None) -> str | None:
    """ISO 8601 with offset, in `zone` when given; a date-only value shows local midnight.

    The export keeps an offset on every value so that consumers can compare instants; readers see
    the date alone through `published_precision`.
    """
    if moment is None:
        return None
    return (moment.astimezone(ZoneInfo(zone)) if zone else moment).isoformat()


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
