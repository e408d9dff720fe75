"""``evo predict``: a job's best prompt (or another of its candidates) applied to new inputs
with the job's model and template, as ``workers/predict.py`` does it."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from evo.app.cli_common import DbOption, JobArg, UserError, db_settings, err, find_job, open_store

JSONL_SUFFIXES = (".jsonl", ".ndjson")
TEXT_SUFFIXES = (".txt",)
PROGRESS_AFTER = 32  # inputs: fewer are done before a progress line would help


def predict(
    job: JobArg,
    input: Annotated[list[str] | None, typer.Option(
        "--input", "-i", help="an input (repeat for more)")] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="inputs: .jsonl (an 'input' key, or the task's input column, per "
        "line) or .txt (one input per line)")] = None,
    candidate: Annotated[str | None, typer.Option(
        "--candidate", "-c", help="a candidate id or unique prefix (default: the job's best "
        "on the full dev split)")] = None,
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="write JSONL rows {input, output, error?} to this file")] = None,
    db: DbOption = None,
) -> None:
    """Apply a job's best prompt to new inputs with the job's model and template.

    Prints one output a line (a label task's label, else the model's text), or writes JSONL rows
    with --output; exits with status 1 when an input got no output (the reason is on stderr)."""
    from workers.predict import (
        CandidateNotFound,
        CannotPredict,
        NoBestPrompt,
        Predictor,
        pick_candidate,
    )

    if bool(input) == (file is not None):
        raise UserError("give the inputs with --input (repeatable) or --file, one of the two")
    if file is not None:
        _readable(file)  # before the store is opened or a model loaded
    with open_store(db) as store:
        record = find_job(store, job)
        try:
            chosen = pick_candidate(store, record, candidate)
        except (NoBestPrompt, CandidateNotFound, CannotPredict) as exc:
            raise UserError(str(exc)) from None
    try:
        predictor = Predictor.of_job(record, db_settings(db))
        predictor.check(chosen)
    except CannotPredict as exc:
        raise UserError(str(exc)) from None
    inputs = list(input or []) if file is None else read_inputs(file, input_column(predictor))
    with predictor, _progress(len(inputs)) as progress:
        found = predictor.predict(chosen, inputs, progress)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text("".join(json.dumps(p.as_dict(), ensure_ascii=False) + "\n"
                                  for p in found))
        err.print(f"wrote {len(found)} predictions to {output}", highlight=False, markup=False,
                  soft_wrap=True)
    else:
        # one line per input: a line break within an output is shown as \n (-o keeps it)
        sys.stdout.write("".join((p.output or "").replace("\n", "\\n") + "\n" for p in found))
    failed = [(i, p) for i, p in enumerate(found, 1) if p.error is not None]
    for i, p in failed:
        err.print(f"input {i}: {p.error}", highlight=False, markup=False, soft_wrap=True)
    if failed:
        sys.exit(1)


def input_column(predictor: Any) -> str | None:
    """The task's own input column, when its spec names one other than "input"."""
    from evo.task import TaskSpec

    task = predictor.spec.task
    column = task.columns.input if isinstance(task, TaskSpec) else "input"
    return None if column == "input" else column


def _readable(path: Path) -> None:
    if not path.is_file():
        raise UserError(f"no file {path}")
    if path.suffix.lower() not in JSONL_SUFFIXES + TEXT_SUFFIXES:
        raise UserError(f"{path}: inputs are read from .jsonl (one JSON object per line with an "
                        "'input' key) or .txt (one input per line)")


def read_inputs(path: Path, column: str | None = None) -> list[str]:
    """The inputs of a .jsonl file (each line an object with ``column`` or "input" as a key,
    whose value is a string) or a .txt file (each non-blank line); blank lines are skipped.
    A bad line is a ``UserError`` naming the file and line."""
    _readable(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    jsonl = path.suffix.lower() in JSONL_SUFFIXES
    keys = [k for k in (column, "input") if k]
    inputs = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if not jsonl:
            inputs.append(line)
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserError(f"{path} line {number}: not JSON ({exc.msg})") from None
        key = next((k for k in keys if isinstance(row, dict) and k in row), None)
        if key is None:
            wanted = " or ".join(repr(k) for k in keys)
            raise UserError(f"{path} line {number}: expected a JSON object with the key {wanted}")
        if not isinstance(row[key], str):
            raise UserError(f"{path} line {number}: {key!r} must be a string, not "
                            f"{type(row[key]).__name__}")
        inputs.append(row[key])
    if not inputs:
        raise UserError(f"{path} has no inputs")
    return inputs


class _progress:
    """Inputs done / all, on stderr, for a long list (redrawn in a terminal, else a line per
    batch)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.bar: Any = None

    def __enter__(self) -> Any:
        if self.total < PROGRESS_AFTER:
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

        if not err.is_terminal:
            return lambda done, total: err.print(f"predicted {done}/{total}", highlight=False,
                                                 soft_wrap=True)
        self.bar = Progress("predicting", BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                            console=err, transient=True)
        self.bar.start()
        task = self.bar.add_task("predict", total=self.total)
        return lambda done, total: self.bar.update(task, completed=done)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
