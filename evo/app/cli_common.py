"""What every ``evo`` command shares: the consoles, the job and --db arguments, the error a
user can fix, the help layout, and opening the store, a spec file, the settings or a job."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from evo.app.settings import default_store_path

console = Console()
err = Console(stderr=True)

JobArg = Annotated[str, typer.Argument(help="job id or a unique prefix of it")]
DbOption = Annotated[
    str | None,
    typer.Option("--db",
                 help=f"store URL (default: EVO_DATABASE_URL, else {default_store_path()})"),
]


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


class JobFailed(Exception):
    """A job run here ended as failed: its id and why, for a message that says how to go on."""

    def __init__(self, job_id: str, reason: str, *, user_fixable: bool = False) -> None:
        super().__init__(f"job {job_id} failed: {reason}")
        self.job_id = job_id
        self.reason = reason
        self.user_fixable = user_fixable  # the reason is one the user can act on (exit status 2)


def _flags_without_types(params: list[Any]) -> list[Any]:
    # A flag takes no value, so its help row shows no value type (typer would show "<bool>").
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


class Command(TyperCommand):
    """A command whose --help lists flags without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_types(super().get_params(ctx))


class Group(TyperGroup):
    """A group of commands whose --help lists flags without a value type."""

    def get_params(self, ctx: Any) -> list[Any]:
        return _flags_without_types(super().get_params(ctx))


def store_location() -> str:
    """Where the store is, as a user would look for it: EVO_DATABASE_URL (password hidden), or
    the default file."""
    url = os.environ.get("EVO_DATABASE_URL")
    if not url:
        return str(default_store_path())
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # opening it will say what is wrong with it
    path = sqlite_file(parsed)
    return str(path) if path is not None else parsed.render_as_string(hide_password=True)


def sqlite_file(url: Any) -> Path | None:
    """The file of a SQLite URL (a string or a SQLAlchemy URL); None for any other store and
    for an in-memory database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url) if isinstance(url, str) else url
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(os.path.abspath(database))


def open_store(db: str | None, *, create: bool = False, upgrade: bool = True):
    """The store at ``db`` (default: the settings' ``database_url``). A SQLite file that does
    not exist is made (with its folder) only with ``create``: a command that only reads or
    changes jobs says there is no store rather than leaving an empty one behind."""
    from evo.app.settings import Settings
    from storage import Store

    url = db or Settings().database_url
    path = sqlite_file(url)
    if path is not None:
        if create:
            path.parent.mkdir(parents=True, exist_ok=True)
        elif not path.exists():
            raise UserError(f"no store at {path} (no job has been run with it yet)")
    return Store(url, upgrade=upgrade)


def no_job(ref: str, store: Any) -> str:
    """"No job" with where it was looked for, and where the default store is when that was
    another one: a job run with another store (or before the default moved) is found there."""
    from storage.jobs import missing_job

    where = sqlite_file(store.url) or store.url
    default = default_store_path()
    hint = ("the default store; --db or EVO_DATABASE_URL names another" if where == default
            else f"the default store is {default}")
    return f"{missing_job(ref)} in the store at {where} ({hint})"


def spec_path(spec: str) -> Path:
    path = Path(spec)
    if path.exists():
        return path
    shipped = resources.files("evo") / "examples" / f"{spec}.yaml"
    if shipped.is_file():
        return Path(str(shipped))
    names = sorted(
        p.name[:-5]
        for p in (resources.files("evo") / "examples").iterdir()
        if p.name.endswith(".yaml")
    )
    raise UserError(
        f"no spec file {spec!r}, and no shipped example of that name (examples: {', '.join(names)})"
    )


def checked_job(path: Path, overrides: list[str], capacity: Any) -> tuple[Any, Any]:
    """The spec and its task, the job checked (against a cluster's ``capacity`` when known):
    whatever stops it is said before a store is opened, so a mistake leaves no store, and no
    job, behind."""
    from evo.spec_io import load_spec
    from evo.task import load_task
    from workers.admission import check_job

    spec = load_spec(path, overrides)
    task = load_task(spec.task, base_dir=spec._base_dir)
    check_job(spec, task, capacity=capacity)
    return spec, task


def db_settings(db: str | None):
    from evo.app.settings import Settings

    settings = Settings()
    return settings.model_copy(update={"database_url": db}) if db else settings


def find_job(store, ref: str):
    try:
        record = store.get_job(ref)
    except ValueError as exc:  # an ambiguous prefix: the message lists what it matches
        raise UserError(str(exc)) from None
    if record is None:
        raise UserError(no_job(ref, store))
    return record
