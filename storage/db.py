"""Engines and schema upgrades: SQLite tuned for one writer and many readers, Postgres as is."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import URL, Connection, make_url

from evo.paths import default_database_url

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000
# Any constant works; it only has to be the same for every process migrating one database.
_PG_MIGRATION_LOCK = 0x45564F00

# Execution option marking connections that will write (see ``_sqlite_begin``).
WRITE_OPTION = "evo_write"
# Execution option asking psycopg for results in binary format (see ``_psycopg_binary``).
BINARY_OPTION = "evo_binary"


def resolve_url(url: str | None) -> URL:
    parsed = make_url(url or os.environ.get("EVO_DATABASE_URL") or default_database_url())
    if parsed.drivername == "postgresql":
        # psycopg 3 is the driver the project ships; the bare scheme would pick psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: URL) -> Engine:
    engine = create_engine(url, pool_pre_ping=url.get_backend_name() != "sqlite")
    if url.get_backend_name() == "sqlite":
        _tune_sqlite(engine)
    elif engine.dialect.driver == "psycopg":
        _psycopg_binary(engine)
    return engine


def _psycopg_binary(engine: Engine) -> None:
    @event.listens_for(engine, "do_execute")
    def _execute(cursor: Any, statement: str, parameters: Any, context: Any) -> bool | None:
        # Parsing numbers from binary costs a third of parsing their text: worth it for reads of
        # thousands of rows (the values are the same either way).
        if context.execution_options.get(BINARY_OPTION):
            cursor.execute(statement, parameters, binary=True)
            return True
        return None


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transactions out of the driver's hands so that BEGIN is ours (see below) and
        # every statement of a unit of work, reads included, shares one transaction.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")  # readers don't block the writer, nor it them
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn: Connection) -> None:
        # A writer takes the write lock up front; a deferred transaction that reads first and
        # writes later can fail with SQLITE_BUSY instead of waiting for the lock.
        mode = "IMMEDIATE" if conn.get_execution_options().get(WRITE_OPTION) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


def alembic_config() -> Config:
    """A config built in code, so migrations run from an installed package without an ini file."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    cfg = alembic_config()
    with engine.execution_options(**{WRITE_OPTION: True}).begin() as conn:
        if conn.dialect.name == "postgresql":
            # Several processes may start at once (API, workers); one migrates, the others wait.
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The migration the database is at (None: an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()
