"""Per-generation summaries of dev fitness, so the job page reads one row per generation instead
of aggregating every evaluation of the job.

Existing jobs get a stale row for each generation they have: readers aggregate stale generations
as before, and a resumed job computes them at its next generation end.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

ID = sa.String(32)


def upgrade() -> None:
    op.create_table(
        "generation_summaries",
        sa.Column("job_id", ID, primary_key=True),
        sa.Column("generation", sa.Integer(), primary_key=True),
        sa.Column("stale", sa.Boolean(), nullable=False),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("best", sa.Float(), nullable=True),
        sa.Column("mean", sa.Float(), nullable=True),
        sa.Column("best_candidate_id", ID, nullable=True),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="CASCADE"),
    )
    # Every generation that has candidates must have a row (see storage.models); a stale one
    # stands for "aggregate me".
    summaries = sa.table(
        "generation_summaries", sa.column("job_id"), sa.column("generation"), sa.column("stale")
    )
    candidates = sa.table("candidates", sa.column("job_id"), sa.column("generation"))
    existing = sa.select(candidates.c.job_id, candidates.c.generation, sa.true()).distinct()
    op.execute(summaries.insert().from_select(["job_id", "generation", "stale"], existing))


def downgrade() -> None:
    op.drop_table("generation_summaries")
