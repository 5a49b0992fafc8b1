"""normalisation

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa  # noqa: F401
from alembic import op  # noqa: F401

import noticeboard.store.types  # noqa: F401

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The normalisation stage uses columns that 0001 created (notice.simhash, variant_group,
    # duplicate_group, last_listed_fetch, published_fallback), so it changes no schema.
    pass


def downgrade() -> None:
    pass
