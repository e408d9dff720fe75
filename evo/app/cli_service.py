"""``evo`` commands for the service: ``evo serve``, its API keys (``evo keys``) and the store's
schema (``evo db``)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from evo.app.cli_common import (
    Command,
    DbOption,
    Group,
    UserError,
    console,
    db_settings,
    err,
    open_store,
    sqlite_file,
)


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    db: DbOption = None,
) -> None:
    """Serve the REST API (under /api/v1; schema at /api/v1/docs) and run submitted jobs."""
    import signal

    import uvicorn

    from api import create_app

    settings = db_settings(db)
    store = open_store(settings.database_url, create=True)
    if not store.api_keys():
        err.print("no API keys yet: make one with `evo keys create NAME --admin`")
    console.print(f"dashboard on http://{host}:{port}/ · API on http://{host}:{port}/api/v1 "
                  f"from {store.url} "
                  f"({settings.max_jobs} job(s) at a time, {settings.executor} executor)")
    # uvicorn shuts down on SIGTERM as on Ctrl-C, then raises the signal again for the handler
    # it found: as KeyboardInterrupt, the stop ends here, with one line, and status 0
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        # a stream left open must not hold up shutdown: running jobs stop and resume later
        uvicorn.run(create_app(store, settings), host=host, port=port,
                    timeout_graceful_shutdown=10, log_config=_uvicorn_logging(), log_level=None)
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
    console.print("evo serve stopped: running jobs were interrupted and resume at the next start",
                  soft_wrap=True)


def _uvicorn_logging() -> dict:
    """uvicorn's logging, without its start and stop notices (this command says where it
    listens, and that it stopped); requests are still logged, and so are errors."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["uvicorn.error"]["level"] = "WARNING"
    return config


db_app = typer.Typer(cls=Group, no_args_is_help=True,
                     help="The store's schema: migrate, show version.")


@db_app.command("upgrade", cls=Command)
def db_upgrade(db: DbOption = None) -> None:
    """Bring the store's schema to the newest migration (stores also do so when opened)."""
    from storage import Store
    from storage.db import current_revision

    settings = db_settings(db)
    if (path := sqlite_file(settings.database_url)) is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
    with Store(settings.database_url, upgrade=False) as store:
        before = current_revision(store.engine)
        store.upgrade()
        after = current_revision(store.engine)
        console.print(f"{store.url}: {before or 'empty'} → {after}"
                      if before != after else f"{store.url}: at {after}, nothing to do")


@db_app.command("current", cls=Command)
def db_current(db: DbOption = None) -> None:
    """The migration the store is at, and the newest one."""
    from storage.db import current_revision, head_revision

    settings = db_settings(db)
    with open_store(settings.database_url, upgrade=False) as store:
        now = current_revision(store.engine)
    console.print(f"{store.url}: at {now or 'nothing (empty)'}; newest {head_revision()}")


keys_app = typer.Typer(cls=Group, no_args_is_help=True, help="API keys for `evo serve`.")


@keys_app.command("create", cls=Command)
def keys_create(
    name: Annotated[str, typer.Argument(help="whose key: the owner of the jobs it submits")],
    admin: Annotated[bool, typer.Option("--admin", help="may see and act on every job")] = False,
    db: DbOption = None,
) -> None:
    """Make a key and print it (once: only a hash of it is stored)."""
    from api import keys

    with open_store(db, create=True) as store:
        try:
            record, token = keys.create_key(store, name, admin=admin)
        except keys.KeyProblem as exc:
            raise UserError(str(exc)) from None
    err.print(f"key for {record.name}{' (admin)' if record.admin else ''}; "
              "store it now, it is not shown again:")
    sys.stdout.write(token + "\n")


@keys_app.command("list", cls=Command)
def keys_list(db: DbOption = None) -> None:
    """The keys: name, first characters, admin or not, when made and revoked."""
    from rich.table import Table

    with open_store(db) as store:
        rows = store.api_keys()
    table = Table("name", "key", "admin", "created", "revoked")
    for k in rows:
        table.add_row(
            k.name,
            f"{k.hint}…",
            "yes" if k.admin else "",
            f"{k.created_at:%Y-%m-%d %H:%M}",
            "" if k.revoked_at is None else f"{k.revoked_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


@keys_app.command("revoke", cls=Command)
def keys_revoke(
    name: Annotated[str, typer.Argument(help="revoke every active key of this name")],
    db: DbOption = None,
) -> None:
    """Revoke a name's keys: they are refused at once (its jobs stay, for an admin to see)."""
    from api import keys

    with open_store(db) as store:
        try:
            count = keys.revoke(store, name)
        except keys.KeyProblem as exc:
            raise UserError(str(exc)) from None
    console.print(f"revoked {count} key(s) of {name}")
