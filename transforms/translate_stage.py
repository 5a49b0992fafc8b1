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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, Protocol, cast

import requests
from sqlalchemy import Table, bindparam, insert, or_, select, update
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

# Core statements, so that the enrichment step writes the translation rows of a whole batch with
# one executemany statement per kind of change.
_TRANSLATION_TABLE = cast(Table, Translation.__table__)
# The values of each row name the columns to set, and `row_id` selects the row.
_UPDATE_TRANSLATION = update(_TRANSLATION_TABLE).where(
    _TRANSLATION_TABLE.c.id == bindparam("row_id")
)


class QueuedNotice(Protocol):
    """The fields of a notice that decide its translation rows, as a `Notice` has them."""

    id: str
    version: int
    language: str | None
    title: str
    summary_text: str
    body_text: str


class StoredTranslation(NamedTuple):
    """The columns of a stored translation row that `translation_changes` reads."""

    id: int
    notice_id: str
    language: str
    version: int
    status: str


@dataclass
class TranslationChanges:
    """Translation rows to insert and stored rows to update, as values by column name.

    Each update contains `row_id`, the id of the row it changes, and the columns it sets.
    """

    inserts: list[dict[str, Any]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)


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
    session: Session, notice: Notice, settings: Settings, *, now: datetime | None = None
) -> None:
    """Create or refresh the translation rows of `notice`'s current version, one per target.

    A target equal to the notice's language gets no row (an existing one becomes `skipped`). A
    row of an older version goes back to `pending`. Its old text stays until the new one is done,
    so publishers must read only `done` rows of the notice's current version. The enrichment step
    does the same for a batch of notices with `translation_changes` and `write_translations`.
    """
    now = now or datetime.now(UTC)
    # The notice row must exist before translation rows refer to it.
    session.flush()
    existing = stored_translations(session, [notice.id])[notice.id]
    write_translations(session, translation_changes(notice, settings, existing, now))


def translation_changes(
    notice: QueuedNotice,
    settings: Settings,
    existing: Mapping[str, StoredTranslation],
    now: datetime,
) -> TranslationChanges:
    """Return the rows that queue `notice`'s translations, as `queue_translations` describes.

    `existing` maps language to the notice's stored rows, as `stored_translations` reads them.
    Nothing is written, so a caller can drop the changes when a later step fails.
    """
    language = langcodes.normalise_code(notice.language)
    status, reason = _initial_status(notice)
    changes = TranslationChanges()

    for target in _targets(settings):
        row = existing.get(target)
        if target == language:
            if row is not None and row.status != "skipped":
                skipped = _status_values("skipped", now, reason=f"notice is already in {target}")
                changes.updates.append({"row_id": row.id, **skipped})
            continue

        if row is None:
            changes.inserts.append(
                {
                    "notice_id": notice.id,
                    "language": target,
                    "version": notice.version,
                    "attempts": 0,
                    **_status_values(status, now, reason=reason),
                }
            )
        elif row.version != notice.version or row.status in ("failed", "skipped"):
            changes.updates.append(
                {
                    "row_id": row.id,
                    "version": notice.version,
                    "attempts": 0,
                    **_status_values(status, now, reason=reason),
                }
            )
    return changes


def stored_translations(
    session: Session, notice_ids: Sequence[str]
) -> dict[str, dict[str, StoredTranslation]]:
    """Read the translation rows of `notice_ids` in one query, by notice id and then language."""
    rows: dict[str, dict[str, StoredTranslation]] = {identity: {} for identity in notice_ids}
    if not notice_ids:
        return rows
    columns = [getattr(Translation, name) for name in StoredTranslation._fields]
    query = select(*columns).where(Translation.notice_id.in_(notice_ids))
    for values in session.execute(query):
        row = StoredTranslation(**values._mapping)
        rows.setdefault(row.notice_id, {})[row.language] = row
    return rows


def write_translations(session: Session, changes: TranslationChanges) -> None:
    """Insert and update the translation rows of `changes`, with one statement per kind."""
    if changes.inserts:
        session.execute(insert(_TRANSLATION_TABLE), changes.inserts)
    # One executemany statement sets the same columns in every row, and an update that marks a
    # row `skipped` sets fewer columns than one that queues it again.
    for rows in _group_by_columns(changes.updates):
        session.execute(_UPDATE_TRANSLATION, rows)


def _status_values(status: str, now: datetime, *, reason: str | None) -> dict[str, Any]:
    """Return the column values that `_mark` sets for a new status."""
    return {"status": status, "last_error": reason, "next_attempt_at": None, "updated_at": now}


def _group_by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.values())


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


def _initial_status(notice: QueuedNotice) -> tuple[str, str | None]:
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
