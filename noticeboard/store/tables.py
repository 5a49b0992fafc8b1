"""The database schema, as SQLAlchemy 2 declarative classes.

Alembic migrations in noticeboard/migrations create these tables; a test checks that the
migrations and these classes agree. Every time column is `UTCDateTime`, so values read back are
aware and in UTC on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from noticeboard.store.types import UTCDateTime


class Base(DeclarativeBase):
    """Declarative base of every table."""


class SourceState(Base):
    """The state of a catalog source that the pipeline keeps between runs."""

    __tablename__ = "source_state"

    source_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    body_hash: Mapped[str | None] = mapped_column(String(64))
    last_status: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    last_fetch_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_new_item_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_fetch_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    successful_fetches: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    listing: Mapped[list[str] | None] = mapped_column(JSON)
    warnings: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    items_last_fetch: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    alerted_status: Mapped[str | None] = mapped_column(String(32))
    mean_interval_seconds: Mapped[float | None] = mapped_column(Float)
    # Per URL of the source: etag, last_modified, body_hash and the listing keys of its last read.
    url_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class HostBudget(Base):
    """The next moment a host may be asked again, shared by every process and worker."""

    __tablename__ = "host_budget"

    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    next_request_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class RawItem(Base):
    """An item as a connector found it, waiting for processing.

    `payload_hash` covers the payload without the guid, so a re-fetch of the same item, or a site
    that regenerates guids, adds no row.
    """

    __tablename__ = "raw_item"
    __table_args__ = (UniqueConstraint("source_id", "payload_hash", name="uq_raw_item_payload"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    item_key: Mapped[str] = mapped_column(String(64), nullable=False)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, nullable=False)
    payload_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="pending", nullable=False, index=True)
    error: Mapped[str | None] = mapped_column(Text)


class Notice(Base):
    """A normalised notice; its latest version's content lives here."""

    __tablename__ = "notice"
    __table_args__ = (
        Index("ix_notice_source_guid", "source_id", "guid"),
        Index("ix_notice_source_url", "source_id", "canonical_url"),
        Index("ix_notice_published", "published_at"),
        # Grouping looks notices up by guid and URL across sources, and by first-seen time.
        Index("ix_notice_guid", "guid"),
        Index("ix_notice_canonical_url", "canonical_url"),
        Index("ix_notice_first_seen", "first_seen_at"),
    )

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    source_id: Mapped[str] = mapped_column(String(64), nullable=False)
    guid: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    canonical_url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    summary_html: Mapped[str] = mapped_column(Text, default="", nullable=False)
    summary_text: Mapped[str] = mapped_column(Text, default="", nullable=False)
    body_html: Mapped[str] = mapped_column(Text, default="", nullable=False)
    body_text: Mapped[str] = mapped_column(Text, default="", nullable=False)

    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_raw: Mapped[str | None] = mapped_column(Text)
    published_precision: Mapped[str] = mapped_column(String(16), default="none", nullable=False)
    published_zone_assumed: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    published_fallback: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
    # The source's IANA zone, so a date-only value is shown as the day the source printed.
    source_timezone: Mapped[str | None] = mapped_column(String(64))
    # The publishing authority's name from the catalog, kept so feeds name it under any catalog.
    authority: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    declared_language: Mapped[str | None] = mapped_column(String(8))
    language: Mapped[str | None] = mapped_column(String(8))
    language_confidence: Mapped[float | None] = mapped_column(Float)
    language_method: Mapped[str | None] = mapped_column(String(16))

    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    version: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    alternates: Mapped[dict[str, str] | None] = mapped_column(JSON)
    variant_group: Mapped[str | None] = mapped_column(String(64), index=True)
    duplicate_group: Mapped[str | None] = mapped_column(String(64), index=True)
    simhash: Mapped[str | None] = mapped_column(String(16))

    stage: Mapped[str] = mapped_column(String(16), default="normalised", nullable=False, index=True)
    last_listed_fetch: Mapped[int | None] = mapped_column(Integer)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class NoticeVersion(Base):
    """Every material version of a notice, with the diff from the previous one."""

    __tablename__ = "notice_version"
    __table_args__ = (UniqueConstraint("notice_id", "version", name="uq_notice_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    title: Mapped[str] = mapped_column(Text, nullable=False)
    body_text: Mapped[str] = mapped_column(Text, nullable=False)
    content_hash: Mapped[str] = mapped_column(String(64), nullable=False)
    diff: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class NoticeEvent(Base):
    """The outbox: created, updated and withdrawn events that publishers consume."""

    __tablename__ = "notice_event"
    __table_args__ = (UniqueConstraint("notice_id", "version", "kind", name="uq_notice_event"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    detail: Mapped[str | None] = mapped_column(Text)


class Translation(Base):
    """A notice's title, summary and body in one target language, or why it is still missing."""

    __tablename__ = "translation"
    __table_args__ = (UniqueConstraint("notice_id", "language", name="uq_translation"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"), nullable=False)
    language: Mapped[str] = mapped_column(String(8), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    provider: Mapped[str | None] = mapped_column(String(32))
    title: Mapped[str | None] = mapped_column(Text)
    summary_html: Mapped[str | None] = mapped_column(Text)
    summary_text: Mapped[str | None] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    body_text: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class TranslationMemory(Base):
    """Provider output keyed by text hash, language pair and provider, so no text is sent twice."""

    __tablename__ = "translation_memory"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), nullable=False)
    source_language: Mapped[str] = mapped_column(String(8), nullable=False)
    target_language: Mapped[str] = mapped_column(String(8), nullable=False)
    translated: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)


class NoticeTag(Base):
    """A region or topic tag of a notice, with the rule that produced it."""

    __tablename__ = "notice_tag"
    __table_args__ = (
        UniqueConstraint("notice_id", "kind", "value", name="uq_notice_tag"),
        Index("ix_notice_tag_value", "kind", "value"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    notice_id: Mapped[str] = mapped_column(ForeignKey("notice.id", ondelete="CASCADE"), nullable=False)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    value: Mapped[str] = mapped_column(String(64), nullable=False)
    rule: Mapped[str] = mapped_column(String(32), nullable=False)
    detail: Mapped[str] = mapped_column(Text, default="", nullable=False)


class Delivery(Base):
    """The delivery ledger: one row per channel, notice and version.

    A row is written with status `intent` before the remote call, so a crash between the call and
    the record is found and reconciled on the next run instead of posting again.
    """

    __tablename__ = "delivery"
    __table_args__ = (UniqueConstraint("channel", "notice_id", "version", name="uq_delivery"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(64), nullable=False)
    notice_id: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(64), nullable=False)
    remote_id: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
