"""Ingesting a source: fetch its URLs, read new items into `raw_item`, record its health.

`ingest_source` handles one catalog source and always returns a `SourceReport`; a failing source
never stops the others. An exception of an unexpected type while fetching or reading a source (a
bug, or a library failing on hostile input) fails that source, with the traceback logged. Only
database errors, and any error while storing, are logged as critical and re-raised.

Work is kept to what changed. Each URL is fetched with the ETag and Last-Modified stored for it.
A 304, or a body whose SHA-256 equals the stored one, is not parsed at all, and only the source's
state is written. New items are inserted with `ON CONFLICT DO NOTHING` on
`(source_id, payload_hash)`, where the hash covers the item without its guid, so a re-fetch or a
site that regenerates guids adds no row.

The source's listing (the listing keys of every item it currently lists, for withdrawal) is
recorded only when every URL was read completely, or was unchanged since a complete read.
`successful_fetches` counts fetches that confirmed such a listing, including 304 responses, because
an unchanged document lists the same items.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Table, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from connectors._retry import RateLimitedError
from connectors.feeds import parse_feed
from connectors.health import (
    EMPTY,
    FAILED,
    LAYOUT_CHANGED,
    NOT_MODIFIED,
    OK,
    SKIPPED,
    Outcome,
    alert_on_change,
    record_outcome,
)
from connectors.html import LayoutChangedError, scrape_listing
from connectors.http import FetchedDocument, HttpFetcher
from noticeboard.catalog import Source
from noticeboard.errors import ParseError, SourceError, StoreError
from noticeboard.models import RawItem
from noticeboard.settings import Settings
from noticeboard.store import Store
from noticeboard.store.tables import RawItem as RawItemRow
from noticeboard.store.tables import SourceState
from transforms.identity import listing_key

logger = logging.getLogger(__name__)

# Errors that the parsing libraries raise on hostile input despite their tolerance.
PARSER_ERRORS = (ValueError, LookupError, RecursionError)
# Errors of the database, which the fetcher's host budget uses too: they stop the run.
STORE_ERRORS = (SQLAlchemyError, StoreError)
# Rows per INSERT or IN list; 500 rows of 6 columns stay under SQLite's variable limit.
INSERT_BATCH_ROWS = 500


@dataclass
class SourceReport:
    """The result of ingesting or checking one source.

    `items` is filled by `check_source` only, so callers can show what a source yields.
    """

    source_id: str
    status: str
    fetched_items: int = 0
    new_items: int = 0
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    items: list[RawItem] = field(default_factory=list, repr=False)


@dataclass
class _UrlRead:
    """One URL of a source after this run: its validators, and its items when it changed."""

    url: str
    validators: dict[str, Any]
    unchanged: bool = False
    items: list[RawItem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    complete: bool = True


@dataclass
class _Harvest:
    reads: list[_UrlRead] = field(default_factory=list)
    error: SourceError | None = None


def ingest_source(
    store: Store,
    source: Source,
    fetcher: HttpFetcher,
    settings: Settings,
    *,
    now: datetime,
    force: bool = False,
) -> SourceReport:
    """Fetch a source, store its new raw items and record its health."""
    previous = _load_state(store, source.id)
    if not force and previous.next_fetch_after is not None and now < previous.next_fetch_after:
        logger.info(
            "ingest_skipped source=%s reason=backoff until=%s failures=%d",
            source.id,
            previous.next_fetch_after.isoformat(),
            previous.consecutive_failures,
        )
        return SourceReport(source.id, SKIPPED, error=previous.last_error)

    try:
        harvest = _harvest(source, fetcher, previous.url_state or {})
        report, state = _save(store, source, harvest, settings, now)
        _alert(store, state, settings)
    except Exception:
        logger.critical("ingest_crashed source=%s", source.id, exc_info=True)
        raise

    logger.info(
        "ingested source=%s status=%s items=%d new=%d warnings=%d",
        source.id,
        report.status,
        report.fetched_items,
        report.new_items,
        len(report.warnings),
    )
    return report


def check_source(source: Source, fetcher: HttpFetcher, settings: Settings) -> SourceReport:
    """Fetch every URL of a source once without validators and report its items; store nothing."""
    del settings  # the fetcher carries the settings; kept for a signature like `ingest_source`
    harvest = _harvest(source, fetcher, {})
    items = [item for read in harvest.reads for item in read.items]
    warnings = [warning for read in harvest.reads for warning in read.warnings]
    if harvest.error is not None:
        status = LAYOUT_CHANGED if isinstance(harvest.error, LayoutChangedError) else FAILED
        return SourceReport(source.id, status, len(items), 0, warnings, str(harvest.error), items)
    return SourceReport(source.id, OK if items else EMPTY, len(items), 0, warnings, None, items)


def _harvest(source: Source, fetcher: HttpFetcher, url_state: dict[str, Any]) -> _Harvest:
    harvest = _Harvest()
    for url in source.urls:
        stored = url_state.get(url) or {}
        try:
            harvest.reads.append(_read_url(source, fetcher, url, stored))
        except SourceError as error:
            logger.error("fetch_failed source=%s url=%s error=%s", source.id, url, error)
            harvest.error = error
            break
        except STORE_ERRORS:
            raise
        except Exception as error:
            logger.exception("source_crashed source=%s url=%s", source.id, url)
            harvest.error = SourceError(
                source.id,
                url,
                f"unexpected {type(error).__name__}: {error}; "
                "the traceback is in the log, please report it",
            )
            break
    return harvest


def _read_url(source: Source, fetcher: HttpFetcher, url: str, stored: dict[str, Any]) -> _UrlRead:
    document = fetcher.fetch(
        url, source_id=source.id, etag=stored.get("etag"), last_modified=stored.get("last_modified")
    )
    if document.not_modified:
        validators = {
            **stored,
            "etag": document.etag or stored.get("etag"),
            "last_modified": document.last_modified or stored.get("last_modified"),
        }
        return _UrlRead(url, validators, unchanged=True)

    body_hash = hashlib.sha256(document.body).hexdigest()
    validators = {
        "etag": document.etag,
        "last_modified": document.last_modified,
        "body_hash": body_hash,
    }
    if body_hash == stored.get("body_hash") and stored.get("listing") is not None:
        logger.debug("body_unchanged source=%s url=%s", source.id, url)
        return _UrlRead(url, {**validators, "listing": stored["listing"]}, unchanged=True)

    items, warnings, complete = _parse(document, source, fetcher)
    if complete:
        validators["listing"] = sorted({listing_key(item) for item in items})
    return _UrlRead(url, validators, items=items, warnings=warnings, complete=complete)


def _parse(
    document: FetchedDocument, source: Source, fetcher: HttpFetcher
) -> tuple[list[RawItem], list[str], bool]:
    try:
        if source.kind == "html":
            scraped = scrape_listing(document, source, fetcher)
            warnings = (
                [f"encoding: {document.encoding_warning}"] if document.encoding_warning else []
            )
            return scraped.items, warnings + scraped.warnings, scraped.complete
        feed = parse_feed(document, source)
        return feed.items, feed.warnings, True
    except PARSER_ERRORS as error:
        raise ParseError(
            source.id,
            document.final_url,
            f"document could not be parsed ({type(error).__name__}: {error})",
        ) from error


def _save(
    store: Store, source: Source, harvest: _Harvest, settings: Settings, now: datetime
) -> tuple[SourceReport, SourceState]:
    items = [item for read in harvest.reads for item in read.items]
    warnings = [warning for read in harvest.reads for warning in read.warnings]

    with store.session() as session:
        state = _state_for_update(session, source.id)
        new_items = _insert_items(session, store.dialect, items, now)
        url_state = dict(state.url_state or {})
        for read in harvest.reads:
            url_state[read.url] = read.validators
        state.url_state = url_state
        _mirror_first_url(state, url_state.get(source.urls[0]) or {})

        outcome = _outcome(source, harvest, url_state, items, new_items, warnings)
        if harvest.error is None:
            listing = _complete_listing(source, harvest, url_state)
            state.listing = listing
            if listing is not None:
                state.successful_fetches = (state.successful_fetches or 0) + 1
        status = record_outcome(state, outcome, settings, now=now)

    report = SourceReport(
        source.id,
        status,
        len(items),
        new_items,
        warnings,
        outcome.error,
    )
    return report, state


def _outcome(
    source: Source,
    harvest: _Harvest,
    url_state: dict[str, Any],
    items: list[RawItem],
    new_items: int,
    warnings: list[str],
) -> Outcome:
    error = harvest.error
    if error is not None:
        status = LAYOUT_CHANGED if isinstance(error, LayoutChangedError) else FAILED
        retry_after = error.retry_after if isinstance(error, RateLimitedError) else None
        return Outcome(status, str(error), len(warnings), len(items), new_items, retry_after)

    if all(read.unchanged for read in harvest.reads):
        return Outcome(NOT_MODIFIED, items=0)

    listed = sum(len((url_state.get(url) or {}).get("listing") or []) for url in source.urls)
    status = OK if items or listed else EMPTY
    return Outcome(status, None, len(warnings), len(items), new_items)


def _complete_listing(
    source: Source, harvest: _Harvest, url_state: dict[str, Any]
) -> list[str] | None:
    if not all(read.complete for read in harvest.reads):
        return None
    keys: set[str] = set()
    for url in source.urls:
        listing = (url_state.get(url) or {}).get("listing")
        if listing is None:
            return None
        keys.update(listing)
    return sorted(keys)


def _insert_items(session: Session, dialect: str, items: list[RawItem], now: datetime) -> int:
    """Insert the items whose payload hash is not stored yet; return how many rows were added."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for item in items:
        payload = dataclasses.asdict(item)
        digest = payload_hash(payload)
        rows.setdefault(
            (item.source_id, digest),
            {
                "source_id": item.source_id,
                "item_key": listing_key(item),
                "payload": payload,
                "payload_hash": digest,
                "fetched_at": now,
                "status": "pending",
            },
        )

    stored = _stored_hashes(session, list(rows))
    fresh = [row for key, row in rows.items() if key not in stored]
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = RawItemRow.__table__
    assert isinstance(table, Table)
    if not fresh:
        return 0
    # ON CONFLICT still guards against another process inserting the same item meanwhile. One
    # statement with a list of rows compiles once and is cached; SQLAlchemy sends the rows in
    # batches of multi-row INSERTs and collects the ids that RETURNING gives back.
    statement = (
        insert(table)
        .on_conflict_do_nothing(index_elements=["source_id", "payload_hash"])
        .returning(table.c.id)
    )
    return len(session.execute(statement, fresh).all())


def _stored_hashes(session: Session, keys: list[tuple[str, str]]) -> set[tuple[str, str]]:
    stored: set[tuple[str, str]] = set()
    for source_id in {source_id for source_id, _ in keys}:
        digests = [digest for key_source, digest in keys if key_source == source_id]
        for start in range(0, len(digests), INSERT_BATCH_ROWS):
            found = session.scalars(
                select(RawItemRow.payload_hash).where(
                    RawItemRow.source_id == source_id,
                    RawItemRow.payload_hash.in_(digests[start : start + INSERT_BATCH_ROWS]),
                )
            )
            stored.update((source_id, digest) for digest in found)
    return stored


def payload_hash(payload: dict[str, Any]) -> str:
    """Return the SHA-256 of a raw item's payload without its guid, as stored in `raw_item`."""
    material = {name: value for name, value in payload.items() if name != "guid"}
    encoded = json.dumps(material, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _load_state(store: Store, source_id: str) -> SourceState:
    with store.session() as session:
        state = session.get(SourceState, source_id)
        if state is None:
            return SourceState(source_id=source_id, consecutive_failures=0)
        session.expunge(state)
        return state


def _state_for_update(session: Session, source_id: str) -> SourceState:
    """Lock the source's state row, creating it first when this is the source's first fetch.

    The row is created with ON CONFLICT DO NOTHING, so two processes fetching a new source at once
    both end up locking the one row instead of one failing on the primary key.
    """
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(SourceState)
        .values(source_id=source_id, consecutive_failures=0, successful_fetches=0, warnings=0, items_last_fetch=0)
        .on_conflict_do_nothing(index_elements=["source_id"])
    )
    state = session.get(SourceState, source_id, with_for_update=True, populate_existing=True)
    assert state is not None, "the state row was inserted or already existed"
    return state


def _mirror_first_url(state: SourceState, validators: dict[str, Any]) -> None:
    """Copy the first URL's validators into the columns that `noticeboard sources` shows."""
    state.etag = validators.get("etag")
    state.last_modified = validators.get("last_modified")
    state.body_hash = validators.get("body_hash")


def _alert(store: Store, state: SourceState, settings: Settings) -> None:
    """Alert operators outside the saving transaction, then store the status that was sent."""
    alerted_before = state.alerted_status
    alert_on_change(state, settings)
    if state.alerted_status != alerted_before:
        with store.session() as session:
            session.execute(
                update(SourceState)
                .where(SourceState.source_id == state.source_id)
                .values(alerted_status=state.alerted_status)
            )
