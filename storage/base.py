"""``StoreBase``: the connection to one database that every part of ``Store`` shares.

It owns the engine, the reading and writing sessions, the schema upgrade and ``ping``. Every
session it hands out (``_read``, ``_write``) raises ``StoreUnavailable`` in place of the errors
of a database that cannot be reached, so no caller of the store needs SQLAlchemy to tell that
case apart.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Self

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from storage import db
from storage.errors import translated


class StoreBase:
    """The engine and sessions over the Evo database (SQLite file by default, Postgres for the
    service)."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True) -> None:
        self._url = db.resolve_url(url)
        self._engine = db.make_engine(self._url)
        writer = self._engine.execution_options(**{db.WRITE_OPTION: True})
        self._reading = sessionmaker(self._engine, expire_on_commit=False)
        self._writing = sessionmaker(writer, expire_on_commit=False)
        if upgrade:
            self.upgrade()

    @property
    def url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    @property
    def engine(self) -> Engine:
        return self._engine

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        with translated():
            db.upgrade(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    def ping(self) -> None:
        """Ask the database a trivial question; raises ``StoreUnavailable`` when it does not
        answer (whatever the reason: this is what a readiness check asks)."""
        with translated(everything=True), self._reading() as session:
            session.execute(text("SELECT 1"))

    @contextmanager
    def _read(self) -> Iterator[Session]:
        """A session for reads (one transaction on SQLite, closed at the end)."""
        with translated(), self._reading() as session:
            yield session

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A session in a write transaction, committed at the end unless an error is raised."""
        with translated(), self._writing.begin() as session:
            yield session
