"""The normalisation stage: pending raw items become notices, versions and outbox events.

Pending `raw_item` rows are handled in batches of `BATCH_SIZE`, one transaction per batch, with
a fixed number of queries per batch rather than per row:

1. read the batch's pending rows and normalise every item, before taking any lock;
2. claim the rows (`UPDATE ... WHERE status = 'pending' RETURNING id`), dropping those that
   another process claimed since the read, and read their sources' fetch state;
3. read the stored notices the items may update (`transforms.notice_lookup`) and the stored
   notices they may be language versions of (`GroupingIndex.read_variants`);
4. create or update each notice in memory, in raw item order, grouping it as it goes;
5. write the notices in one flush, then the versions and the events in one statement each.

One transaction per batch saves a commit (an fsync on SQLite) per row. A crash mid-batch rolls
back that batch, whose rows stay pending for the next run. Two processes never handle the same
row: the claim takes row locks on PostgreSQL and the database write lock on SQLite, so the second
claim finds the rows no longer pending. The locks last until the batch commits, so a second
process that reaches a claimed row waits for that batch. When two processes race to create or
update the same notice, the unique constraints on `notice.id`, `(notice_id, version)` and
`(notice_id, version, kind)` make one of them fail. That one rolls its batch back and handles the
batch again one row per transaction, retrying a row that fails again, and so finds the stored
notice.

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

from sqlalchemy import CursorResult, Executable, Table, insert, select, update
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
from transforms.grouping import DuplicateWindow, GroupingIndex, assign_groups
from transforms.identity import keys_of_notice
from transforms.normalise import normalise_item
from transforms.notice_lookup import StoredNotices

logger = logging.getLogger(__name__)

BATCH_SIZE = 250
MAX_ATTEMPTS = 3
STAGE_NORMALISED = "normalised"
_RAW_FIELDS = {item.name for item in dataclasses.fields(RawItem)}
# Built once: building the statement per event took longer than running it. The Core table (not
# the mapped class) keeps the insert a plain statement that reports its row count.
_EVENT_TABLE = cast(Table, NoticeEvent.__table__)
_VERSION_TABLE = cast(Table, NoticeVersion.__table__)
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
            _add_counts(total, counts)
        return total

    def merge(self, other: NormaliseReport) -> None:
        """Add the counts of `other`, a report of an earlier call in the same run."""
        for source_id, counts in other.sources.items():
            _add_counts(self.counts(source_id), counts)


def _add_counts(total: SourceCounts, counts: SourceCounts) -> None:
    for name in ("created", "updated", "unchanged", "failed", "withdrawn"):
        setattr(total, name, getattr(total, name) + getattr(counts, name))


def normalise_pending(
    store: Store,
    catalog: Catalog,
    settings: Settings,
    *,
    now: datetime,
    batch_size: int = BATCH_SIZE,
    window: DuplicateWindow | None = None,
    withdraw: bool = True,
) -> NormaliseReport:
    """Normalise every pending raw item in id order, then withdraw notices no longer listed.

    Pass the `window` of an earlier call of the same process to keep what it read, so that
    calls repeated during one run do not read the stored notices again. Calls made while ingest
    is still storing items pass `withdraw=False`, because a listing may be stored before the
    items of the same fetch are normalised.
    """
    report = NormaliseReport()
    logger.info("normalise_started database=%s", store.url)

    window = window if window is not None else DuplicateWindow()
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
        _process_batch(store, catalog, settings, batch, now, report, window)
        last_id = batch[-1]

    for source in catalog.sources.values():
        if withdraw and source.lists_all_current:
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


@dataclass
class _Batch:
    """The state that the rows of one transaction share: lookups, grouping and unwritten rows."""

    stored: StoredNotices
    index: GroupingIndex
    versions: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Claimed:
    """A claimed raw item, normalised, with its source's count of successful fetches."""

    row: RawItemRow
    item: NormalisedNotice
    fetch_number: int | None


def _process_batch(
    store: Store,
    catalog: Catalog,
    settings: Settings,
    raw_ids: Sequence[int],
    now: datetime,
    report: NormaliseReport,
    window: DuplicateWindow,
) -> None:
    """Handle `raw_ids` in one transaction, or one per row after a conflict with another process."""
    try:
        with store.session() as session, session.no_autoflush:
            results = _process_rows(session, catalog, settings, raw_ids, now, window)
    except (IntegrityError, OperationalError) as error:
        # The window contains what the rolled-back transaction recorded.
        window.reset()
        logger.info(
            "normalise_batch_retry first_raw_item=%d rows=%d error=%s; "
            "handling the rows one per transaction",
            raw_ids[0],
            len(raw_ids),
            type(error).__name__,
        )
        for raw_id in raw_ids:
            _process_with_retries(store, catalog, settings, raw_id, now, report, window)
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
    window: DuplicateWindow,
) -> None:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        try:
            with store.session() as session, session.no_autoflush:
                results = _process_rows(session, catalog, settings, [raw_id], now, window)
        except (IntegrityError, OperationalError) as error:
            window.reset()
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

        for result in results:
            _count(report, *result)
        return


def _process_rows(
    session: Session,
    catalog: Catalog,
    settings: Settings,
    raw_ids: Sequence[int],
    now: datetime,
    window: DuplicateWindow,
) -> list[tuple[str, str]]:
    """Claim and handle the rows of `raw_ids` that are still pending; return (source, outcome).

    The rows are read and normalised before the claim, because on SQLite the claim takes the
    database's write lock until commit, and other processes (ingest workers) need it meanwhile.
    """
    rows = _read_pending(session, raw_ids)
    normalised = [(row, _normalise_row(row, catalog, settings, now)) for row in rows]
    claimed_ids = _claim(session, [row.id for row in rows])
    states = _fetch_states(session, {row.source_id for row in rows if row.id in claimed_ids})

    results: list[tuple[str, str]] = []
    claimed: list[_Claimed] = []
    for row, outcome in normalised:
        if row.id not in claimed_ids:
            continue  # another process claimed it after the read
        if isinstance(outcome, str):
            results.append(_fail(row, outcome))
            continue
        state = states.get(row.source_id)
        source = catalog.sources[row.source_id]
        fetch_number = state.successful_fetches if state and source.lists_all_current else None
        claimed.append(_Claimed(row, outcome, fetch_number))

    batch = _Batch(StoredNotices(session), GroupingIndex(window))
    items = [entry.item for entry in claimed]
    batch.stored.read(items)
    batch.index.read_variants(session, items)

    for entry in claimed:
        outcome = _upsert(session, entry.item, entry.row.fetched_at, entry.fetch_number, now, batch)
        logger.debug(
            "normalised_item source=%s raw_item=%d notice=%s outcome=%s",
            entry.item.source_id,
            entry.row.id,
            entry.item.id,
            outcome,
        )
        results.append((entry.item.source_id, outcome))

    session.flush()
    if batch.versions:
        session.execute(insert(_VERSION_TABLE), batch.versions)
    _write_events(session, batch.events)
    return results


def _read_pending(session: Session, raw_ids: Sequence[int]) -> list[RawItemRow]:
    """Return the rows of `raw_ids` that are still pending, in id order."""
    return list(
        session.scalars(
            select(RawItemRow)
            .where(RawItemRow.id.in_(list(raw_ids)), RawItemRow.status == "pending")
            .order_by(RawItemRow.id)
        )
    )


def _claim(session: Session, raw_ids: list[int]) -> set[int]:
    """Mark the rows of `raw_ids` that are still pending processed; return their ids."""
    if not raw_ids:
        return set()
    claimed = session.scalars(
        update(RawItemRow)
        .where(RawItemRow.id.in_(raw_ids), RawItemRow.status == "pending")
        .values(status="processed", error=None)
        .returning(RawItemRow.id)
        .execution_options(synchronize_session=False)
    )
    return set(claimed)


def _fetch_states(session: Session, source_ids: set[str]) -> dict[str, SourceState]:
    if not source_ids:
        return {}
    states = session.scalars(
        select(SourceState).where(SourceState.source_id.in_(sorted(source_ids)))
    )
    return {state.source_id: state for state in states}


def _normalise_row(
    row: RawItemRow, catalog: Catalog, settings: Settings, now: datetime
) -> NormalisedNotice | str:
    """Return the normalised item of a row, or the reason it cannot be normalised."""
    source = catalog.sources.get(row.source_id)
    if source is None:
        return f"source {row.source_id} is not in the catalog {catalog.path}"

    try:
        raw = _raw_from_payload(row.payload, row.source_id)
        return normalise_item(raw, source, settings=settings, now=now)
    except Exception as error:  # noqa: BLE001 (one bad item must not stop the run)
        return f"{type(error).__name__}: {error}"


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
    batch: _Batch,
) -> str:
    notice = batch.stored.match(item)
    if notice is None:
        _create(session, item, fetched_at, fetch_number, now, batch)
        return "created"

    if item.guid and notice.guid != item.guid:
        logger.info("notice_guid_changed source=%s notice=%s", notice.source_id, notice.id)
        notice.guid = item.guid

    if notice.content_hash == item.content_hash:
        return "unchanged"

    _update(session, notice, item, now, batch)
    return "updated"


def _create(
    session: Session,
    item: NormalisedNotice,
    fetched_at: datetime,
    fetch_number: int | None,
    now: datetime,
    batch: _Batch,
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
    batch.versions.append(_version(notice, None, now))
    batch.events.append(_event(notice.id, 1, "created", now))
    assign_groups(session, notice, batch.index)
    batch.stored.add(notice)


def _update(
    session: Session,
    notice: Notice,
    item: NormalisedNotice,
    now: datetime,
    batch: _Batch,
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
    batch.versions.append(_version(notice, diff, now))
    batch.events.append(_event(notice.id, notice.version, "updated", now))
    assign_groups(session, notice, batch.index)
    batch.stored.add(notice)


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


def _version(notice: Notice, diff: str | None, now: datetime) -> dict[str, Any]:
    return {
        "notice_id": notice.id,
        "version": notice.version,
        "title": notice.title,
        "body_text": notice.body_text,
        "content_hash": notice.content_hash,
        "diff": diff,
        "created_at": now,
    }


def _event(
    notice: str, version: int, kind: str, now: datetime, detail: str | None = None
) -> dict[str, Any]:
    return {
        "notice_id": notice,
        "version": version,
        "kind": kind,
        "created_at": now,
        "detail": detail,
    }


def _write_events(session: Session, events: list[dict[str, Any]]) -> int:
    """Add the outbox events, skipping any whose kind exists for the version; return the added."""
    if not events:
        return 0
    statement = _EVENT_INSERTS.get(session.get_bind().dialect.name)
    if statement is None:
        session.add_all(NoticeEvent(**values) for values in events)
        return len(events)
    result: CursorResult[Any] = session.execute(statement, events)  # type: ignore[assignment]
    return max(result.rowcount, 0)


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
            _write_events(session, [_event(notice.id, notice.version, "withdrawn", now, detail)])
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
