"""The delivery ledger shared by every channel: claim, record, retry.

Exactly-once posting rests on three rules:

1. Before any remote call a worker claims the (channel, notice, version) row with
   `INSERT ... ON CONFLICT DO NOTHING`, storing status `intent`, its worker id and a deterministic
   idempotency key. The unique constraint lets only one worker win, on SQLite and PostgreSQL alike.
2. A row that another worker claimed recently is left alone. A row whose intent is older than
   `INTENT_STALE_AFTER` (its worker crashed between the call and the record), or that failed
   and is due again, is taken over with a compare-and-set update, and the claim is marked
   `reconcile`: the channel must look on the platform for an earlier post before creating one.
3. Outcomes are recorded only by the worker holding the claim: `sent` with the remote id,
   `failed` with the next attempt time (exponential backoff, never sooner than the platform's
   Retry-After), or `permanent` (a 4xx response other than 429, or too many attempts), which is
   shown by `noticeboard deliveries` and never retried.

A withdrawal (the authority no longer lists a notice that a channel delivered) is recorded by the
same rules under the ledger channel `<channel>:withdrawn`, one row per withdrawn version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, exists, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from noticeboard.errors import DeliveryError
from noticeboard.store import Store
from noticeboard.store.tables import Delivery, Notice
from publishers.selection import is_published

logger = logging.getLogger(__name__)

INTENT = "intent"
SENT = "sent"
FAILED = "failed"
PERMANENT = "permanent"
SUPERSEDED = "superseded"
STATUSES = (INTENT, SENT, FAILED, PERMANENT, SUPERSEDED)
WITHDRAWAL_SUFFIX = ":withdrawn"

# A worker spends at most a few HTTP timeouts on one delivery, so an intent this old has no
# live owner.
INTENT_STALE_AFTER = timedelta(minutes=10)
RETRY_BASE = timedelta(minutes=1)
RETRY_CAP = timedelta(hours=6)
MAX_ATTEMPTS = 8
LAST_ERROR_CHARS = 1000


@dataclass(frozen=True)
class Claim:
    """A worker's exclusive right to deliver one notice version on one channel.

    `reconcile` is true when an earlier attempt may already have reached the platform, so the
    channel must look for that post before creating one. `earlier_version_pending` is true when
    that earlier attempt was for an older version, so a post found must also be edited.
    `previous_remote_id` is the platform id of the last version delivered, to be edited.
    """

    delivery_id: int
    channel: str
    notice_id: str
    version: int
    idempotency_key: str
    worker: str
    attempts: int
    reconcile: bool
    earlier_version_pending: bool
    previous_remote_id: str | None


def new_worker_id() -> str:
    """Return an id naming this process, unique across hosts and restarts."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def idempotency_key(channel: str, notice_id: str, version: int) -> str:
    """Return the key sent to the platform; the same delivery always gets the same key."""
    return hashlib.sha256(f"{channel}\n{notice_id}\n{version}".encode()).hexdigest()[:32]


def _insert_intent(session: Session, values: dict[str, object]) -> bool:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(Delivery)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["channel", "notice_id", "version"])
        .returning(Delivery.id)
    )
    # RETURNING yields a row only when the insert happened (PostgreSQL, SQLite 3.35 and later);
    # rowcount is not reliable for ORM-enabled inserts.
    return session.execute(statement).first() is not None


def claim(
    store: Store, channel: str, notice_id: str, version: int, *, worker: str, now: datetime
) -> Claim | None:
    """Claim the delivery of a notice version, or return None when it is not this worker's to do."""
    key = idempotency_key(channel, notice_id, version)
    with store.session() as session:
        inserted = _insert_intent(
            session,
            {
                "channel": channel,
                "notice_id": notice_id,
                "version": version,
                "idempotency_key": key,
                "status": INTENT,
                "attempts": 0,
                "claimed_by": worker,
                "claimed_at": now,
                "created_at": now,
                "updated_at": now,
            },
        )
    if inserted:
        return _claim_of(store, channel, notice_id, version, worker, reconcile=False)

    with store.session() as session:
        row = session.scalars(
            select(Delivery).where(
                Delivery.channel == channel,
                Delivery.notice_id == notice_id,
                Delivery.version == version,
            )
        ).one()
        if not _takeover_allowed(row, now):
            logger.debug(
                "delivery_claim_skipped channel=%s notice=%s version=%d status=%s",
                channel,
                notice_id,
                version,
                row.status,
            )
            return None
        taken = session.execute(
            update(Delivery)
            .where(
                Delivery.id == row.id,
                Delivery.status == row.status,
                Delivery.attempts == row.attempts,
                Delivery.updated_at == row.updated_at,
            )
            .values(status=INTENT, claimed_by=worker, claimed_at=now, updated_at=now)
        ).rowcount
    if taken != 1:
        return None
    logger.info(
        "delivery_reclaimed channel=%s notice=%s version=%d previous_status=%s",
        channel,
        notice_id,
        version,
        row.status,
    )
    return _claim_of(store, channel, notice_id, version, worker, reconcile=True)


def _takeover_allowed(row: Delivery, now: datetime) -> bool:
    if row.status == FAILED:
        return row.next_attempt_at is None or row.next_attempt_at <= now
    if row.status == INTENT:
        return row.claimed_at is None or now - row.claimed_at >= INTENT_STALE_AFTER
    return False


def _claim_of(
    store: Store, channel: str, notice_id: str, version: int, worker: str, *, reconcile: bool
) -> Claim:
    with store.session() as session:
        rows = session.scalars(
            select(Delivery)
            .where(Delivery.channel == channel, Delivery.notice_id == notice_id)
            .order_by(Delivery.version.desc())
        ).all()
    current = next(row for row in rows if row.version == version)
    older = [row for row in rows if row.version < version]
    previous_remote_id = next(
        (row.remote_id for row in older if row.status == SENT and row.remote_id), None
    )
    earlier_pending = any(row.status in (INTENT, FAILED) for row in older)
    return Claim(
        delivery_id=current.id,
        channel=channel,
        notice_id=notice_id,
        version=version,
        idempotency_key=current.idempotency_key,
        worker=worker,
        attempts=current.attempts,
        reconcile=reconcile or earlier_pending,
        earlier_version_pending=earlier_pending,
        previous_remote_id=previous_remote_id,
    )


def record_sent(store: Store, delivery_claim: Claim, remote_id: str, *, now: datetime) -> bool:
    """Mark the claimed delivery sent; older unfinished versions of it are marked superseded."""
    with store.session() as session:
        updated = session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_claim.delivery_id,
                Delivery.claimed_by == delivery_claim.worker,
            )
            .values(
                status=SENT,
                remote_id=remote_id,
                attempts=Delivery.attempts + 1,
                last_error=None,
                next_attempt_at=None,
                claimed_by=None,
                updated_at=now,
            )
        ).rowcount
        session.execute(
            update(Delivery)
            .where(
                Delivery.channel == delivery_claim.channel,
                Delivery.notice_id == delivery_claim.notice_id,
                Delivery.version < delivery_claim.version,
                Delivery.status.in_((INTENT, FAILED)),
            )
            .values(status=SUPERSEDED, claimed_by=None, updated_at=now)
        )
    if updated != 1:
        logger.warning(
            "delivery_record_lost channel=%s notice=%s version=%d remote_id=%s reason=claim_taken_over",
            delivery_claim.channel,
            delivery_claim.notice_id,
            delivery_claim.version,
            remote_id,
        )
        return False
    return True


def retry_delay(attempts: int, retry_after: float | None) -> timedelta:
    """Return the wait before attempt `attempts + 1`: doubling from a minute, at least Retry-After."""
    backoff = min(RETRY_BASE * (2 ** max(0, attempts - 1)), RETRY_CAP)
    if retry_after is not None:
        backoff = max(backoff, timedelta(seconds=retry_after))
    return backoff


def record_failure(
    store: Store, delivery_claim: Claim, error: DeliveryError | Exception, *, now: datetime
) -> str:
    """Record a failed attempt and return the new status (`failed` or `permanent`)."""
    attempts = delivery_claim.attempts + 1
    permanent = bool(getattr(error, "permanent", False))
    retry_after = getattr(error, "retry_after", None)
    message = str(error)[:LAST_ERROR_CHARS]
    if not permanent and attempts >= MAX_ATTEMPTS:
        permanent = True
        message = f"gave up after {attempts} attempts: {message}"[:LAST_ERROR_CHARS]

    status = PERMANENT if permanent else FAILED
    next_attempt = None if permanent else now + retry_delay(attempts, retry_after)
    with store.session() as session:
        session.execute(
            update(Delivery)
            .where(
                Delivery.id == delivery_claim.delivery_id,
                Delivery.claimed_by == delivery_claim.worker,
            )
            .values(
                status=status,
                attempts=attempts,
                last_error=message,
                next_attempt_at=next_attempt,
                claimed_by=None,
                updated_at=now,
            )
        )
    log = logger.error if permanent else logger.warning
    log(
        "delivery_failed channel=%s notice=%s version=%d status=%s attempts=%d next_attempt=%s error=%s",
        delivery_claim.channel,
        delivery_claim.notice_id,
        delivery_claim.version,
        status,
        attempts,
        next_attempt.isoformat() if next_attempt else None,
        message,
    )
    return status


def _settled(channel: str, now: datetime) -> ColumnElement[bool]:
    """Return the condition that the current version of a `Notice` row needs no call on `channel`.

    True for versions already sent, permanently failed, failed and not yet due, or claimed by a
    live worker.
    """
    return exists().where(
        Delivery.channel == channel,
        Delivery.notice_id == Notice.id,
        Delivery.version == Notice.version,
        or_(
            Delivery.status.in_((SENT, PERMANENT, SUPERSEDED)),
            and_(Delivery.status == FAILED, Delivery.next_attempt_at > now),
            and_(Delivery.status == INTENT, Delivery.claimed_at > now - INTENT_STALE_AFTER),
        ),
    )


def due_notice_ids(session: Session, channel: str, *, now: datetime) -> list[str]:
    """Return ids of published notices whose current version this channel still has to deliver.

    Oldest first, so a platform's timeline shows notices in order.
    """
    statement = (
        select(Notice.id)
        .where(is_published(), ~_settled(channel, now))
        .order_by(Notice.published_at.asc().nulls_first(), Notice.id)
    )
    return list(session.scalars(statement))


def withdrawal_channel(channel: str) -> str:
    """Return the ledger channel under which the withdrawals of `channel` are recorded.

    A withdrawal is its own row, keyed by the notice version that was withdrawn, so it is made
    once per version like a post, and `deliveries --channel mastodon:withdrawn` lists them.
    """
    return channel + WITHDRAWAL_SUFFIX


def due_withdrawal_ids(session: Session, channel: str, *, now: datetime) -> list[str]:
    """Return ids of withdrawn notices that `channel` delivered and has not yet marked withdrawn."""
    # NOTE: a notice that its source lists again without a new version keeps its withdrawal
    # note on the platform. Only a new version edits the post back.
    delivered = exists().where(
        Delivery.channel == channel,
        Delivery.notice_id == Notice.id,
        Delivery.status == SENT,
    )
    statement = (
        select(Notice.id)
        .where(
            Notice.withdrawn_at.is_not(None),
            delivered,
            ~_settled(withdrawal_channel(channel), now),
        )
        .order_by(Notice.withdrawn_at, Notice.id)
    )
    return list(session.scalars(statement))


def last_remote_id(store: Store, channel: str, notice_id: str) -> str | None:
    """Return the platform id of the newest version of a notice that `channel` delivered."""
    with store.session() as session:
        return session.scalars(
            select(Delivery.remote_id)
            .where(
                Delivery.channel == channel,
                Delivery.notice_id == notice_id,
                Delivery.status == SENT,
                Delivery.remote_id.is_not(None),
            )
            .order_by(Delivery.version.desc())
            .limit(1)
        ).first()
