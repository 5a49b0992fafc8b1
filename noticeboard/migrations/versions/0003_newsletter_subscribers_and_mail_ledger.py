"""newsletter subscribers and mail ledger

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import noticeboard.store.types

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "newsletter_subscriber",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("regions", sa.JSON(), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("frequency", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column(
            "confirmed_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "unsubscribed_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "suspended_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("key"),
    )
    with op.batch_alter_table("newsletter_subscriber", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_newsletter_subscriber_status"), ["status"], unique=False
        )

    op.create_table(
        "newsletter_mail",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("period", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notice_ids", sa.JSON(), nullable=False),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["newsletter_subscriber.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "kind", "period", name="uq_newsletter_mail"),
    )
    with op.batch_alter_table("newsletter_mail", schema=None) as batch_op:
        batch_op.create_index(
            "ix_newsletter_mail_subscriber_created", ["subscriber_id", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_newsletter_mail_status"), ["status"], unique=False)

    op.create_table(
        "newsletter_mail_item",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("notice_id", sa.String(length=64), nullable=False),
        sa.Column("mail_id", sa.Integer(), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["mail_id"], ["newsletter_mail.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["newsletter_subscriber.id"], ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("subscriber_id", "notice_id", name="uq_newsletter_mail_item"),
    )

    op.create_table(
        "newsletter_subscription_request",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", noticeboard.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("newsletter_subscription_request", schema=None) as batch_op:
        batch_op.create_index(
            "ix_newsletter_request_key", ["scope", "key_hash", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("newsletter_subscription_request", schema=None) as batch_op:
        batch_op.drop_index("ix_newsletter_request_key")
    op.drop_table("newsletter_subscription_request")
    op.drop_table("newsletter_mail_item")
    with op.batch_alter_table("newsletter_mail", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_newsletter_mail_status"))
        batch_op.drop_index("ix_newsletter_mail_subscriber_created")
    op.drop_table("newsletter_mail")
    with op.batch_alter_table("newsletter_subscriber", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_newsletter_subscriber_status"))
    op.drop_table("newsletter_subscriber")
