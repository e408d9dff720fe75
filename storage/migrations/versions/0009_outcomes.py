"""Per-example outcomes of the prompts scored in the final phase, so that any two can be paired.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "outcomes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("candidate_id", ID, nullable=False),
        sa.Column("split", sa.String(32), nullable=False),
        sa.Column("example_id", sa.String(128), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=False),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["candidate_id"], ["candidates.id"], ondelete="CASCADE"),
    )
    op.create_index("ix_outcomes_candidate_split", "outcomes", ["candidate_id", "split"])


def downgrade() -> None:
    op.drop_index("ix_outcomes_candidate_split", table_name="outcomes")
    op.drop_table("outcomes")
