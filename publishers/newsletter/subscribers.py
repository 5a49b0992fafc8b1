"""Subscriber records: sign-up with double opt-in, preferences, leaving and bounce suspension.

Statuses: `pending` (signed up, not confirmed: only the confirmation mail may be sent), `active`,
`unsubscribed` and `suspended` (the address bounced permanently). Addresses are validated and
normalised with email-validator, and the normalised address is unique, so signing up twice
finds the same subscriber. No function here logs an address: logs name the subscriber id.
"""

from __future__ import annotations

import logging
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from publishers.newsletter.tables import NewsletterMail, NewsletterMailItem, Subscriber
from publishers.newsletter.vocabulary import (
    DEFAULT_LANGUAGE,
    check_frequency,
    check_language,
    check_regions,
    check_topics,
)

logger = logging.getLogger(__name__)

PENDING = "pending"
ACTIVE = "active"
UNSUBSCRIBED = "unsubscribed"
SUSPENDED = "suspended"


class InvalidAddressError(ValueError):
    """An e-mail address is malformed; the message gives the reason but not the address."""


@dataclass(frozen=True)
class Preferences:
    """A subscriber's choice of language, regions, topics and frequency."""

    language: str = DEFAULT_LANGUAGE
    regions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    frequency: str = "daily"

    @classmethod
    def checked(
        cls,
        *,
        language: str,
        regions: Iterable[str],
        topics: Iterable[str],
        frequency: str,
    ) -> Preferences:
        """Validate each choice and raise `PreferenceError` naming the first invalid one."""
        return cls(
            language=check_language(language),
            regions=tuple(check_regions(regions)),
            topics=tuple(check_topics(topics)),
            frequency=check_frequency(frequency),
        )


@dataclass(frozen=True)
class SignUp:
    """The result of a subscription request: the subscriber and whether a mail should follow."""

    subscriber: Subscriber
    created: bool


def normalise_address(address: str) -> str:
    """Return the normalised ASCII address or raise `InvalidAddressError`.

    email-validator normalises Unicode and the domain, and an internationalised domain is kept
    in its ASCII (IDNA) form, so the same mailbox is stored once and fits an ASCII `To` header.
    A non-ASCII local part is rejected, because it needs SMTPUTF8, which the sender does not
    use. The local part is lower-cased too: RFC 5321 lets a server treat it case-sensitively,
    but mailbox providers do not, and "Anna@" and "anna@" signing up separately would get every
    mail twice.
    """
    try:
        result = validate_email(address.strip(), check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as error:
        raise InvalidAddressError(f"the e-mail address is invalid: {error}") from error
    return str(result.ascii_email or result.normalized).lower()


def find_by_address(session: Session, address: str) -> Subscriber | None:
    return session.scalars(select(Subscriber).where(Subscriber.email == address)).one_or_none()


def find_by_key(session: Session, key: str) -> Subscriber | None:
    return session.scalars(select(Subscriber).where(Subscriber.key == key)).one_or_none()


def sign_up(session: Session, address: str, preferences: Preferences, *, now: datetime) -> SignUp:
    """Create a pending subscriber, or return the existing one for the same normalised address.

    An existing subscriber who had left or never confirmed gets the new preferences and goes back
    to `pending`, so they receive a fresh confirmation mail. An active subscriber keeps their
    preferences: the caller sends them a link to manage them instead. A suspended address stays
    suspended, because its mailbox rejected mail permanently.
    """
    normalised = normalise_address(address)
    existing = find_by_address(session, normalised)
    if existing is None:
        subscriber = Subscriber(
            key=secrets.token_hex(16),
            email=normalised,
            status=PENDING,
            created_at=now,
            **_preference_columns(preferences),
        )
        session.add(subscriber)
        session.flush()
        logger.info("subscriber created subscriber=%s", subscriber.id)
        return SignUp(subscriber, created=True)

    if existing.status in (PENDING, UNSUBSCRIBED):
        _apply(existing, preferences)
        existing.status = PENDING
        existing.unsubscribed_at = None
    logger.info("subscriber found subscriber=%s status=%s", existing.id, existing.status)
    return SignUp(existing, created=False)


def confirm(subscriber: Subscriber, *, now: datetime) -> bool:
    """Activate a pending subscriber; return False when there was nothing to confirm."""
    if subscriber.status != PENDING:
        return False
    subscriber.status = ACTIVE
    subscriber.confirmed_at = now
    logger.info("subscriber confirmed subscriber=%s", subscriber.id)
    return True


def update_preferences(subscriber: Subscriber, preferences: Preferences) -> None:
    _apply(subscriber, preferences)
    logger.info(
        "preferences updated subscriber=%s frequency=%s", subscriber.id, subscriber.frequency
    )


def unsubscribe(subscriber: Subscriber, *, now: datetime) -> bool:
    """Stop all mail to the subscriber; repeating it changes nothing and returns False."""
    if subscriber.status in (UNSUBSCRIBED, SUSPENDED):
        return False
    subscriber.status = UNSUBSCRIBED
    subscriber.unsubscribed_at = now
    logger.info("subscriber unsubscribed subscriber=%s", subscriber.id)
    return True


def suspend(subscriber: Subscriber, reason: str, *, now: datetime) -> None:
    """Stop mail to an address that the receiving server rejected permanently."""
    subscriber.status = SUSPENDED
    subscriber.suspended_at = now
    subscriber.last_error = reason
    logger.warning("subscriber suspended subscriber=%s reason=%s", subscriber.id, reason)


def remove(session: Session, subscriber: Subscriber) -> None:
    """Delete the subscriber with their ledger rows, so no personal data remains."""
    subscriber_id = subscriber.id
    session.execute(
        delete(NewsletterMailItem).where(NewsletterMailItem.subscriber_id == subscriber_id)
    )
    session.execute(delete(NewsletterMail).where(NewsletterMail.subscriber_id == subscriber_id))
    session.delete(subscriber)
    logger.info("subscriber removed subscriber=%s", subscriber_id)


def active_subscribers(session: Session, frequencies: Sequence[str]) -> list[Subscriber]:
    statement = (
        select(Subscriber)
        .where(Subscriber.status == ACTIVE, Subscriber.frequency.in_(list(frequencies)))
        .order_by(Subscriber.id)
    )
    return list(session.scalars(statement))


def count_by_preference(session: Session) -> dict[str, Counter[str]]:
    """Count active subscribers per chosen region, topic, frequency and language.

    A subscriber who chose no region (or no topic) is counted under `*`, meaning all.
    """
    counts: dict[str, Counter[str]] = {
        "region": Counter(),
        "topic": Counter(),
        "frequency": Counter(),
        "language": Counter(),
    }
    for subscriber in active_subscribers(session, ("immediate", "daily", "weekly")):
        counts["region"].update(subscriber.regions or ["*"])
        counts["topic"].update(subscriber.topics or ["*"])
        counts["frequency"][subscriber.frequency] += 1
        counts["language"][subscriber.language] += 1
    return counts


def wants(subscriber: Subscriber, regions: Sequence[str], topics: Sequence[str]) -> bool:
    """Tell whether a notice with these tags matches the subscriber's preferences.

    A country code chosen by the subscriber covers its subdivisions, and a notice tagged with a
    whole country matches subscribers of any of its subdivisions.
    """
    return _regions_match(subscriber.regions, regions) and _topics_match(subscriber.topics, topics)


def _regions_match(chosen: Sequence[str], tagged: Sequence[str]) -> bool:
    if not chosen:
        return True
    for choice in chosen:
        for tag in tagged:
            if tag == choice or tag.startswith(choice + "-") or choice.startswith(tag + "-"):
                return True
    return False


def _topics_match(chosen: Sequence[str], tagged: Sequence[str]) -> bool:
    return not chosen or bool(set(chosen) & set(tagged))


def _preference_columns(preferences: Preferences) -> dict[str, object]:
    return {
        "language": preferences.language,
        "regions": list(preferences.regions),
        "topics": list(preferences.topics),
        "frequency": preferences.frequency,
    }


def _apply(subscriber: Subscriber, preferences: Preferences) -> None:
    for name, value in _preference_columns(preferences).items():
        setattr(subscriber, name, value)
