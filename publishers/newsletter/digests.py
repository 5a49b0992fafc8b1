"""Choosing what each subscriber gets: immediate mails, daily and weekly digests.

Only notices at stage `ready` and not withdrawn are mailed, and only those first seen after the
subscriber confirmed. `newsletter_mail_item` rows exclude notices a subscriber already got, and
the mail ledger excludes a digest period already sent. A mail whose `intent` row is older than
`INTENT_STALE_AFTER` counts as not sent, because the run that claimed it stopped before handing
it to the SMTP server, so it is planned again. Immediate subscribers get at most
`settings.immediate_daily_limit` immediate mails per local day (`settings.newsletter_timezone`).
The mail that reaches the limit states this, and later notices of that day are deferred to the next
daily digest.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from noticeboard.settings import Settings
from noticeboard.store.tables import Notice
from noticeboard.views import NoticeView, load_views
from publishers import ledger
from publishers.newsletter.i18n import gettext, region_code_label, topic_label
from publishers.newsletter.mail import build_message, render, subscriber_links
from publishers.newsletter.subscribers import active_subscribers, wants
from publishers.newsletter.tables import NewsletterMail, NewsletterMailItem, Subscriber
from publishers.newsletter.tokens import TokenSigner

logger = logging.getLogger(__name__)

IMMEDIATE = "immediate"
DAILY = "daily"
WEEKLY = "weekly"
DIGEST_FREQUENCIES = (DAILY, WEEKLY)
# How far back a run looks for notices not yet mailed. A digest missed for a day or two still
# carries its notices; older ones are dropped rather than mailed late.
LOOKBACK = {IMMEDIATE: timedelta(days=2), DAILY: timedelta(days=3), WEEKLY: timedelta(days=10)}
MAX_SUBJECT_TITLES = 3

# Statuses of the mail ledger. The docstring of `publishers.newsletter.delivery` describes how a
# mail moves between them.
INTENT = "intent"
HANDED_OVER = "handed-over"
SENT = "sent"
FAILED = "failed"
RETRY = "retry"
# Ledger statuses that block another attempt at the same subscriber, kind and period. An `intent`
# blocks only until it is stale.
FINAL_STATUSES = (INTENT, HANDED_OVER, SENT, FAILED)
# An `intent` row this old has no live run behind it, and its mail is sent again. This is the
# social channels' interval. A live run slower than this loses its claim at the hand-over check
# and does not send, so a short interval costs a resend attempt but never a duplicate.
INTENT_STALE_AFTER = ledger.INTENT_STALE_AFTER


@dataclass
class MailNotice:
    """A notice as shown to one subscriber: in their language where a translation exists."""

    id: str
    title: str
    summary: str
    url: str | None
    published: str | None
    language: str | None
    original_title: str | None
    machine_translation: bool
    translator: str | None


@dataclass
class NoticeGroup:
    region: str
    topic: str
    notices: list[MailNotice] = field(default_factory=list)


@dataclass
class Outgoing:
    """A message ready to go, with the ledger key that must be free before it is sent."""

    subscriber: Subscriber
    kind: str
    period: str
    notice_ids: list[str]
    message: EmailMessage


@dataclass
class Plan:
    """The mails of one run, and the notices it defers to the next daily digest."""

    mails: list[Outgoing] = field(default_factory=list)
    deferred: dict[int, list[str]] = field(default_factory=dict)


def local_day_start(now: datetime, zone: str) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    return datetime.combine(local.date(), time(0), tzinfo=ZoneInfo(zone))


def period_key(frequency: str, now: datetime, zone: str) -> str:
    """Return the ledger period of a digest: the local date, or the ISO week (2026-W10)."""
    local = now.astimezone(ZoneInfo(zone))
    if frequency == WEEKLY:
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.date().isoformat()


def present(view: NoticeView, language: str, zone: str) -> MailNotice:
    """Show `view` in `language` when a finished translation exists, else in its own language."""
    notice = view.notice
    translation = view.translations.get(language) if notice.language != language else None
    if translation is not None:
        return MailNotice(
            id=notice.id,
            title=translation.title,
            summary=translation.summary_text,
            url=notice.url,
            published=view.published_iso(zone),
            language=notice.language,
            original_title=notice.title,
            machine_translation=translation.provider is not None,
            translator=translation.provider,
        )
    return MailNotice(
        id=notice.id,
        title=notice.title,
        summary=notice.summary_text,
        url=notice.url,
        published=view.published_iso(zone),
        language=notice.language,
        original_title=None,
        machine_translation=False,
        translator=None,
    )


def group_notices(
    views: Sequence[NoticeView], subscriber: Subscriber, zone: str
) -> list[NoticeGroup]:
    """Group notices by region, then topic; each notice appears once, under its first match."""
    groups: dict[tuple[str, str], NoticeGroup] = {}
    for view in views:
        region = _first_match(view.regions, subscriber.regions, region=True)
        topic = _first_match(view.topics, subscriber.topics, region=False)
        key = (region, topic)
        if key not in groups:
            groups[key] = NoticeGroup(
                region=region_code_label(region, subscriber.language) if region else "",
                topic=topic_label(topic, subscriber.language) if topic else "",
            )
        groups[key].notices.append(present(view, subscriber.language, zone))
    return [groups[key] for key in sorted(groups)]


def plan_immediate(
    session: Session, settings: Settings, signer: TokenSigner, *, now: datetime
) -> Plan:
    """Plan a mail per new matching notice for each immediate subscriber, up to the daily limit."""
    plan = Plan()
    zone = settings.newsletter_timezone
    candidates = _ready_views(session, since=now - LOOKBACK[IMMEDIATE], until=now)
    day_start = local_day_start(now, zone)
    stale_before = now - INTENT_STALE_AFTER

    for subscriber in active_subscribers(session, [IMMEDIATE]):
        fresh = _unhandled(session, subscriber, candidates, stale_before)
        if not fresh:
            continue
        sent_today = _immediate_count(session, subscriber.id, day_start, stale_before)
        remaining = max(settings.immediate_daily_limit - sent_today, 0)
        for position, view in enumerate(fresh[:remaining]):
            reaches_limit = sent_today + position + 1 == settings.immediate_daily_limit
            plan.mails.append(
                _immediate_mail(settings, signer, subscriber, view, reaches_limit, now=now)
            )
        held = [view.id for view in fresh[remaining:]]
        if held:
            plan.deferred[subscriber.id] = held
            logger.info("immediate deferred subscriber=%s notices=%d", subscriber.id, len(held))
    return plan


def plan_digests(
    session: Session, settings: Settings, signer: TokenSigner, frequency: str, *, now: datetime
) -> Plan:
    """Plan this period's digest for each subscriber with at least one notice to show.

    The daily run also mails immediate subscribers the notices deferred by their daily limit.
    A subscriber who switched from immediate to daily or weekly gets such deferred notices in
    their next digest.
    """
    plan = Plan()
    zone = settings.newsletter_timezone
    period = period_key(frequency, now, zone)
    candidates = _ready_views(session, since=now - LOOKBACK[frequency], until=now)
    frequencies = [frequency, IMMEDIATE] if frequency == DAILY else [frequency]
    stale_before = now - INTENT_STALE_AFTER

    for subscriber in active_subscribers(session, frequencies):
        if _period_taken(session, subscriber.id, frequency, period, stale_before):
            continue
        views = _deferred_views(session, subscriber)
        if subscriber.frequency != IMMEDIATE:
            views += _unhandled(session, subscriber, candidates, stale_before)
        if not views:
            logger.debug("digest empty subscriber=%s period=%s", subscriber.id, period)
            continue
        plan.mails.append(
            _digest_mail(settings, signer, subscriber, frequency, period, views, now=now)
        )
    return plan


def _immediate_mail(
    settings: Settings,
    signer: TokenSigner,
    subscriber: Subscriber,
    view: NoticeView,
    reaches_limit: bool,
    *,
    now: datetime,
) -> Outgoing:
    links = subscriber_links(settings, signer, subscriber)
    shown = present(view, subscriber.language, settings.newsletter_timezone)
    text, html = render(
        subscriber.language,
        "immediate",
        {
            "notice": shown,
            "regions": [region_code_label(code, subscriber.language) for code in view.regions],
            "topics": [topic_label(slug, subscriber.language) for slug in view.topics],
            "reaches_limit": reaches_limit,
            "limit": settings.immediate_daily_limit,
            "links": links,
        },
    )
    message = build_message(
        settings, subscriber, subject=shown.title, text=text, html=html, now=now, links=links
    )
    return Outgoing(subscriber, IMMEDIATE, view.id, [view.id], message)


def _digest_mail(
    settings: Settings,
    signer: TokenSigner,
    subscriber: Subscriber,
    frequency: str,
    period: str,
    views: Sequence[NoticeView],
    *,
    now: datetime,
) -> Outgoing:
    language = subscriber.language
    groups = group_notices(views, subscriber, settings.newsletter_timezone)
    if frequency == DAILY:
        heading = gettext(language, "Daily notices")
    else:
        heading = gettext(language, "Weekly notices")
    titles = [present(view, language, settings.newsletter_timezone).title for view in views]
    titles = titles[:MAX_SUBJECT_TITLES]
    links = subscriber_links(settings, signer, subscriber)
    text, html = render(
        language,
        "digest",
        {
            "heading": heading,
            "period": period,
            "groups": groups,
            "count": len(views),
            "held_back": subscriber.frequency == IMMEDIATE,
            "limit": settings.immediate_daily_limit,
            "links": links,
        },
    )
    subject = f"{heading}: " + " – ".join(titles)
    message = build_message(
        settings, subscriber, subject=subject, text=text, html=html, now=now, links=links
    )
    return Outgoing(subscriber, frequency, period, [view.id for view in views], message)


def _ready_views(session: Session, *, since: datetime, until: datetime) -> list[NoticeView]:
    statement = (
        select(Notice)
        .where(
            Notice.stage == "ready",
            Notice.withdrawn_at.is_(None),
            Notice.first_seen_at >= since,
            Notice.first_seen_at <= until,
        )
        .order_by(Notice.first_seen_at, Notice.id)
    )
    return load_views(session, list(session.scalars(statement)))


def _unhandled(
    session: Session,
    subscriber: Subscriber,
    candidates: Sequence[NoticeView],
    stale_before: datetime,
) -> list[NoticeView]:
    """Matching notices first seen after confirmation that the subscriber has no item row for.

    Item rows of a mail whose `intent` is stale do not count, because that mail is sent again.
    """
    confirmed = subscriber.confirmed_at
    matching = [
        view
        for view in candidates
        if (confirmed is None or view.notice.first_seen_at >= confirmed)
        and wants(subscriber, view.regions, view.topics)
    ]
    if not matching:
        return []
    handled = set(
        session.scalars(
            select(NewsletterMailItem.notice_id)
            .outerjoin(NewsletterMail, NewsletterMail.id == NewsletterMailItem.mail_id)
            .where(
                NewsletterMailItem.subscriber_id == subscriber.id,
                NewsletterMailItem.notice_id.in_([view.id for view in matching]),
                or_(NewsletterMailItem.mail_id.is_(None), _blocks_resend(stale_before)),
            )
        )
    )
    return [view for view in matching if view.id not in handled]


def _deferred_views(session: Session, subscriber: Subscriber) -> list[NoticeView]:
    statement = (
        select(Notice)
        .join(NewsletterMailItem, NewsletterMailItem.notice_id == Notice.id)
        .where(
            NewsletterMailItem.subscriber_id == subscriber.id,
            NewsletterMailItem.state == "deferred",
            Notice.stage == "ready",
            Notice.withdrawn_at.is_(None),
        )
        .order_by(Notice.first_seen_at, Notice.id)
    )
    return load_views(session, list(session.scalars(statement)))


def _immediate_count(
    session: Session, subscriber_id: int, day_start: datetime, stale_before: datetime
) -> int:
    statement = select(func.count()).where(
        NewsletterMail.subscriber_id == subscriber_id,
        NewsletterMail.kind == IMMEDIATE,
        or_(
            NewsletterMail.status.in_((HANDED_OVER, SENT)),
            _live_intent(stale_before),
        ),
        NewsletterMail.created_at >= day_start,
    )
    return int(session.scalar(statement) or 0)


def _period_taken(
    session: Session, subscriber_id: int, kind: str, period: str, stale_before: datetime
) -> bool:
    statement = select(func.count()).where(
        NewsletterMail.subscriber_id == subscriber_id,
        NewsletterMail.kind == kind,
        NewsletterMail.period == period,
        _blocks_resend(stale_before),
    )
    return bool(session.scalar(statement))


def _blocks_resend(stale_before: datetime) -> ColumnElement[bool]:
    """Return the condition that a ledger row keeps its mail from being planned again."""
    return or_(
        NewsletterMail.status.in_([status for status in FINAL_STATUSES if status != INTENT]),
        _live_intent(stale_before),
    )


def _live_intent(stale_before: datetime) -> ColumnElement[bool]:
    return and_(NewsletterMail.status == INTENT, NewsletterMail.updated_at >= stale_before)


def _first_match(tags: Sequence[str], chosen: Sequence[str], *, region: bool) -> str:
    for tag in tags:
        if not chosen:
            return tag
        for choice in chosen:
            if tag == choice or (
                region and (tag.startswith(choice + "-") or choice.startswith(tag + "-"))
            ):
                return tag
    return tags[0] if tags else ""
