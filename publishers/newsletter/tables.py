"""Tables of the newsletter: subscribers, the mail ledger and subscription request counts.

The mail ledger (`newsletter_mail`) has one row per subscriber, kind and period. Its `status`
goes from `intent` to `handed-over` just before the SMTP server can deliver the message, then to
`sent`, `failed` or `retry`. `publishers.newsletter.delivery` explains why this delivers each
mail once, and the two cases where a mail counted as delivered may be lost.
`newsletter_mail_item` records which notices each subscriber has been sent (or has waiting for the
next daily digest), so no notice reaches the same subscriber twice.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from noticeboard.store.tables import Base
from noticeboard.store.types import UTCDateTime


class Subscriber(Base):
    """A newsletter subscriber and their preferences.

    `key` is a random public id used in signed links instead of the row id, so a link never points
    at a later subscriber that reuses a deleted row's id. Empty `regions` or `topics` mean all.
    """

    __tablename__ = "newsletter_subscriber"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(32), nullable=False, unique=True)
    email: Mapped[str] = mapped_column(String(320), nullable=False, unique=True)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    regions: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    topics: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    frequency: Mapped[str] = mapped_column(String(16), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    suspended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)


class NewsletterMail(Base):
    """The mail ledger: one row per subscriber, kind and period, written before sending.

    `period` is the notice id for an immediate mail, the local date for a daily digest, the ISO
    week for a weekly digest and the request time for a confirmation or link mail.
    """

    __tablename__ = "newsletter_mail"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "kind", "period", name="uq_newsletter_mail"),
        Index("ix_newsletter_mail_subscriber_created", "subscriber_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("newsletter_subscriber.id", ondelete="CASCADE"), nullable=False
    )
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    period: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    notice_ids: Mapped[list[str]] = mapped_column(JSON, nullable=False)
    message_id: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class NewsletterMailItem(Base):
    """A notice sent to a subscriber (`mailed`) or held for their next daily digest (`deferred`)."""

    __tablename__ = "newsletter_mail_item"
    __table_args__ = (
        UniqueConstraint("subscriber_id", "notice_id", name="uq_newsletter_mail_item"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("newsletter_subscriber.id", ondelete="CASCADE"), nullable=False
    )
    notice_id: Mapped[str] = mapped_column(String(64), nullable=False)
    mail_id: Mapped[int | None] = mapped_column(
        ForeignKey("newsletter_mail.id", ondelete="SET NULL")
    )
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class SubscriptionRequest(Base):
    """One subscription request, counted for rate limits.

    `key_hash` is a keyed hash of the address or client address, so the table contains no personal
    data in clear.
    """

    __tablename__ = "newsletter_subscription_request"
    __table_args__ = (Index("ix_newsletter_request_key", "scope", "key_hash", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    scope: Mapped[str] = mapped_column(String(16), nullable=False)
    key_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
