"""``evo`` commands that do their work in this process: run or resume a job with live progress,
compare algorithms, run a benchmark."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from evo.app.cli_common import (
    DbOption,
    JobArg,
    JobFailed,
    UserError,
    checked_job,
    console,
    db_settings,
    err,
    find_job,
    open_store,
    spec_path,
)
from evo.app.dataset import dataset_of, is_dataset_algorithm
from evo.app.progress import ProgressDisplay
from evo.app.show import leaderboard_table, rounds_table


class _Outcome:
    """The id and end of the job a command runs here, as its events tell them: a job that
    fails raises its error, and the message needs the job's id and stored reason."""

    def __init__(self) -> None:
        self.job_id: str | None = None
        self.failed: str | None = None  # the reason stored with a job that failed

    def on_event(self, event: Any) -> None:
        from evo.events import JobEnded

        self.job_id = self.job_id or event.job_id
        if isinstance(event, JobEnded) and event.status == "failed":
            self.failed = event.reason or "no reason given"


@contextmanager
def _reporting_failure() -> Iterator[Callable[[Any], None]]:
    """Turns the error of a job that failed here into ``JobFailed`` (its id and reason, for a
    one-line message and the command that continues it); yields the event subscriber."""
    outcome = _Outcome()
    try:
        yield outcome.on_event
    except Exception:
        if outcome.job_id is None or outcome.failed is None:
            raise  # no job was stored, or it did not fail: the error says it all
        raise JobFailed(outcome.job_id, outcome.failed) from None


def result_table(store: Any, result: Any, algorithm: str) -> Any:
    """What a finished run prints: the leaderboard, or a data-set job's counts per round."""
    if is_dataset_algorithm(algorithm):
        return rounds_table(dataset_of(store.candidates(result.job_id)))
    return leaderboard_table(result)


def run(
    spec: Annotated[str, typer.Argument(help="a YAML/JSON spec file, or a shipped example name")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a field: --set algorithm.population=8"),
    ] = None,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no live progress")] = False,
) -> None:
    """Run a job to the end: live progress, then the leaderboard and the job id."""
    from workers.capacity import cluster_capacity
    from workers.runner import optimize

    settings = db_settings(db)
    job_spec, _ = checked_job(spec_path(spec), set_ or [], cluster_capacity(settings))
    store = open_store(settings.database_url, create=True)
    display = ProgressDisplay(console, enabled=not quiet)
    try:
        with _reporting_failure() as on_event, display:
            result = optimize(
                job_spec,
                store=store,
                settings=settings,
                subscribe=[display.on_event, on_event],
            )
        console.print(result_table(store, result, job_spec.algorithm.name))
    finally:
        store.close()
    if result.reason:
        console.print(f"[yellow]{result.reason}[/]")
    fmt = "jsonl" if is_dataset_algorithm(job_spec.algorithm.name) else "md"
    short = result.job_id[:8]
    # a prompt can be tried on the user's own inputs; a program is run on instances
    tried = (f" · evo predict {short} -i TEXT" if result.best is not None
             and result.best.candidate.kind in ("prompt", "soft_prompt") else "")
    console.print(
        f"job [bold]{result.job_id}[/] {result.status} — "
        f"evo show {short} · evo export {short} --format {fmt}{tried}", highlight=False
    )


def resume(
    job: JobArg,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no live progress")] = False,
) -> None:
    """Continue an interrupted, failed or cancelled job from its last checkpoint."""
    from workers.runner import CannotResume
    from workers.runner import resume as resume_job

    settings = db_settings(db)
    store = open_store(settings.database_url)
    display = ProgressDisplay(console, enabled=not quiet)
    try:
        record = find_job(store, job)
        with _reporting_failure() as on_event, display:
            result = resume_job(record.id, store=store, settings=settings,
                                subscribe=[display.on_event, on_event])
        console.print(result_table(store, result, record.algorithm))
    except CannotResume as exc:
        raise UserError(str(exc)) from None
    finally:
        store.close()
    console.print(f"job [bold]{result.job_id}[/] {result.status}")


def compare(
    spec: Annotated[
        str, typer.Argument(help="a spec file or shipped example: task, budget, models")
    ],
    algorithms: Annotated[
        str, typer.Option(help="comma-separated algorithm names")
    ] = "evoprompt-ga,opro",
    repeats: Annotated[
        int, typer.Option(min=1, max=100, help="runs per algorithm (seeds differ)")
    ] = 1,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override a field")] = None,
    markdown: Annotated[Path | None, typer.Option(help="also write the table as Markdown")] = None,
    csv_out: Annotated[
        Path | None, typer.Option("--csv", help="also write the table as CSV")
    ] = None,
    db: DbOption = None,
    fresh: Annotated[
        bool, typer.Option("--fresh", help="run everything again, even runs the store has")
    ] = False,
) -> None:
    """Run several algorithms on one task with one budget and compare them in one table.

    Runs whose exact spec already completed in the store are reused, so an interrupted
    comparison continues where it stopped. A method with an evaluation strategy of its own
    (zero-shot-eot: eot) answers with it, the others with the spec's; a method whose result is a
    data set (evol-instruct) has no score to compare and is refused."""
    from rich.table import Table

    from evo.algorithms import UnknownAlgorithm, get_algorithm
    from evo.app.compare import (
        COLUMNS,
        PAIR_COLUMNS,
        cells,
        not_comparable,
        pairs_markdown,
        pairwise,
        strategy_note,
        summarize,
        to_csv,
        to_markdown,
    )
    from workers.capacity import cluster_capacity
    from workers.runner import compare_runs

    names = [a.strip() for a in algorithms.split(",") if a.strip()]
    for name in names:
        try:
            get_algorithm(name)
        except UnknownAlgorithm as exc:
            raise UserError(str(exc)) from None
        if why := not_comparable(name):
            raise UserError(why)
    settings = db_settings(db)
    capacity = cluster_capacity(settings)
    base, task = checked_job(spec_path(spec), set_ or [], capacity)
    # whether the methods answer alike: said beside the table
    note = strategy_note(_checked_runs(base, task, names, capacity, spec))
    title = (f"{base.task if isinstance(base.task, str) else 'task'} · "
             f"budget {base.budget.calls} calls · {repeats} run(s) each")
    total = len(names) * repeats

    def write(runs: list) -> None:
        # after every run, so a long comparison that stops early still leaves its table
        rows = summarize(runs)
        so_far = "" if len(runs) == total else f" · {len(runs)} of {total} runs so far"
        if markdown:
            between = pairs_markdown(pairwise(runs))
            markdown.write_text(to_markdown(rows, title=title + so_far)
                                + (f"\n{note}\n" if note else "") + between)
        if csv_out:
            csv_out.write_text(to_csv(rows))

    store = open_store(settings.database_url, create=True)
    try:
        runs = compare_runs(
            base,
            names,
            repeats,
            store=store,
            settings=settings,
            progress=lambda msg: err.print(msg, highlight=False),
            on_run=write,
            reuse=not fresh,
        )
    finally:
        store.close()
    table = Table(*COLUMNS, title=title)
    for row in summarize(runs):
        table.add_row(*cells(row))
    console.print(table)
    if note:
        console.print(note, highlight=False, markup=False)
    if pairs := pairwise(runs):
        between = Table(*PAIR_COLUMNS, title="Paired on the same test examples")
        for pair in pairs:
            between.add_row(*pair.cells())
        console.print(between)
    for path in (markdown, csv_out):
        if path:
            err.print(f"wrote {path}")


def _checked_runs(base: Any, task: Any, names: list[str], capacity: Any, source: str) -> list:
    """Each method's first run checked like a job before any runs: its own strategy (and the
    final reserve that strategy's chains need) may not fit where the base spec does."""
    from evo.app.compare import run_specs
    from evo.spec_io import SpecError
    from workers.admission import check_job

    out = []
    for name in names:
        try:
            (item,) = run_specs(base, [name], 1)
            check_job(item[2], task, capacity=capacity)
        except SpecError as exc:
            raise SpecError(exc.errors, f"{source}, run with {name}") from None
        out.append(item)
    return out


BENCHMARKS = ("orchestration", "local_model", "store", "savings", "task_difficulty", "quality",
              "client_cpu", "docs_figures", "soft_prompt", "bbt_curve", "bdpl_curve", "funsearch",
              "eot", "judge")

# Everything after NAME, --help included, is the benchmark's own to parse.
BENCH_CONTEXT = {"allow_extra_args": True, "ignore_unknown_options": True,
                 "help_option_names": []}


def bench(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help=f"one of: {', '.join(BENCHMARKS)}")],
) -> None:
    """Run a benchmark (`evo bench NAME --help` for its options); it prints its figures."""
    import importlib

    if name not in BENCHMARKS:
        raise UserError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        raise UserError(f"benchmark {name!r} is not available here ({exc})") from None
    module.main(list(ctx.args))
