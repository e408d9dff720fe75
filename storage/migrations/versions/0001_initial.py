"""Initial schema: jobs, candidates, lineage, evaluations, per-example results, LLM calls,
checkpoints and events.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written out by hand rather than from the models: a migration is a frozen snapshot, and must not
change when the models do.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ID = sa.String(32)


def _ts(name: str, nullable: bool = False) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _job_fk(column: str = "job_id") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["jobs.id"], ondelete="CASCADE")


def _candidate_fk(column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["candidates.id"], ondelete="CASCADE")


def upgrade() -> None:
    op.create_table(
        "jobs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("task", sa.String(255), nullable=False),
        sa.Column("algorithm", sa.String(64), nullable=False),
        sa.Column("spec", JSON, nullable=False),
        sa.Column("seed", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("best_candidate_id", ID, nullable=True),
        sa.Column("stats", JSON, nullable=False),
        _ts("created_at"),
        _ts("started_at", nullable=True),
        _ts("ended_at", nullable=True),
        _ts("heartbeat_at", nullable=True),
        sa.Column("owner", sa.String(64), nullable=True),
    )
    op.create_index("ix_jobs_created_at", "jobs", ["created_at"])
    op.create_index("ix_jobs_status_created_at", "jobs", ["status", "created_at"])

    op.create_table(
        "candidates",
        sa.Column("id", ID, primary_key=True),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("island", sa.Integer(), nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("meta", JSON, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        _ts("created_at"),
        _job_fk(),
    )
    op.create_index("ix_candidates_job_generation", "candidates", ["job_id", "generation"])
    op.create_index("ix_candidates_job_seq", "candidates", ["job_id", "seq"])

    op.create_table(
        "lineage",
        sa.Column("child_id", ID, primary_key=True),
        sa.Column("position", sa.Integer(), primary_key=True),
        sa.Column("parent_id", ID, nullable=False),
        sa.Column("operator", sa.String(64), nullable=False),
        sa.Column("job_id", ID, nullable=False),
        _candidate_fk("child_id"),
        _candidate_fk("parent_id"),
        _job_fk(),
    )
    op.create_index("ix_lineage_parent_id", "lineage", ["parent_id"])

    op.create_table(
        "evaluations",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("candidate_id", ID, nullable=False),
        sa.Column("split", sa.String(32), nullable=False),
        sa.Column("subset", sa.String(64), nullable=True),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=True),
        _ts("created_at"),
        _job_fk(),
        _candidate_fk("candidate_id"),
    )
    op.create_index("ix_evaluations_job_split_value", "evaluations", ["job_id", "split", "value"])
    op.create_index("ix_evaluations_candidate_id", "evaluations", ["candidate_id"])

    op.create_table(
        "example_results",
        sa.Column("evaluation_id", AUTO_ID, primary_key=True),
        sa.Column("example_id", sa.String(128), primary_key=True),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("prediction", sa.Text(), nullable=True),
        sa.Column("failure", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["evaluation_id"], ["evaluations.id"], ondelete="CASCADE"),
    )

    op.create_table(
        "llm_calls",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("candidate_id", ID, nullable=True),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.Column("cached", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        _ts("created_at"),
        _job_fk(),
    )
    op.create_index("ix_llm_calls_job_id", "llm_calls", ["job_id"])

    op.create_table(
        "checkpoints",
        sa.Column("job_id", ID, primary_key=True),
        sa.Column("generation", sa.Integer(), primary_key=True),
        sa.Column("state", JSON, nullable=False),
        _ts("created_at"),
        _job_fk(),
    )

    op.create_table(
        "events",
        sa.Column("id", AUTO_ID, primary_key=True, autoincrement=True),
        sa.Column("job_id", ID, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        _ts("created_at"),
        _job_fk(),
    )
    op.create_index("ix_events_job_id_id", "events", ["job_id", "id"])


def downgrade() -> None:
    for table in (
        "events",
        "checkpoints",
        "llm_calls",
        "example_results",
        "evaluations",
        "lineage",
        "candidates",
        "jobs",
    ):
        op.drop_table(table)
