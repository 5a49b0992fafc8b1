"""The translation stage: queue a notice's translations, then work through the due ones.

Translation does not block ingestion or publishing, because `queue_translations` only writes
`pending` rows and `translate_pending` runs later (after ingestion in `noticeboard run`, or alone in
`noticeboard translate --pending`) and commits each translation on its own. When the provider is
unreachable, rate-limits or has no quota left, the row stays `pending` with `next_attempt_at` set,
and the remaining rows of the batch are deferred without sending anything to the provider.

Row statuses: `pending` (waiting, or deferred until `next_attempt_at`), `done` (title, summary and
body translated; `provider` names the machine translator), `failed` (the provider rejected the text
`MAX_ATTEMPTS` times) and `skipped` (nothing to translate, or the notice is already in the target
language).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import requests
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from noticeboard.errors import ConfigError, TranslationError
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, Translation
from transforms import langcodes
from transforms._markup import has_letters, html_to_text
from transforms.language import clean_for_detection
from transforms.translate import SqlTranslationMemory, TranslationDeferred, Translator

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
# Waits between runs for a pending row, doubling from the first to the cap, in seconds.
RETRY_FIRST_SECONDS = 60.0
RETRY_CAP_SECONDS = 6 * 3600.0


@dataclass
class TranslationReport:
    """Counts of one `translate_pending` run."""

    translated: int = 0
    deferred: int = 0
    failed: int = 0
    skipped: int = 0
    provider_calls: int = 0
    memory_hits: int = 0
    deferred_until: datetime | None = None


def queue_translations(
    session: Session,
    notice: Notice,
    settings: Settings,
    *,
    now: datetime | None = None,
    existing: Mapping[str, Translation] | None = None,
) -> list[Translation]:
    """Create or refresh the translation rows of `notice`'s current version, one per target.

    A target equal to the notice's language gets no row (an existing one becomes `skipped`). A
    row of an older version goes back to `pending`. Its old text stays until the new one is done,
    so publishers must read only `done` rows of the notice's current version. `existing` maps
    language to the notice's stored rows when the caller has read them for a whole batch (see
    `stored_translations`), which saves one query per notice.
    """
    now = now or datetime.now(UTC)
    language = langcodes.normalise_code(notice.language)
    if existing is None:
        existing = stored_translations(session, [notice.id]).get(notice.id, {})
    rows: list[Translation] = []

    for target in _targets(settings):
        row = existing.get(target)
        if target == language:
            if row is not None and row.status != "skipped":
                _mark(row, "skipped", now, reason=f"notice is already in {target}")
            continue

        status, reason = _initial_status(notice)
        if row is None:
            row = Translation(
                notice_id=notice.id, language=target, version=notice.version, attempts=0
            )
            session.add(row)
            _mark(row, status, now, reason=reason)
        elif row.version != notice.version or row.status in ("failed", "skipped"):
            row.version = notice.version
            row.attempts = 0
            _mark(row, status, now, reason=reason)
        rows.append(row)
    return rows


def stored_translations(session: Session, notice_ids: Sequence[str]) -> dict[str, dict[str, Translation]]:
    """Read the translation rows of `notice_ids` in one query, by notice id and then language."""
    rows: dict[str, dict[str, Translation]] = {identity: {} for identity in notice_ids}
    if not notice_ids:
        return rows
    for row in session.scalars(select(Translation).where(Translation.notice_id.in_(notice_ids))):
        rows.setdefault(row.notice_id, {})[row.language] = row
    return rows


def translate_pending(
    store: Store,
    settings: Settings,
    *,
    now: datetime,
    limit: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
    session: requests.Session | None = None,
) -> TranslationReport:
    """Translate the pending rows that are due at `now`, oldest first, committing each row.

    A configuration error (unknown provider, missing key or URL) is logged and leaves every row
    pending. `sleep` waits between retries and for the rate limit; tests pass a fake. `session`
    sends the provider requests (a replayed run passes its replay session).
    """
    report = TranslationReport()
    due = _due_rows(store, now, limit)
    if not due:
        return report
    logger.info("translation_started provider=%s due=%d", settings.translator_provider, len(due))

    memory = SqlTranslationMemory(None, now)
    try:
        translator = Translator(settings, memory=memory, sleep=sleep, session=session)
    except ConfigError as error:
        logger.error(
            "translation_config_invalid provider=%s error=%s", settings.translator_provider, error
        )
        return report

    deferred_until: datetime | None = None
    try:
        for row_id in due:
            with store.session() as db_session:
                memory.session = db_session
                deferred_until = _process_row(
                    db_session, row_id, translator, now, deferred_until, report
                )
    except ConfigError as error:
        logger.error(
            "translation_config_invalid provider=%s error=%s", settings.translator_provider, error
        )
    finally:
        report.provider_calls = translator.calls
        report.memory_hits = translator.memory_hits
        translator.close()

    report.deferred_until = deferred_until
    logger.info(
        "translation_finished provider=%s translated=%d deferred=%d failed=%d skipped=%d "
        "calls=%d memory_hits=%d",
        settings.translator_provider,
        report.translated,
        report.deferred,
        report.failed,
        report.skipped,
        report.provider_calls,
        report.memory_hits,
    )
    return report


def _process_row(
    session: Session,
    row_id: int,
    translator: Translator,
    now: datetime,
    deferred_until: datetime | None,
    report: TranslationReport,
) -> datetime | None:
    """Translate one row; return the moment until which the provider is deferred, if it is."""
    row = session.get(Translation, row_id)
    notice = session.get(Notice, row.notice_id) if row is not None else None
    if row is None or notice is None or row.status != "pending":
        return deferred_until

    if deferred_until is not None:
        row.next_attempt_at = max(deferred_until, row.next_attempt_at or deferred_until)
        report.deferred += 1
        logger.info(
            "translation_deferred provider=%s notice=%s language=%s",
            translator.provider,
            notice.id,
            row.language,
        )
        return deferred_until

    row.version = notice.version
    source = langcodes.normalise_code(notice.language)
    status, reason = _initial_status(notice)
    if status == "skipped" or source == row.language:
        _mark(row, "skipped", now, reason=reason or f"notice is already in {row.language}")
        report.skipped += 1
        return None

    row.attempts += 1
    try:
        _translate_fields(row, notice, translator, source or "")
    except TranslationDeferred as error:
        wait = max(error.retry_after or 0.0, _backoff(row.attempts))
        until = now + timedelta(seconds=wait)
        _mark(row, "pending", now, reason=str(error), next_attempt_at=until)
        report.deferred += 1
        logger.warning(
            "translation_deferred provider=%s notice=%s language=%s retry_at=%s error=%s",
            translator.provider,
            notice.id,
            row.language,
            until.isoformat(),
            error,
        )
        return until
    except TranslationError as error:
        final = row.attempts >= MAX_ATTEMPTS
        next_attempt = None if final else now + timedelta(seconds=_backoff(row.attempts))
        _mark(
            row,
            "failed" if final else "pending",
            now,
            reason=str(error),
            next_attempt_at=next_attempt,
        )
        report.failed += 1
        logger.warning(
            "translation_failed provider=%s notice=%s language=%s attempts=%d error=%s",
            translator.provider,
            notice.id,
            row.language,
            row.attempts,
            error,
        )
        return None

    row.provider = translator.provider
    _mark(row, "done", now)
    report.translated += 1
    logger.debug(
        "translated provider=%s notice=%s language=%s", translator.provider, notice.id, row.language
    )
    return None


def _translate_fields(
    row: Translation, notice: Notice, translator: Translator, source: str
) -> None:
    target = row.language
    row.title = translator.translate_text(notice.title, source, target)
    row.summary_html, row.summary_text = _translate_pair(
        translator, notice.summary_html, notice.summary_text, source, target
    )
    row.body_html, row.body_text = _translate_pair(
        translator, notice.body_html, notice.body_text, source, target
    )


def _translate_pair(
    translator: Translator, html: str, text: str, source: str, target: str
) -> tuple[str, str]:
    """Translate an HTML field and derive its text; without HTML, translate the text itself."""
    if html and has_letters(html):
        translated_html = translator.translate_html(html, source, target)
        return translated_html, html_to_text(translated_html)
    return html, translator.translate_text(text, source, target)


def _due_rows(store: Store, now: datetime, limit: int | None) -> list[int]:
    query = (
        select(Translation.id)
        .where(Translation.status == "pending")
        .where(or_(Translation.next_attempt_at.is_(None), Translation.next_attempt_at <= now))
        .order_by(Translation.updated_at, Translation.id)
    )
    if limit is not None:
        query = query.limit(limit)
    with store.session() as session:
        return list(session.scalars(query))


def _initial_status(notice: Notice) -> tuple[str, str | None]:
    if not notice.language:
        return "skipped", "notice language is unknown"
    texts = (notice.title, notice.summary_text, notice.body_text)
    if not any(has_letters(clean_for_detection(text or "")) for text in texts):
        return "skipped", "notice has no text to translate"
    return "pending", None


def _targets(settings: Settings) -> list[str]:
    targets: list[str] = []
    for code in settings.translation_targets:
        normalised = langcodes.normalise_code(code)
        if normalised and normalised not in targets:
            targets.append(normalised)
    return targets


def _mark(
    row: Translation,
    status: str,
    now: datetime,
    *,
    reason: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    row.status = status
    row.last_error = reason
    row.next_attempt_at = next_attempt_at
    row.updated_at = now


def _backoff(attempts: int) -> float:
    return min(RETRY_CAP_SECONDS, RETRY_FIRST_SECONDS * 2 ** max(0, attempts - 1))
