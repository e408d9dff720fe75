"""Per-example outcomes keep the judge's verdict (metric judge): its scores and reasoning.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("outcomes", sa.Column("judge", sa.JSON().with_variant(JSONB(), "postgresql"),
                                        nullable=True))


def downgrade() -> None:
    op.drop_column("outcomes", "judge")
