"""A database that cannot be reached: the store says so with its own ``StoreUnavailable`` (no
caller needs SQLAlchemy to tell), and the REST API answers 503, not 500, on real databases that
were never there or went away. Also: ``api/`` never imports SQLAlchemy, and ``Store`` keeps the
promises of the protocols in ``storage.protocols``."""

from __future__ import annotations

import ast
import inspect
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from api import create_app
from api.keys import create_key
from evo.app.settings import Settings
from storage import Store, StoreUnavailable, protocols
from tests.servers import free_port

ROOT = Path(__file__).resolve().parent.parent
DOWN = {"detail": "the store is unreachable; try again later"}


def _nowhere(kind: str, tmp_path: Path) -> str:
    if kind == "sqlite":  # a file in a folder that does not exist: SQLite cannot open it
        return f"sqlite:///{tmp_path / 'missing' / 'evo.db'}"
    return f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test?connect_timeout=3"


def _client(store: Store) -> TestClient:
    """The app over ``store``, its job service not started (the client is not entered, so the
    app's lifespan does not run): every answer below comes from a route reading the store."""
    settings = Settings(database_url=store.url, executor="inprocess")
    return TestClient(create_app(store, settings), raise_server_exceptions=False)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_store_that_cannot_reach_its_database_raises_store_unavailable(
    kind: str, tmp_path: Path
) -> None:
    url = _nowhere(kind, tmp_path)
    with pytest.raises(StoreUnavailable):
        Store(url)  # the schema upgrade at start-up
    with Store(url, upgrade=False) as store:
        for read in (lambda: store.get_job("0" * 32), store.ping, store.api_keys,
                     lambda: store.events("0" * 32)):
            with pytest.raises(StoreUnavailable) as err:
                read()
            # the driver's error is kept; and code that retries on SQLAlchemy's still does
            assert err.value.orig is not None and isinstance(err.value, OperationalError)


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_api_answers_503_when_the_database_was_never_there(
    kind: str, tmp_path: Path
) -> None:
    with Store(_nowhere(kind, tmp_path), upgrade=False) as store:
        client = _client(store)
        r = client.get("/api/v1/jobs", headers={"Authorization": f"Bearer evo_{'x' * 43}"})
        assert (r.status_code, r.json()) == (503, DOWN)
        r = client.get("/api/v1/health")
        assert r.status_code == 503
        assert r.json() == {"status": "unavailable", "store": "error", "redis": "not configured"}


@pytest.fixture
def doomed_db(pg_url: str, pg_admin: Engine) -> Iterator[tuple[str, Callable[[], None]]]:
    """A PostgreSQL database of its own, and how to drop it (its open connections cut)."""
    name = f"evo_gone_{uuid.uuid4().hex[:12]}"
    admin = pg_admin.execution_options(isolation_level="AUTOCOMMIT")

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield pg_admin.url.set(database=name).render_as_string(hide_password=False), drop
    finally:
        drop()


def test_the_api_answers_503_once_its_database_is_dropped(
    doomed_db: tuple[str, Callable[[], None]],
) -> None:
    url, drop = doomed_db
    with Store(url) as store:
        client = _client(store)
        key = create_key(store, "alice")[1]
        auth = {"Authorization": f"Bearer {key}"}
        assert client.get("/api/v1/jobs", headers=auth).json()["total"] == 0
        assert client.get("/api/v1/health").status_code == 200
        drop()
        r = client.get("/api/v1/jobs", headers=auth)
        assert (r.status_code, r.json()) == (503, DOWN)
        r = client.get(f"/api/v1/jobs/{'0' * 32}/candidates", headers=auth)
        assert (r.status_code, r.json()) == (503, DOWN)
        assert client.get("/api/v1/health").json()["store"] == "error"


def test_no_module_of_the_api_imports_sqlalchemy() -> None:
    offenders = []
    for path in sorted((ROOT / "api").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names
                          if n == "sqlalchemy" or n.startswith("sqlalchemy.")]
    assert offenders == []


PROTOCOLS = [protocols.JobLife, protocols.RunRecorder, protocols.ReadModels, protocols.ApiKeys]


@pytest.mark.parametrize("protocol", PROTOCOLS, ids=lambda p: p.__name__)
def test_store_keeps_each_protocol(protocol: type) -> None:
    """Every method a protocol names is the store's, with the same parameters (and defaults
    for all but ``...``); no two protocols name the same method."""
    names = _methods(protocol)
    assert names
    for name in names:
        wanted = inspect.signature(getattr(protocol, name))
        got = inspect.signature(getattr(Store, name))
        assert list(got.parameters) == list(wanted.parameters), name
        for p in wanted.parameters.values():
            q = got.parameters[p.name]
            assert (q.kind, q.annotation) == (p.kind, p.annotation), (name, p.name)
            assert p.default is Ellipsis or q.default == p.default, (name, p.name)
        assert got.return_annotation == wanted.return_annotation, name
    others = {n for p in PROTOCOLS if p is not protocol for n in _methods(p)}
    assert not others & set(names)


def _methods(protocol: type) -> list[str]:
    return [n for n, v in vars(protocol).items() if inspect.isfunction(v) and n[0] != "_"]
