"""Checkpoints and paid responses keep their JSON as written, key order included.

PostgreSQL's JSONB stores an object's keys in an order of its own. A checkpoint restores dicts
whose order decides ties (candidates of equal score are ranked in the order they were scored),
and a paid response's label log-probabilities decide a tie by order too, so a job resumed from
JSONB could rank equals differently from the run it continues. ``json`` keeps the text as
written; neither column is ever queried by content. SQLite keeps JSON as text anyway.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = (("checkpoints", "state"), ("responses", "response"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=sa.JSON(), existing_type=postgresql.JSONB(),
                        postgresql_using=f"{column}::text::json")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in _COLUMNS:
        op.alter_column(table, column, type_=postgresql.JSONB(), existing_type=sa.JSON(),
                        postgresql_using=f"{column}::jsonb")
