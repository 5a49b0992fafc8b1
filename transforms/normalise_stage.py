"""The normalisation stage: pending raw items become notices, versions and outbox events.

Pending `raw_item` rows are handled in batches of `BATCH_SIZE`, one transaction per batch. That
saves a commit (an fsync on SQLite) per row, and grouping reads the stored notices it compares
with once per batch (`GroupingIndex`) instead of once per row. For each row the transaction
first claims it (`UPDATE ... WHERE status = 'pending'`) and then writes the notice, its version
and its event. A crash mid-batch rolls back that batch, whose rows stay pending for the next run.
Two processes never handle the same row: the claim takes a row lock on PostgreSQL and the
database write lock on SQLite, so the second claim finds the row no longer pending. The locks
last until the batch commits, so a second process that reaches a claimed row waits for that
batch. When two processes race to create or update the same notice, the unique constraints on
`notice.id`, `(notice_id, version)` and `(notice_id, version, kind)` make one of them fail. That
one rolls its batch back and handles the batch again one row per transaction, retrying a row that
fails again, and so finds the stored notice.

Matching a raw item to a stored notice, in order:
1. the notice id (from the guid, or the canonical URL when the guid is missing or volatile);
2. a notice of the same source with the same canonical URL, title and published time, because
   some sites regenerate every guid on a rebuild. The stored guid is then replaced.

Withdrawal, for sources with `lists_all_current`: connectors store the listing keys of every item
of the latest successful fetch in `SourceState.listing` and count successful fetches in
`SourceState.successful_fetches`. Each run sets `Notice.last_listed_fetch` to that count for every
listed notice. A notice that is not listed gets `withdrawn_at` and a `withdrawn` event once
`successful_fetches - last_listed_fetch` reaches `Settings.withdraw_after_fetches`. A notice that
has never been listed starts counting at the current fetch. An empty listing withdraws nothing,
because it more likely means a broken page than an authority that withdrew everything.
NOTE: only the latest listing is visible here, so the count assumes that this stage runs after
every fetch. If it runs less often, a notice that disappeared and came back between two runs is
counted as missing for those fetches.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Executable, Table, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from noticeboard.catalog import Catalog, Source
from noticeboard.models import DatePrecision, NormalisedNotice, RawItem
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import Notice, NoticeEvent, NoticeVersion, SourceState
from noticeboard.store.tables import RawItem as RawItemRow
from transforms.grouping import GroupingIndex, assign_groups
from transforms.identity import keys_of_notice, notice_id
from transforms.normalise import normalise_item

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
MAX_ATTEMPTS = 3
STAGE_NORMALISED = "normalised"
_RAW_FIELDS = {item.name for item in dataclasses.fields(RawItem)}
# Built once: building the statement per event took longer than running it. The Core table (not
# the mapped class) keeps the insert a plain statement that reports its row count.
_EVENT_TABLE = cast(Table, NoticeEvent.__table__)
_EVENT_INSERTS: dict[str, Executable] = {
    "postgresql": postgresql_insert(_EVENT_TABLE).on_conflict_do_nothing(),
    "sqlite": sqlite_insert(_EVENT_TABLE).on_conflict_do_nothing(),
}


@dataclass
class SourceCounts:
    """Outcome counts of one run for one source."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    withdrawn: int = 0


@dataclass
class NormaliseReport:
    """Counts per source id of one `normalise_pending` run."""

    sources: dict[str, SourceCounts] = field(default_factory=dict)

    def counts(self, source_id: str) -> SourceCounts:
        """Return the counts of `source_id`, created empty on first use."""
        return self.sources.setdefault(source_id, SourceCounts())

    @property
    def totals(self) -> SourceCounts:
        """The counts summed over every source."""
        total = SourceCounts()
        for counts in self.sources.values():
            for name in ("created", "updated", "unchanged", "failed", "withdrawn"):
                setattr(total, name, getattr(total, name) + getattr(counts, name))
        return total


def normalise_pending(
    store: Store,
    catalog: Catalog,
    settings: Settings,
    *,
    now: datetime,
    batch_size: int = BATCH_SIZE,
) -> NormaliseReport:
    """Normalise every pending raw item in id order, then withdraw notices no longer listed."""
    report = NormaliseReport()
    logger.info("normalise_started database=%s", store.url)

    last_id = 0
    while True:
        with store.session() as session:
            batch = session.scalars(
                select(RawItemRow.id)
                .where(RawItemRow.status == "pending", RawItemRow.id > last_id)
                .order_by(RawItemRow.id)
                .limit(batch_size)
            ).all()
        if not batch:
            break
        _process_batch(store, catalog, settings, batch, now, report)
        last_id = batch[-1]

    for source in catalog.sources.values():
        if source.lists_all_current:
            _withdraw_unlisted(store, source, settings, now, report)

    for source_id, counts in sorted(report.sources.items()):
        logger.info(
            "normalised source=%s created=%d updated=%d unchanged=%d failed=%d withdrawn=%d",
            source_id,
            counts.created,
            counts.updated,
            counts.unchanged,
            counts.failed,
            counts.withdrawn,
        )
    logger.info("normalise_finished sources=%d", len(report.sources))
    return report


def _process_batch(
    store: Store,
    catalog: Catalog,
    settings: Settings,
    raw_ids: Sequence[int],
    now: datetime,
    report: NormaliseReport,
) -> None:
    """Handle `raw_ids` in one transaction, or one per row after a conflict with another process."""
    results: list[tuple[str, str]] = []
    try:
        with store.session() as session:
            index = GroupingIndex()
            for raw_id in raw_ids:
                result = _process_row(session, catalog, settings, raw_id, now, index)
                if result is not None:
                    results.append(result)
    except (IntegrityError, OperationalError) as error:
        logger.info(
            "normalise_batch_retry first_raw_item=%d rows=%d error=%s; "
            "handling the rows one per transaction",
            raw_ids[0],
            len(raw_ids),
            type(error).__name__,
        )
        for raw_id in raw_ids:
            _process_with_retries(store, catalog, settings, raw_id, now, report)
        return

    for source_id, outcome in results:
        _count(report, source_id, outcome)


def _count(report: NormaliseReport, source_id: str, outcome: str) -> None:
    counts = report.counts(source_id)
    setattr(counts, outcome, getattr(counts, outcome) + 1)


def _process_with_retries(
    store: Store,
    catalog: Catalog,
    settings: Settings,
    raw_id: int,
    now: datetime,
    report: NormaliseReport,
) -> None:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with store.session() as session:
                result = _process_row(session, catalog, settings, raw_id, now, GroupingIndex())
        except (IntegrityError, OperationalError) as error:
            if attempt == MAX_ATTEMPTS:
                logger.error(
                    "normalise_row_failed raw_item=%d attempts=%d error=%s; the row stays pending",
                    raw_id,
                    attempt,
                    type(error).__name__,
                )
                return
            logger.info(
                "normalise_row_retry raw_item=%d attempt=%d error=%s",
                raw_id,
                attempt,
                type(error).__name__,
            )
            continue

        if result is not None:
            _count(report, *result)
        return


def _process_row(
    session: Session,
    catalog: Catalog,
    settings: Settings,
    raw_id: int,
    now: datetime,
    index: GroupingIndex,
) -> tuple[str, str] | None:
    """Claim and handle one raw item; returns (source id, outcome), or None if already taken."""
    claimed: CursorResult[Any] = session.execute(  # type: ignore[assignment]
        update(RawItemRow)
        .where(RawItemRow.id == raw_id, RawItemRow.status == "pending")
        .values(status="processed", error=None)
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount == 0:
        return None

    row = session.get(RawItemRow, raw_id)
    assert row is not None  # the claim above matched it
    source = catalog.sources.get(row.source_id)
    if source is None:
        return _fail(row, f"source {row.source_id} is not in the catalog {catalog.path}")

    try:
        raw = _raw_from_payload(row.payload, row.source_id)
        item = normalise_item(raw, source, settings=settings, now=now)
    except Exception as error:  # noqa: BLE001 (one bad item must not stop the run)
        return _fail(row, f"{type(error).__name__}: {error}")

    state = session.get(SourceState, source.id)
    fetch_number = state.successful_fetches if state and source.lists_all_current else None
    outcome = _upsert(session, item, row.fetched_at, fetch_number, now, index)
    logger.debug(
        "normalised_item source=%s raw_item=%d notice=%s outcome=%s",
        source.id,
        raw_id,
        item.id,
        outcome,
    )
    return source.id, outcome


def _fail(row: RawItemRow, reason: str) -> tuple[str, str]:
    row.status = "failed"
    row.error = reason
    logger.warning(
        "normalise_item_failed source=%s raw_item=%d error=%s", row.source_id, row.id, reason
    )
    return row.source_id, "failed"


def _raw_from_payload(payload: Any, source_id: str) -> RawItem:
    if not isinstance(payload, dict):
        raise ValueError(
            f"payload is a {type(payload).__name__}, expected an object of RawItem fields"
        )
    values = {name: value for name, value in payload.items() if name in _RAW_FIELDS}
    values["source_id"] = source_id
    values["alternates"] = values.get("alternates") or {}
    values["categories"] = values.get("categories") or []
    if not isinstance(values["alternates"], dict):
        raise ValueError("payload field `alternates` must be an object of language to URL")
    return RawItem(**values)


def _upsert(
    session: Session,
    item: NormalisedNotice,
    fetched_at: datetime,
    fetch_number: int | None,
    now: datetime,
    index: GroupingIndex,
) -> str:
    notice = _find_stored(session, item)
    if notice is None:
        _create(session, item, fetched_at, fetch_number, now, index)
        return "created"

    if item.guid and notice.guid != item.guid:
        logger.info("notice_guid_changed source=%s notice=%s", notice.source_id, notice.id)
        notice.guid = item.guid

    if notice.content_hash == item.content_hash:
        return "unchanged"

    _update(session, notice, item, now, index)
    return "updated"


def _find_stored(session: Session, item: NormalisedNotice) -> Notice | None:
    notice = session.get(Notice, item.id, with_for_update=True)
    if notice is not None and _is_other_language(notice, item):
        # The same guid in two language feeds of one source, so the URL identifies each version.
        item.id = notice_id(item.source_id, None, item.canonical_url, fallback=item.title)
        notice = session.get(Notice, item.id, with_for_update=True)
    if notice is not None or not item.canonical_url:
        return notice

    published = item.published.instant if item.published else None
    candidates = session.scalars(
        select(Notice)
        .where(
            Notice.source_id == item.source_id,
            Notice.canonical_url == item.canonical_url,
            Notice.title == item.title,
        )
        .order_by(Notice.first_seen_at, Notice.id)
        .with_for_update()
    ).all()
    for candidate in candidates:
        if candidate.published_at == published:
            logger.info("notice_matched_by_link source=%s notice=%s", item.source_id, candidate.id)
            return candidate
    return None


def _is_other_language(notice: Notice, item: NormalisedNotice) -> bool:
    return bool(
        notice.declared_language
        and item.declared_language
        and notice.declared_language != item.declared_language
        and item.canonical_url
        and notice.canonical_url != item.canonical_url
    )


def _create(
    session: Session,
    item: NormalisedNotice,
    fetched_at: datetime,
    fetch_number: int | None,
    now: datetime,
    index: GroupingIndex,
) -> None:
    notice = Notice(
        id=item.id,
        source_id=item.source_id,
        first_seen_at=min(fetched_at, now),
        changed_at=now,
        version=1,
        stage=STAGE_NORMALISED,
        last_listed_fetch=fetch_number,
    )
    _apply(notice, item)
    session.add(notice)
    session.flush()

    session.add(
        NoticeVersion(
            notice_id=notice.id,
            version=1,
            title=notice.title,
            body_text=notice.body_text,
            content_hash=notice.content_hash,
            diff=None,
            created_at=now,
        )
    )
    _insert_event(session, notice.id, 1, "created", now)
    assign_groups(session, notice, index)
    session.flush()


def _update(
    session: Session,
    notice: Notice,
    item: NormalisedNotice,
    now: datetime,
    index: GroupingIndex,
) -> None:
    previous_text = _versioned_text(notice.title, notice.body_text)
    previous_version = notice.version
    kept_published = notice.published_at is not None and item.published is None

    _apply(notice, item, keep_published=kept_published)
    notice.version = previous_version + 1
    notice.changed_at = now
    notice.stage = STAGE_NORMALISED
    notice.withdrawn_at = None

    diff = "\n".join(
        difflib.unified_diff(
            previous_text.splitlines(),
            _versioned_text(notice.title, notice.body_text).splitlines(),
            fromfile=f"version {previous_version}",
            tofile=f"version {notice.version}",
            lineterm="",
        )
    )
    session.add(
        NoticeVersion(
            notice_id=notice.id,
            version=notice.version,
            title=notice.title,
            body_text=notice.body_text,
            content_hash=notice.content_hash,
            diff=diff,
            created_at=now,
        )
    )
    _insert_event(session, notice.id, notice.version, "updated", now)
    assign_groups(session, notice, index)
    session.flush()


def _versioned_text(title: str, body_text: str) -> str:
    return f"{title}\n\n{body_text}"


def _apply(notice: Notice, item: NormalisedNotice, *, keep_published: bool = False) -> None:
    """Copy the normalised fields into the row; `keep_published` keeps a stored date."""
    notice.guid = item.guid
    notice.url = item.url
    notice.canonical_url = item.canonical_url
    notice.title = item.title
    notice.summary_html = item.summary_html
    notice.summary_text = item.summary_text
    notice.body_html = item.body_html
    notice.body_text = item.body_text
    notice.declared_language = item.declared_language
    notice.content_hash = item.content_hash
    notice.alternates = item.alternates or None
    notice.updated_at = item.updated.instant if item.updated else None

    if keep_published:
        return
    notice.published_raw = item.published_raw
    if item.published is None:
        notice.published_at = None
        notice.published_precision = DatePrecision.NONE.value
        notice.published_zone_assumed = False
        notice.published_fallback = True
    else:
        notice.published_at = item.published.instant
        notice.published_precision = item.published.precision.value
        notice.published_zone_assumed = item.published.zone_assumed
        notice.published_fallback = False


def _insert_event(
    session: Session,
    notice: str,
    version: int,
    kind: str,
    now: datetime,
    detail: str | None = None,
) -> bool:
    """Add an outbox event unless one of that kind exists for the version; returns True if added."""
    values = {
        "notice_id": notice,
        "version": version,
        "kind": kind,
        "created_at": now,
        "detail": detail,
    }
    statement = _EVENT_INSERTS.get(session.get_bind().dialect.name)
    if statement is None:
        session.add(NoticeEvent(**values))
        return True
    result: CursorResult[Any] = session.execute(statement, values)  # type: ignore[assignment]
    return bool(result.rowcount)


def _withdraw_unlisted(
    store: Store,
    source: Source,
    settings: Settings,
    now: datetime,
    report: NormaliseReport,
) -> None:
    try:
        with store.session() as session:
            withdrawn = _withdraw_in_session(session, source, settings, now)
    except (IntegrityError, OperationalError) as error:
        logger.error(
            "withdraw_failed source=%s error=%s; retried on the next run", source.id, error
        )
        return
    if withdrawn:
        report.counts(source.id).withdrawn += withdrawn


def _withdraw_in_session(
    session: Session, source: Source, settings: Settings, now: datetime
) -> int:
    state = session.get(SourceState, source.id)
    if state is None or state.listing is None or state.successful_fetches <= 0:
        return 0
    if not state.listing:
        logger.warning("withdraw_skipped source=%s reason=empty listing", source.id)
        return 0

    listed = set(state.listing)
    fetch_number = state.successful_fetches
    notices = session.scalars(
        select(Notice).where(Notice.source_id == source.id).order_by(Notice.id).with_for_update()
    ).all()

    withdrawn = 0
    for notice in notices:
        key = keys_of_notice(notice.canonical_url, notice.guid, notice.title)
        if key in listed:
            _mark_listed(notice, fetch_number)
            continue
        if notice.withdrawn_at is not None:
            continue
        if notice.last_listed_fetch is None:
            notice.last_listed_fetch = fetch_number
            continue

        missing = fetch_number - notice.last_listed_fetch
        if missing >= settings.withdraw_after_fetches:
            notice.withdrawn_at = now
            detail = f"missing from {missing} successful fetches"
            _insert_event(session, notice.id, notice.version, "withdrawn", now, detail)
            logger.info(
                "notice_withdrawn source=%s notice=%s missing_fetches=%d",
                source.id,
                notice.id,
                missing,
            )
            withdrawn += 1
    return withdrawn


def _mark_listed(notice: Notice, fetch_number: int) -> None:
    if notice.last_listed_fetch != fetch_number:
        notice.last_listed_fetch = fetch_number
    if notice.withdrawn_at is not None:
        notice.withdrawn_at = None
        logger.info("notice_relisted source=%s notice=%s", notice.source_id, notice.id)
