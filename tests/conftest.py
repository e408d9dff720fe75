"""Shared fixtures: an isolated store per test, the scripted model, a small spec."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import OperationalError

os.environ.setdefault("EVO_EXECUTOR", "inprocess")
# The default store lives in EVO_HOME (else the user's data folder): a test that falls back on
# it, or a command it starts, writes into a folder of this run, removed at its end.
os.environ["EVO_HOME"] = tempfile.mkdtemp(prefix="evo-test-home-")
atexit.register(shutil.rmtree, os.environ["EVO_HOME"], ignore_errors=True)
# Test clusters live on loopback and come and go within one process; one auth mode for all of
# them (a process that switches modes between clusters cannot start actors on the second).
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

# PostgreSQL for the tests that run on it: each test gets a schema of its own, dropped afterwards.
# An unreachable server fails those tests, unless EVO_TEST_SKIP_POSTGRES=1 says to skip them.
PG_URL = os.environ.get(
    "EVO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[Engine | str]:
    """An engine on the test server, or why there is none (checked once per run)."""
    engine = create_engine(PG_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except OperationalError as exc:
        engine.dispose()
        shown = engine.url.render_as_string(hide_password=True)
        yield (
            f"PostgreSQL at {shown} is not reachable ({exc.orig}). Start it, point "
            "EVO_TEST_POSTGRES_URL at another server, or set EVO_TEST_SKIP_POSTGRES=1 to skip."
        )
        return
    yield engine
    engine.dispose()


@pytest.fixture
def pg_url(pg_admin: Engine | str) -> Iterator[str]:
    if isinstance(pg_admin, str):
        if os.environ.get("EVO_TEST_SKIP_POSTGRES") == "1":
            pytest.skip(pg_admin)
        pytest.fail(pg_admin, pytrace=False)
    schema = f"evo_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    # Every connection of the store starts with this schema first on its search path.
    url = pg_admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with pg_admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))




@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'evo.db'}"


@pytest.fixture
def store(sqlite_url: str):
    from storage import Store

    s = Store(sqlite_url)
    yield s
    s.close()


@pytest.fixture
def settings(sqlite_url: str):
    from evo.app.settings import Settings

    return Settings(database_url=sqlite_url, executor="inprocess")


# Redis for the tests that use it: an unreachable server fails them, unless
# EVO_TEST_SKIP_REDIS=1 says to skip them.
REDIS_URL = os.environ.get("EVO_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(scope="session")
def redis_problem() -> str | None:
    """Why Redis cannot be used, or None (checked once per run)."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        return (
            f"Redis at {REDIS_URL} is not reachable ({exc}). Start it, point EVO_TEST_REDIS_URL "
            "at another server, or set EVO_TEST_SKIP_REDIS=1 to skip."
        )
    finally:
        client.close()
    return None


@pytest.fixture
def redis_url(redis_problem: str | None) -> str:
    if redis_problem is not None:
        if os.environ.get("EVO_TEST_SKIP_REDIS") == "1":
            pytest.skip(redis_problem)
        pytest.fail(redis_problem, pytrace=False)
    return REDIS_URL
