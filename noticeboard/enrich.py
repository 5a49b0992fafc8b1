"""The enrichment step: language, tags and translation requests for normalised notices.

A notice reaches stage `ready` here, which makes it publishable. Translations are only queued
(status pending); the translation step fills them in later, so a slow or failing provider never
holds a notice back.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from noticeboard.catalog import Catalog, Source
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeTag

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
        with store.session() as session:
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
            for notice in notices:
                _enrich_one(session, notice, catalog, settings, report)


def _enrich_one(session: Session, notice: Notice, catalog: Catalog, settings: Settings, report: EnrichReport) -> None:
    source = catalog.sources.get(notice.source_id)
    if source is None:
        logger.warning("enrich_skipped notice=%s source=%s reason=source-not-in-catalog", notice.id, notice.source_id)
        notice.stage = "ready"
        report.failed[notice.source_id] += 1
        return

    try:
        with session.begin_nested():
            notice.source_timezone = source.timezone
            detect_notice_language(notice, source, settings)
            replace_tags(session, notice, source)
            queue_notice_translations(session, notice, settings)
            notice.stage = "ready"
    except Exception:
        logger.exception("enrich_failed notice=%s source=%s", notice.id, source.id)
        notice.stage = "ready"
        report.failed[source.id] += 1
        return
    report.enriched[source.id] += 1


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


def replace_tags(session: Session, notice: Notice, source: Source) -> None:
    """Tag the notice by region and topic, replacing the tags of its previous version."""
    from transforms.tagging import tag_notice

    tags = tag_notice(notice.title, notice.body_text or notice.summary_text, notice.language, source)
    session.execute(delete(NoticeTag).where(NoticeTag.notice_id == notice.id))
    seen: set[tuple[str, str]] = set()
    for tag in tags:
        if (tag.kind, tag.value) in seen:
            continue
        seen.add((tag.kind, tag.value))
        session.add(NoticeTag(notice_id=notice.id, kind=tag.kind, value=tag.value, rule=tag.rule, detail=tag.detail))


def queue_notice_translations(session: Session, notice: Notice, settings: Settings) -> None:
    """Create pending translation rows for the notice's current version."""
    from transforms.translate_stage import queue_translations

    queue_translations(session, notice, settings)
