"""Generation summaries also keep the number of distinct texts and the calls and tokens paid for
by the end of the generation, so the job page reads neither all candidates nor all events.

Existing rows are filled in: distinct texts from the candidates, totals from the jobs' stored
GenerationDone events (the last one of each generation, as a resumed job may repeat one).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_BATCH = 1000


def upgrade() -> None:
    with op.batch_alter_table("generation_summaries") as batch:
        batch.add_column(sa.Column("distinct_texts", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("calls_total", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("tokens_total", sa.BigInteger(), nullable=True))
    summaries = sa.table(
        "generation_summaries",
        sa.column("job_id"),
        sa.column("generation"),
        sa.column("distinct_texts"),
        sa.column("calls_total"),
        sa.column("tokens_total"),
    )
    candidates = sa.table(
        "candidates", sa.column("job_id"), sa.column("generation"), sa.column("text")
    )
    distinct = (
        sa.select(sa.func.count(sa.distinct(candidates.c.text)))
        .where(
            candidates.c.job_id == summaries.c.job_id,
            candidates.c.generation == summaries.c.generation,
        )
        .scalar_subquery()
    )
    op.execute(summaries.update().values(distinct_texts=distinct))

    payload = sa.column("payload", sa.JSON().with_variant(JSONB(), "postgresql"))
    events = sa.table("events", sa.column("id"), sa.column("job_id"), sa.column("kind"), payload)
    conn = op.get_bind()
    totals: dict[tuple[str, int], tuple[int, int]] = {}
    rows = conn.execute(
        sa.select(events.c.job_id, events.c.payload)
        .where(events.c.kind == "GenerationDone")
        .order_by(events.c.id)
    )
    for job_id, payload in rows:  # later events of a generation replace earlier ones
        totals[(job_id, int(payload["generation"]))] = (
            int(payload["calls"]), int(payload["tokens"]))
    update = (
        summaries.update()
        .where(
            summaries.c.job_id == sa.bindparam("j"),
            summaries.c.generation == sa.bindparam("g"),
        )
        .values(calls_total=sa.bindparam("c"), tokens_total=sa.bindparam("t"))
    )
    items = [{"j": j, "g": g, "c": c, "t": t} for (j, g), (c, t) in totals.items()]
    for start in range(0, len(items), _BATCH):
        conn.execute(update, items[start : start + _BATCH])


def downgrade() -> None:
    with op.batch_alter_table("generation_summaries") as batch:
        batch.drop_column("tokens_total")
        batch.drop_column("calls_total")
        batch.drop_column("distinct_texts")
