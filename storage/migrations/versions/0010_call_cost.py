"""What each model call cost in US dollars, by the model's price (0 for a cache hit).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("llm_calls", sa.Column("usd", sa.Float(), nullable=False, server_default="0"))


def downgrade() -> None:
    op.drop_column("llm_calls", "usd")
