"""``evo`` commands that read: the jobs in the store, one job, its exported prompts, and the
built-in tasks and algorithms."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from evo.app.cli_common import DbOption, JobArg, UserError, console, err, find_job, open_store
from evo.app.export import FORMATS, NoBestPrompt, render_export


def jobs(
    db: DbOption = None,
    status: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
) -> None:
    """List jobs, newest first."""
    from rich.table import Table

    with open_store(db) as store:
        rows = store.list_jobs(status=status, limit=limit)
    table = Table("id", "name", "task", "algorithm", "status", "best dev", "calls", "created")
    for j in rows:
        best = j.stats.get("best_dev") if j.stats else None
        table.add_row(
            j.id[:8],
            j.name,
            j.task,
            j.algorithm,
            j.status,
            "" if best is None else f"{best:.3f}",
            str((j.stats or {}).get("calls", "")),
            f"{j.created_at:%Y-%m-%d %H:%M}",
        )
    console.print(table)


def show(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """A job's population per generation, its best prompts and what it cost."""
    from evo.app.progress import show_job

    with open_store(db) as store:
        record = find_job(store, job)
        show_job(console, store, record)


def export(
    job: JobArg,
    format: Annotated[str, typer.Option("--format", "-f", help="json | yaml | md | txt")] = "json",
    top: Annotated[int, typer.Option(help="how many of the best prompts")] = 1,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write to a file")] = None,
    db: DbOption = None,
) -> None:
    """Export a job's best prompt(s) with scores, task, model, algorithm and lineage summary."""
    if format not in FORMATS:
        raise UserError(f"unknown format {format!r}; choose one of {', '.join(FORMATS)}")
    with open_store(db) as store:
        try:
            text = render_export(store, find_job(store, job), format, top)
        except NoBestPrompt as exc:  # nothing written, not even an empty file
            raise UserError(str(exc)) from None
    if output:
        output.write_text(text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def tasks() -> None:
    """The built-in tasks."""
    from rich.table import Table

    from evo.task import builtin_tasks, load_task

    table = Table("name", "description", "train/dev/test", "metric")
    for name, description in builtin_tasks().items():
        t = load_task(name)
        sizes = "/".join(str(len(t.split(s))) for s in ("train", "dev", "test"))
        metric = t.metric.name if hasattr(t, "metric") else f"{t.objective} ({t.direction})"
        table.add_row(name, description, sizes, metric)
    console.print(table)


def algorithms() -> None:
    """The algorithms and their parameters (with defaults)."""
    from rich.table import Table

    from evo.algorithms import REGISTRY

    table = Table("name", "summary", "parameters")
    for name, cls in sorted(REGISTRY.items()):
        params = ", ".join(f"{k}={f.default}" for k, f in cls.params_model.model_fields.items())
        table.add_row(name, cls.summary, params)
    console.print(table)
