"""Leases: which process may run a job, under which epoch (a fencing token), until when; and
when a control request was made, so one that is not honoured can be enforced.

``job_leases`` keeps every claim (job, epoch, holder, time): an epoch is handed out once, which
its primary key makes structural. Running jobs from before have no lease: they get epoch 0 and
an expiry of their last heartbeat, so a reaper takes them over like any silent job.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lease_holder", sa.String(128), nullable=True))
        batch.add_column(
            sa.Column("lease_epoch", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("control_at", sa.DateTime(timezone=True), nullable=True))
    jobs = sa.table(
        "jobs",
        sa.column("status"),
        sa.column("heartbeat_at", sa.DateTime(timezone=True)),
        sa.column("lease_expires_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        jobs.update()
        .where(jobs.c.status == "running")
        .values(lease_expires_at=jobs.c.heartbeat_at)
    )
    op.create_table(
        "job_leases",
        sa.Column(
            "job_id", sa.String(32), sa.ForeignKey("jobs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("job_id", "epoch"),
    )
    op.create_index("ix_jobs_lease_holder", "jobs", ["lease_holder"])


def downgrade() -> None:
    op.drop_index("ix_jobs_lease_holder", "jobs")
    op.drop_table("job_leases")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("control_at")
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_epoch")
        batch.drop_column("lease_holder")
