"""Handing planned mails to the SMTP server under the mail ledger.

Each mail goes through three steps, each in its own transaction:

1. record the intent: a `newsletter_mail` row with status `intent` and an item row per notice;
2. send;
3. record the outcome: `sent`, `failed` (permanent 5xx) or `retry` (transient, tried again on
   the next run).

A crash between steps 2 and 3 leaves the `intent` row, and the next run skips that subscriber's
mail for the period instead of sending it twice. The price is that a crash between steps 1 and 2
loses that one mail: delivery is at most once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from noticeboard.store import Store
from publishers.newsletter.digests import FINAL_STATUSES, Outgoing, Plan
from publishers.newsletter.sender import DirectorySender, SendError, SmtpSender
from publishers.newsletter.subscribers import ACTIVE, suspend
from publishers.newsletter.tables import NewsletterMail, NewsletterMailItem, Subscriber

logger = logging.getLogger(__name__)


@dataclass
class MailReport:
    """Counts of one newsletter run; `files` lists the `.eml` files of a dry run."""

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
    """Record deferrals, then send each planned mail under the ledger.

    A mail is sent only while its subscriber has one of `statuses`, checked in the same
    transaction that records the intent, so an unsubscribe during the run is honoured.
    """
    report = MailReport()
    report.deferred = _record_deferrals(store, plan.deferred, now=now)

    for position, mail in enumerate(plan.mails):
        mail_id = _record_intent(store, mail, statuses, now=now)
        if mail_id is None:
            report.skipped += 1
            continue
        try:
            sender.send(mail.message)
        except SendError as error:
            _record_failure(store, mail, mail_id, error, report, now=now)
            if not error.permanent and not error.recipient_level:
                # Retries are exhausted, so the server is down for now: stop this run.
                logger.error("smtp unavailable unsent=%d", len(plan.mails) - position - 1)
                break
            continue
        _record_sent(store, mail, mail_id, now=now)
        report.sent += 1
    return report


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
) -> int | None:
    """Claim the ledger key of `mail`; return the row id, or None when it must not be sent."""
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
            if row is not None and row.status in FINAL_STATUSES:
                if row.status == "intent":
                    logger.warning(
                        "mail outcome unknown subscriber=%s kind=%s period=%s mail=%s "
                        "(a previous run stopped after recording the intent; not sent again)",
                        subscriber.id,
                        mail.kind,
                        mail.period,
                        row.id,
                    )
                return None
            if row is None:
                row = NewsletterMail(
                    subscriber_id=subscriber.id,
                    kind=mail.kind,
                    period=mail.period,
                    created_at=now,
                    notice_ids=[],
                )
                session.add(row)
            row.status = "intent"
            row.notice_ids = list(mail.notice_ids)
            row.message_id = str(mail.message["Message-ID"])
            row.attempts = (row.attempts or 0) + 1
            row.updated_at = now
            session.flush()
            _claim_items(session, row, mail, now=now)
            return row.id
    except IntegrityError:
        logger.warning(
            "mail skipped subscriber=%s kind=%s period=%s reason=claimed-by-another-run",
            mail.subscriber.id,
            mail.kind,
            mail.period,
        )
        return None


def _claim_items(session: Session, row: NewsletterMail, mail: Outgoing, *, now: datetime) -> None:
    existing = {
        item.notice_id: item
        for item in session.scalars(
            select(NewsletterMailItem).where(
                NewsletterMailItem.subscriber_id == row.subscriber_id,
                NewsletterMailItem.notice_id.in_(mail.notice_ids),
            )
        )
    }
    for notice_id in mail.notice_ids:
        item = existing.get(notice_id)
        if item is None:
            item = NewsletterMailItem(
                subscriber_id=row.subscriber_id, notice_id=notice_id, created_at=now, state="mailed"
            )
            session.add(item)
        item.state = "mailed"
        item.mail_id = row.id


def _record_sent(store: Store, mail: Outgoing, mail_id: int, *, now: datetime) -> None:
    with store.session() as session:
        session.execute(
            update(NewsletterMail)
            .where(NewsletterMail.id == mail_id)
            .values(status="sent", last_error=None, updated_at=now)
        )
    logger.info(
        "mail sent subscriber=%s kind=%s period=%s mail=%s notices=%d",
        mail.subscriber.id,
        mail.kind,
        mail.period,
        mail_id,
        len(mail.notice_ids),
    )


def _record_failure(
    store: Store,
    mail: Outgoing,
    mail_id: int,
    error: SendError,
    report: MailReport,
    *,
    now: datetime,
) -> None:
    status = "failed" if error.permanent else "retry"
    with store.session() as session:
        session.execute(
            update(NewsletterMail)
            .where(NewsletterMail.id == mail_id)
            .values(status=status, last_error=str(error), updated_at=now)
        )
        if not error.permanent:
            # The notices were not delivered, so the next run may plan them again.
            session.execute(delete(NewsletterMailItem).where(NewsletterMailItem.mail_id == mail_id))
        if error.recipient_rejected:
            subscriber = session.get(Subscriber, mail.subscriber.id)
            if subscriber is not None:
                suspend(subscriber, str(error), now=now)
                report.suspended += 1
    if error.permanent:
        report.failed += 1
        logger.error(
            "mail failed subscriber=%s kind=%s period=%s mail=%s error=%s",
            mail.subscriber.id,
            mail.kind,
            mail.period,
            mail_id,
            error,
        )
    else:
        report.retry += 1
        logger.warning(
            "mail postponed subscriber=%s kind=%s period=%s mail=%s error=%s",
            mail.subscriber.id,
            mail.kind,
            mail.period,
            mail_id,
            error,
        )


def _safe(text: str) -> str:
    return "".join(
        character if character.isalnum() or character in "-_" else "_" for character in text
    )
