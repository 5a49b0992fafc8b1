"""Handing planned mails to the SMTP server under the mail ledger.

Each mail goes through these steps, and steps 1, 3 and 4 each commit their own transaction:

1. claim: the `newsletter_mail` row gets status `intent` and an item row per notice. Nothing
   has reached the SMTP server yet;
2. the sender writes MAIL FROM, RCPT TO, DATA and the message data, but not the line "." that
   ends the data, so the server cannot deliver the message yet;
3. hand over: the sender's checkpoint records status `handed-over`, then the sender writes the
   end line. This is the point of no return;
4. record the reply: `sent`, `failed` (5xx) or `retry` (4xx, or a failure before step 3; the next
   run plans the mail again). While the sender retries after a 4xx reply, the row is `intent`
   again, because the server did not accept the message.

A run killed before step 3 leaves an `intent` row, and the SMTP server discards the unfinished
transaction. Once the row is older than `INTENT_STALE_AFTER`, the next run releases it to `retry`
and sends the mail again. A `handed-over` row is never sent again: when the connection fails
after the end line, the outcome is unknown, and the mail is counted as delivered with a warning.

So each planned mail is delivered once, except in two windows where it counts as delivered but
may not be: a kill between the hand-over commit and the write of the end line, and a connection
failure (or a server crash) after the end line and before the reply. Confirmation and
manage-link mails are never planned again, so a released one stays unsent.

Every update after the claim is made only while the row still has the claim's attempt count. A run
whose claim was taken over, because it was slower than `INTENT_STALE_AFTER`, therefore fails the
hand-over check and never writes the end line.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from noticeboard.store import Store
from publishers.newsletter.digests import (
    FAILED,
    FINAL_STATUSES,
    HANDED_OVER,
    INTENT,
    INTENT_STALE_AFTER,
    RETRY,
    SENT,
    Outgoing,
    Plan,
)
from publishers.newsletter.sender import (
    DirectorySender,
    OutcomeUnknownError,
    SendError,
    SmtpSender,
)
from publishers.newsletter.subscribers import ACTIVE, suspend
from publishers.newsletter.tables import NewsletterMail, NewsletterMailItem, Subscriber

logger = logging.getLogger(__name__)

STALE_INTENT_ERROR = "the run that claimed this mail stopped before handing it to the SMTP server"


@dataclass
class MailReport:
    """Counts of one newsletter run; `files` lists the `.eml` files of a dry run.

    `sent` includes mails whose outcome is unknown after the hand-over, which count as delivered.
    """

    sent: int = 0
    failed: int = 0
    retry: int = 0
    skipped: int = 0
    deferred: int = 0
    suspended: int = 0
    files: list[Path] = field(default_factory=list)

    def merge(self, other: MailReport) -> None:
        self.sent += other.sent
        self.failed += other.failed
        self.retry += other.retry
        self.skipped += other.skipped
        self.deferred += other.deferred
        self.suspended += other.suspended
        self.files.extend(other.files)


@dataclass(frozen=True)
class _Claim:
    """A run's right to send one ledger row, valid while the row keeps `attempts`."""

    mail_id: int
    attempts: int


class _ClaimTakenOverError(Exception):
    """Another run took over the claim, so this run must not hand the mail over."""


def write_plan(plan: Plan, folder: Path) -> MailReport:
    """Write every planned mail as an `.eml` file, touching neither the ledger nor SMTP."""
    writer = DirectorySender(folder)
    for mail in plan.mails:
        writer.write(mail.message, f"{mail.kind}-{_safe(mail.period)}-{mail.subscriber.key}")
    report = MailReport(files=list(writer.written))
    report.deferred = sum(len(ids) for ids in plan.deferred.values())
    logger.info("dry run written mails=%d folder=%s", len(writer.written), folder)
    return report


def deliver_plan(
    store: Store,
    plan: Plan,
    sender: SmtpSender,
    *,
    now: datetime,
    statuses: tuple[str, ...] = (ACTIVE,),
) -> MailReport:
    """Release stale intents, record deferrals, then send each planned mail under the ledger.

    A mail is sent only while its subscriber has one of `statuses`, checked in the same
    transaction that records the intent, so an unsubscribe during the run is honoured. The plan
    must have been made with the same `now`, so that it includes the mails released here.
    """
    report = MailReport()
    _release_stale_intents(store, now=now)
    report.deferred = _record_deferrals(store, plan.deferred, now=now)

    for position, mail in enumerate(plan.mails):
        claim = _record_intent(store, mail, statuses, now=now)
        if claim is None:
            report.skipped += 1
            continue
        if not _send_claimed(store, sender, mail, claim, report, now=now):
            # Retries are exhausted, so the server is down for now: stop this run.
            logger.error("smtp unavailable unsent=%d", len(plan.mails) - position - 1)
            break
    return report


def _send_claimed(
    store: Store,
    sender: SmtpSender,
    mail: Outgoing,
    claim: _Claim,
    report: MailReport,
    *,
    now: datetime,
) -> bool:
    """Send one claimed mail and record the outcome; return False when the server is down."""
    checkpoint = functools.partial(_record_handover, store, mail, claim, now=now)
    rejected = functools.partial(_record_rejection, store, claim, now=now)
    try:
        sender.send(mail.message, checkpoint=checkpoint, rejected=rejected)
    except _ClaimTakenOverError:
        report.skipped += 1
        return True
    except OutcomeUnknownError as error:
        _record_outcome_unknown(store, mail, claim, error, now=now)
        report.sent += 1
        return True
    except SendError as error:
        _record_failure(store, mail, claim, error, report, now=now)
        return error.permanent or error.recipient_level
    _record_sent(store, mail, claim, now=now)
    report.sent += 1
    return True


def _release_stale_intents(store: Store, *, now: datetime) -> int:
    """Turn `intent` rows older than `INTENT_STALE_AFTER` into `retry` rows, and count them.

    The run that claimed such a mail stopped before handing it over, so the SMTP server has
    discarded it, and the planner has already planned it again. The update is one conditional
    statement, so when two runs release at once, each row changes in only one of them.
    """
    with store.session() as session:
        released = session.execute(
            update(NewsletterMail)
            .where(
                NewsletterMail.status == INTENT,
                NewsletterMail.updated_at < now - INTENT_STALE_AFTER,
            )
            .values(status=RETRY, last_error=STALE_INTENT_ERROR, updated_at=now)
            .returning(
                NewsletterMail.id,
                NewsletterMail.subscriber_id,
                NewsletterMail.kind,
                NewsletterMail.period,
            )
            .execution_options(synchronize_session=False)
        ).all()
        if released:
            # The notices were not delivered, so they may be planned again.
            session.execute(
                delete(NewsletterMailItem).where(
                    NewsletterMailItem.mail_id.in_([row.id for row in released])
                )
            )
    for row in released:
        logger.warning(
            "mail intent released subscriber=%s kind=%s period=%s mail=%s "
            "(the run that claimed it stopped before handing it over; it is sent again)",
            row.subscriber_id,
            row.kind,
            row.period,
            row.id,
        )
    return len(released)


def _record_deferrals(store: Store, deferred: dict[int, list[str]], *, now: datetime) -> int:
    count = 0
    with store.session() as session:
        for subscriber_id, notice_ids in deferred.items():
            for notice_id in notice_ids:
                session.add(
                    NewsletterMailItem(
                        subscriber_id=subscriber_id,
                        notice_id=notice_id,
                        state="deferred",
                        created_at=now,
                    )
                )
                count += 1
    return count


def _record_intent(
    store: Store, mail: Outgoing, statuses: tuple[str, ...], *, now: datetime
) -> _Claim | None:
    """Claim the ledger key of `mail`; return the claim, or None when it must not be sent."""
    try:
        with store.session() as session:
            subscriber = session.get(Subscriber, mail.subscriber.id)
            if subscriber is None or subscriber.status not in statuses:
                logger.info("mail skipped subscriber=%s reason=status", mail.subscriber.id)
                return None
            row = session.scalars(
                select(NewsletterMail).where(
                    NewsletterMail.subscriber_id == subscriber.id,
                    NewsletterMail.kind == mail.kind,
                    NewsletterMail.period == mail.period,
                )
            ).one_or_none()
            claim: _Claim | None
            if row is None:
                claim = _insert_intent(session, mail, now=now)
            else:
                claim = _reclaim(session, row, mail, now=now)
            if claim is not None:
                _claim_items(session, subscriber.id, claim.mail_id, mail, now=now)
            return claim
    except IntegrityError:
        _log_claimed_elsewhere(mail)
        return None


def _insert_intent(session: Session, mail: Outgoing, *, now: datetime) -> _Claim:
    """Insert the ledger row of `mail`; a concurrent insert of its key raises IntegrityError."""
    row = NewsletterMail(
        subscriber_id=mail.subscriber.id,
        kind=mail.kind,
        period=mail.period,
        status=INTENT,
        notice_ids=list(mail.notice_ids),
        message_id=str(mail.message["Message-ID"]),
        attempts=1,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    return _Claim(row.id, row.attempts)


def _reclaim(
    session: Session, row: NewsletterMail, mail: Outgoing, *, now: datetime
) -> _Claim | None:
    """Claim an existing `retry` row with a compare-and-set update, so only one run wins it."""
    if row.status in FINAL_STATUSES:
        if row.status == INTENT:
            _log_claimed_elsewhere(mail)
        return None
    attempts = row.attempts + 1
    claimed = session.execute(
        update(NewsletterMail)
        .where(
            NewsletterMail.id == row.id,
            NewsletterMail.status == row.status,
            NewsletterMail.attempts == row.attempts,
        )
        .values(
            status=INTENT,
            notice_ids=list(mail.notice_ids),
            message_id=str(mail.message["Message-ID"]),
            attempts=attempts,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    if claimed != 1:
        _log_claimed_elsewhere(mail)
        return None
    return _Claim(row.id, attempts)


def _log_claimed_elsewhere(mail: Outgoing) -> None:
    logger.info(
        "mail skipped subscriber=%s kind=%s period=%s reason=claimed-by-another-run",
        mail.subscriber.id,
        mail.kind,
        mail.period,
    )


def _claim_items(
    session: Session, subscriber_id: int, mail_id: int, mail: Outgoing, *, now: datetime
) -> None:
    existing = {
        item.notice_id: item
        for item in session.scalars(
            select(NewsletterMailItem).where(
                NewsletterMailItem.subscriber_id == subscriber_id,
                NewsletterMailItem.notice_id.in_(mail.notice_ids),
            )
        )
    }
    for notice_id in mail.notice_ids:
        item = existing.get(notice_id)
        if item is None:
            item = NewsletterMailItem(
                subscriber_id=subscriber_id, notice_id=notice_id, created_at=now, state="mailed"
            )
            session.add(item)
        item.state = "mailed"
        item.mail_id = mail_id


def _record_handover(store: Store, mail: Outgoing, claim: _Claim, *, now: datetime) -> None:
    """Record status `handed-over`: the sender's checkpoint, just before the end of the data.

    Raise `_ClaimTakenOverError` when another run has taken the claim over, so that the sender
    drops the transaction. A retry within `send` calls this again, which changes nothing.
    """
    with store.session() as session:
        updated = session.execute(
            update(NewsletterMail)
            .where(
                NewsletterMail.id == claim.mail_id,
                NewsletterMail.attempts == claim.attempts,
                NewsletterMail.status.in_((INTENT, HANDED_OVER)),
            )
            .values(status=HANDED_OVER, updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
    if updated != 1:
        logger.warning(
            "mail claim lost subscriber=%s kind=%s period=%s mail=%s "
            "(another run took it over; this run does not send it)",
            mail.subscriber.id,
            mail.kind,
            mail.period,
            claim.mail_id,
        )
        raise _ClaimTakenOverError(f"mail {claim.mail_id} was taken over by another run")


def _record_rejection(store: Store, claim: _Claim, _error: SendError, *, now: datetime) -> None:
    """Set a rejected mail back to `intent`, so that a kill before the retry ends resends it."""
    with store.session() as session:
        session.execute(
            update(NewsletterMail)
            .where(
                NewsletterMail.id == claim.mail_id,
                NewsletterMail.attempts == claim.attempts,
                NewsletterMail.status == HANDED_OVER,
            )
            .values(status=INTENT, updated_at=now)
            .execution_options(synchronize_session=False)
        )


def _record_sent(store: Store, mail: Outgoing, claim: _Claim, *, now: datetime) -> None:
    with store.session() as session:
        session.execute(
            update(NewsletterMail)
            .where(NewsletterMail.id == claim.mail_id, NewsletterMail.attempts == claim.attempts)
            .values(status=SENT, last_error=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
    logger.info(
        "mail sent subscriber=%s kind=%s period=%s mail=%s notices=%d",
        mail.subscriber.id,
        mail.kind,
        mail.period,
        claim.mail_id,
        len(mail.notice_ids),
    )


def _record_outcome_unknown(
    store: Store, mail: Outgoing, claim: _Claim, error: OutcomeUnknownError, *, now: datetime
) -> None:
    """Keep the row `handed-over`, with the error, because the server may have accepted it."""
    with store.session() as session:
        session.execute(
            update(NewsletterMail)
            .where(NewsletterMail.id == claim.mail_id, NewsletterMail.attempts == claim.attempts)
            .values(last_error=str(error), updated_at=now)
            .execution_options(synchronize_session=False)
        )
    logger.warning(
        "mail outcome unknown subscriber=%s kind=%s period=%s mail=%s error=%s "
        "(counted as delivered and not sent again)",
        mail.subscriber.id,
        mail.kind,
        mail.period,
        claim.mail_id,
        error,
    )


def _record_failure(
    store: Store,
    mail: Outgoing,
    claim: _Claim,
    error: SendError,
    report: MailReport,
    *,
    now: datetime,
) -> None:
    status = FAILED if error.permanent else RETRY
    with store.session() as session:
        updated = session.execute(
            update(NewsletterMail)
            .where(NewsletterMail.id == claim.mail_id, NewsletterMail.attempts == claim.attempts)
            .values(status=status, last_error=str(error), updated_at=now)
            .execution_options(synchronize_session=False)
        ).rowcount
        if updated == 1 and not error.permanent:
            # The notices were not delivered, so the next run may plan them again.
            session.execute(
                delete(NewsletterMailItem).where(NewsletterMailItem.mail_id == claim.mail_id)
            )
        if error.recipient_rejected:
            subscriber = session.get(Subscriber, mail.subscriber.id)
            if subscriber is not None:
                suspend(subscriber, str(error), now=now)
                report.suspended += 1
    if updated != 1:
        logger.warning(
            "mail record lost subscriber=%s kind=%s period=%s mail=%s status=%s "
            "(another run took the claim over)",
            mail.subscriber.id,
            mail.kind,
            mail.period,
            claim.mail_id,
            status,
        )
    if error.permanent:
        report.failed += 1
        logger.error(
            "mail failed subscriber=%s kind=%s period=%s mail=%s error=%s",
            mail.subscriber.id,
            mail.kind,
            mail.period,
            claim.mail_id,
            error,
        )
    else:
        report.retry += 1
        logger.warning(
            "mail postponed subscriber=%s kind=%s period=%s mail=%s error=%s",
            mail.subscriber.id,
            mail.kind,
            mail.period,
            claim.mail_id,
            error,
        )


def _safe(text: str) -> str:
    return "".join(
        character if character.isalnum() or character in "-_" else "_" for character in text
    )
