"""notice grouping indexes

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Grouping finds language versions by guid and URL across sources and near-duplicates by
    # first-seen time; without these indexes each new notice scanned the whole notice table.
    with op.batch_alter_table("notice") as batch:
        batch.create_index("ix_notice_guid", ["guid"], unique=False)
        batch.create_index("ix_notice_canonical_url", ["canonical_url"], unique=False)
        batch.create_index("ix_notice_first_seen", ["first_seen_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("notice") as batch:
        batch.drop_index("ix_notice_first_seen")
        batch.drop_index("ix_notice_canonical_url")
        batch.drop_index("ix_notice_guid")
