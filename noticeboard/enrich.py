"""The enrichment step: language, tags and translation requests for normalised notices.

A notice reaches stage `ready` here, which makes it publishable. Translations are only queued
(status pending); the translation step fills them in later, so a slow or failing provider never
delays a notice.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from noticeboard.catalog import Catalog, Source
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeTag, Translation

logger = logging.getLogger(__name__)

BATCH_SIZE = 200


@dataclass
class EnrichReport:
    """How many notices were enriched, per source, and how many failed."""

    enriched: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)


def enrich_pending(store: Store, catalog: Catalog, settings: Settings, *, now: datetime) -> EnrichReport:
    """Detect the language, tag and queue translations of every notice in stage `normalised`."""
    report = EnrichReport()
    while True:
        # Without autoflush, reading a notice's attributes sends no pending writes, so the ORM
        # writes the batch's changes once, at commit.
        with store.session() as session, session.no_autoflush:
            # SKIP LOCKED lets several workers enrich at once on PostgreSQL, each taking other
            # notices; SQLite has one writer at a time and ignores the clause.
            notices = session.scalars(
                select(Notice)
                .where(Notice.stage == "normalised")
                .order_by(Notice.id)
                .limit(BATCH_SIZE)
                .with_for_update(skip_locked=True)
            ).all()
            if not notices:
                return report
            _enrich_batch(session, notices, catalog, settings, report)


def _enrich_batch(
    session: Session, notices: Sequence[Notice], catalog: Catalog, settings: Settings, report: EnrichReport
) -> None:
    from transforms.translate_stage import stored_translations

    translations = stored_translations(session, [notice.id for notice in notices])
    tags: dict[str, list[dict[str, str]]] = {}
    for notice in notices:
        rows = _enrich_one(session, notice, catalog, settings, translations[notice.id], report)
        if rows is not None:
            tags[notice.id] = rows

    write_tags(session, tags)


def _enrich_one(
    session: Session,
    notice: Notice,
    catalog: Catalog,
    settings: Settings,
    translations: dict[str, Translation],
    report: EnrichReport,
) -> list[dict[str, str]] | None:
    """Enrich one notice and return its tag rows, or None when it failed or has no source."""
    from transforms.translate_stage import queue_translations

    source = catalog.sources.get(notice.source_id)
    if source is None:
        logger.warning("enrich_skipped notice=%s source=%s reason=source-not-in-catalog", notice.id, notice.source_id)
        notice.stage = "ready"
        report.failed[notice.source_id] += 1
        return None

    try:
        notice.source_timezone = source.timezone
        notice.authority = source.authority
        detect_notice_language(notice, source, settings)
        rows = tag_rows(notice, source)
        queue_translations(session, notice, settings, existing=translations)
    except Exception:
        logger.exception("enrich_failed notice=%s source=%s", notice.id, source.id)
        _discard_changes(session, notice, translations)
        notice.stage = "ready"
        report.failed[source.id] += 1
        return None

    notice.stage = "ready"
    report.enriched[source.id] += 1
    return rows


def _discard_changes(session: Session, notice: Notice, translations: dict[str, Translation]) -> None:
    """Undo the unflushed changes that a failed enrichment made to `notice` and its translations."""
    # Expiring drops unflushed attribute changes, and the stored values load on next access.
    session.expire(notice, _ENRICHED_ATTRIBUTES)
    for row in translations.values():
        session.expire(row)
    for pending in [item for item in session.new if isinstance(item, Translation)]:
        if pending.notice_id == notice.id:
            session.expunge(pending)


_ENRICHED_ATTRIBUTES = ["source_timezone", "authority", "language", "language_confidence", "language_method"]


def detect_notice_language(notice: Notice, source: Source, settings: Settings) -> None:
    """Set the notice's language, confidence and method from its text and declared language."""
    from transforms.language import declared_language_from_url, detect_language

    declared = notice.declared_language or declared_language_from_url(notice.url or "")
    if declared is None and len(source.languages) == 1:
        declared = source.languages[0]

    text = f"{notice.title}\n{notice.body_text or notice.summary_text}"
    result = detect_language(text, declared, detector=settings.language_detector)
    notice.language = result.code
    notice.language_confidence = result.confidence
    notice.language_method = result.method


def tag_rows(notice: Notice, source: Source) -> list[dict[str, str]]:
    """Tag the notice by region and topic and return one `notice_tag` row per kind and value."""
    from transforms.tagging import tag_notice

    tags = tag_notice(notice.title, notice.body_text or notice.summary_text, notice.language, source)
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for tag in tags:
        rows.setdefault(
            (tag.kind, tag.value),
            {"notice_id": notice.id, "kind": tag.kind, "value": tag.value, "rule": tag.rule, "detail": tag.detail},
        )
    return list(rows.values())


def write_tags(session: Session, tags: dict[str, list[dict[str, str]]]) -> None:
    """Replace the stored tags of each notice in `tags` with its new rows, in two statements."""
    if not tags:
        return

    # A notice first enriched has no tags yet, and a notice enriched again (a new version, or a
    # rerun) has the tags of its previous enrichment. One DELETE covers both for the batch.
    session.execute(delete(NoticeTag).where(NoticeTag.notice_id.in_(list(tags))))
    rows = [row for notice_rows in tags.values() for row in notice_rows]
    if rows:
        session.execute(insert(NoticeTag), rows)
