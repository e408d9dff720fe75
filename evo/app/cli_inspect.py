"""``evo`` commands that read: the jobs in the store, one job, its exported prompts, and the
built-in tasks and algorithms."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from evo.app.cli_common import DbOption, JobArg, UserError, console, err, find_job, open_store
from evo.app.dataset import FORMATS as DATASET_FORMATS
from evo.app.export import FORMATS, NoBestPrompt, render_export

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo


def jobs(
    db: DbOption = None,
    status: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
) -> None:
    """List jobs, newest first."""
    from datetime import date

    from evo.app.tables import jobs_table

    with open_store(db) as store:
        rows = store.list_jobs(status=status, limit=limit)
        if not rows:
            console.print(f"no {status + ' ' if status else ''}jobs in {store.url}",
                          highlight=False, markup=False)
            return
    console.print(jobs_table(rows, date.today()))


def show(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """A job's population per generation, its best prompts and what it cost."""
    from evo.app.show import show_job

    with open_store(db) as store:
        record = find_job(store, job)
        show_job(console, store, record)


def export(
    job: JobArg,
    format: Annotated[str, typer.Option(
        "--format", "-f",
        help="json | yaml | md | txt; a soft prompt: npy; a data-set job: jsonl | hf")] = "json",
    top: Annotated[int, typer.Option(help="how many of the best prompts")] = 1,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="write to a file (--format hf: a folder)")] = None,
    db: DbOption = None,
) -> None:
    """Export a job's best prompt(s), or the items of a data-set job.

    The best prompts come with their scores, task, model, algorithm and lineage summary; a
    data-set job's items (Evol-Instruct) as JSONL or a Hugging Face datasets folder; a soft
    prompt (BBT) as its vectors in a .npy file with a JSON sidecar."""
    if format in DATASET_FORMATS:
        return export_dataset(job, format, output, db)
    if format == "npy":
        return _export_soft_prompt(job, output, db)
    if format not in FORMATS:
        known = ", ".join((*FORMATS, "npy", *DATASET_FORMATS))
        raise UserError(f"unknown format {format!r}; choose one of {known}")
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


def _export_soft_prompt(job: str, output: Path | None, db: str | None) -> None:
    from evo.app.export_soft import NoSoftPrompt, write_soft_prompt

    if output is None:
        raise UserError("--format npy writes two files (vectors and a JSON sidecar): give "
                        "their name with --output")
    with open_store(db) as store:
        try:
            npy, sidecar = write_soft_prompt(store, find_job(store, job), output)
        except (NoBestPrompt, NoSoftPrompt) as exc:
            raise UserError(str(exc)) from None
    err.print(f"wrote {npy} and {sidecar}")


def export_dataset(job: str, format: str, output: Path | None, db: str | None) -> None:
    """A data-set job's items: JSONL (to a file or stdout), or a ``save_to_disk`` folder."""
    from evo.app.dataset import HFMissing, NotADataSet, job_dataset, save_hf, to_jsonl

    if format == "hf" and output is None:
        raise UserError("--format hf writes a Hugging Face datasets folder: name it with -o")
    with open_store(db) as store:
        try:
            data = job_dataset(store, find_job(store, job))
        except NotADataSet as exc:
            raise UserError(str(exc)) from None
    if format == "hf":
        assert output is not None
        try:
            save_hf(data, output)
        except HFMissing as exc:
            raise UserError(str(exc)) from None
        err.print(f"wrote {output} ({len(data.items)} items)")
    elif output:
        output.write_text(to_jsonl(data))
        err.print(f"wrote {output} ({len(data.items)} items)")
    else:
        sys.stdout.write(to_jsonl(data))


def tasks() -> None:
    """The built-in tasks."""
    from rich.table import Table

    from evo.task import builtin_tasks, load_task

    table = Table("name", "description", "train/dev/test", "metric")
    for column in table.columns:
        column.overflow = "fold"  # wrapped, never cut
    for name, description in builtin_tasks().items():
        t = load_task(name)
        sizes = "/".join(str(len(t.split(s))) for s in ("train", "dev", "test"))
        metric = t.metric.name if hasattr(t, "metric") else f"{t.objective} ({t.direction})"
        table.add_row(name, description, sizes, metric)
    console.print(table)


def algorithms() -> None:
    """The algorithms and their parameters (with defaults)."""
    from rich.table import Table
    from rich.text import Text

    from evo.algorithms import REGISTRY

    table = Table("name", "summary", "parameters (default)", show_lines=True)
    table.columns[0].no_wrap = True
    for column in table.columns[1:]:
        column.overflow = "fold"  # wrapped, never cut
    for name, cls in sorted(REGISTRY.items()):
        params = ", ".join(f"{k}={param_default(f)}"
                           for k, f in cls.params_model.model_fields.items())
        table.add_row(name, Text(cls.summary), Text(params))  # Text: "[...]" is not markup
    console.print(table)


def param_default(field: FieldInfo) -> str:
    """A parameter's default as a spec file would give it; one made by a factory is made."""
    if field.is_required():
        return "(required)"
    return yaml_value(field.get_default(call_default_factory=True))


def yaml_value(value: object) -> str:
    """YAML's flow style for the values parameters take: null, true, [a, b], {k: v}."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {yaml_value(v)}" for k, v in value.items()) + "}"
    return str(value)
