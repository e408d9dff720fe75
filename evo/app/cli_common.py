"""What every ``evo`` command shares: the consoles, the job and --db arguments, the error a
user can fix, and opening the store, a spec file, the settings or a job."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()
err = Console(stderr=True)

JobArg = Annotated[str, typer.Argument(help="job id or a unique prefix of it")]
DbOption = Annotated[
    str | None, typer.Option("--db", help="store URL (default: EVO_DATABASE_URL or ./evo.db)")
]


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def open_store(db: str | None):
    from evo.app.settings import Settings
    from storage import Store

    return Store(db or Settings().database_url)


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


def db_settings(db: str | None):
    from evo.app.settings import Settings

    settings = Settings()
    return settings.model_copy(update={"database_url": db}) if db else settings


def find_job(store, ref: str):
    try:
        record = store.get_job(ref)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if record is None:
        raise UserError(f"no job {ref!r} in {store.url}")
    return record
