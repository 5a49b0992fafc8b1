"""Mails about the subscription itself: the confirmation link and the link to manage it.

These are the only mails a pending subscriber can get. They go through the mail ledger too
(kind `confirmation` or `manage`, period = request time), so operators see them.
"""

from __future__ import annotations

import logging
from datetime import datetime
from email.message import EmailMessage

from noticeboard.settings import Settings
from noticeboard.store import Store
from publishers.newsletter.delivery import MailReport, deliver_plan
from publishers.newsletter.digests import Outgoing, Plan
from publishers.newsletter.i18n import gettext
from publishers.newsletter.mail import (
    build_message,
    confirmation_url,
    render,
    subscriber_links,
)
from publishers.newsletter.sender import SmtpSender
from publishers.newsletter.subscribers import ACTIVE, PENDING
from publishers.newsletter.tables import Subscriber
from publishers.newsletter.tokens import TokenSigner

logger = logging.getLogger(__name__)


def send_confirmation(
    store: Store,
    settings: Settings,
    subscriber: Subscriber,
    *,
    now: datetime,
    sender: SmtpSender | None = None,
) -> MailReport:
    """Mail a pending subscriber the signed link that confirms the subscription."""
    if subscriber.status != PENDING:
        raise ValueError(f"subscriber {subscriber.id} is {subscriber.status}, not pending")
    signer = TokenSigner.from_settings(settings)
    language = subscriber.language
    text, html = render(
        language, "confirm", {"confirm_url": confirmation_url(settings, signer, subscriber)}
    )
    message = build_message(
        settings,
        subscriber,
        subject=gettext(language, "Confirm your Noticeboard subscription"),
        text=text,
        html=html,
        now=now,
    )
    return _send_one(store, settings, subscriber, "confirmation", message, now=now, sender=sender)


def send_manage_link(
    store: Store,
    settings: Settings,
    subscriber: Subscriber,
    *,
    now: datetime,
    sender: SmtpSender | None = None,
) -> MailReport:
    """Mail an active subscriber who signed up again the links to their preferences."""
    if subscriber.status != ACTIVE:
        raise ValueError(f"subscriber {subscriber.id} is {subscriber.status}, not active")
    signer = TokenSigner.from_settings(settings)
    language = subscriber.language
    links = subscriber_links(settings, signer, subscriber)
    text, html = render(language, "manage", {"links": links})
    message = build_message(
        settings,
        subscriber,
        subject=gettext(language, "Your Noticeboard subscription"),
        text=text,
        html=html,
        now=now,
        links=links,
    )
    return _send_one(store, settings, subscriber, "manage", message, now=now, sender=sender)


def _send_one(
    store: Store,
    settings: Settings,
    subscriber: Subscriber,
    kind: str,
    message: EmailMessage,
    *,
    now: datetime,
    sender: SmtpSender | None,
) -> MailReport:
    plan = Plan(mails=[Outgoing(subscriber, kind, now.isoformat(), [], message)])
    active = sender or SmtpSender(settings)
    try:
        return deliver_plan(store, plan, active, now=now, statuses=(subscriber.status,))
    finally:
        if sender is None:
            active.close()
