"""The ``evo`` command line: run, resume, submit, cancel, pause, requeue, worker, serve, keys, db,
jobs, show, export, compare, tasks, algorithms."""

from __future__ import annotations

import logging
import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from evo.app.export import FORMATS, NoBestPrompt, render_export
from evo.app.progress import ProgressDisplay, leaderboard_table

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Evo: evolutionary prompt optimization on any OpenAI-compatible or local model.",
)
console = Console()
err = Console(stderr=True)

JobArg = Annotated[str, typer.Argument(help="job id or a unique prefix of it")]
DbOption = Annotated[
    str | None, typer.Option("--db", help="store URL (default: EVO_DATABASE_URL or ./evo.db)")
]


class UserError(Exception):
    """A problem the user can fix; printed without a traceback."""


def _store(db: str | None):
    from evo.app.settings import Settings
    from storage import Store

    return Store(db or Settings().database_url)


def _spec_path(spec: str) -> Path:
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


@app.command()
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
    from evo.app.settings import Settings
    from workers.runner import optimize

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    path = _spec_path(spec)
    store = _store(settings.database_url)
    display = ProgressDisplay(console, enabled=not quiet)
    try:
        with display:
            result = optimize(
                path,
                overrides=set_ or (),
                store=store,
                settings=settings,
                subscribe=[display.on_event],
            )
    finally:
        store.close()
    console.print(leaderboard_table(result))
    if result.reason:
        console.print(f"[yellow]{result.reason}[/]")
    console.print(
        f"job [bold]{result.job_id}[/] {result.status} — "
        f"evo show {result.job_id[:8]} · evo export {result.job_id[:8]} --format md"
    )


@app.command()
def resume(
    job: JobArg,
    db: DbOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no live progress")] = False,
) -> None:
    """Continue an interrupted (or failed, or cancelled) job from its last checkpoint."""
    from evo.app.settings import Settings
    from workers.runner import CannotResume
    from workers.runner import resume as resume_job

    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    store = _store(settings.database_url)
    display = ProgressDisplay(console, enabled=not quiet)
    try:
        with display:
            result = resume_job(job, store=store, settings=settings, subscribe=[display.on_event])
    except CannotResume as exc:
        raise UserError(str(exc)) from None
    finally:
        store.close()
    console.print(leaderboard_table(result))
    console.print(f"job [bold]{result.job_id}[/] {result.status}")


def _settings(db: str | None):
    from evo.app.settings import Settings

    settings = Settings()
    return settings.model_copy(update={"database_url": db}) if db else settings


@app.command()
def submit(
    spec: Annotated[str, typer.Argument(help="a YAML/JSON spec file, or a shipped example name")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a field: --set algorithm.population=8"),
    ] = None,
    db: DbOption = None,
) -> None:
    """Queue a job for the service (`evo worker` or `evo serve`) to run."""
    from evo.spec_io import load_spec
    from workers import jobs as job_rules

    parsed = load_spec(_spec_path(spec), set_ or ())
    if parsed.models.task.api_key or (parsed.models.meta and parsed.models.meta.api_key):
        raise UserError("a queued job cannot carry an inline api_key (it is never stored); "
                        "name an environment variable with api_key_env instead")
    with _store(db) as store:
        job = job_rules.submit(store, parsed)
    console.print(f"job [bold]{job.id}[/] queued")


def _control(action: str, job: str, db: str | None) -> None:
    from workers import jobs as job_rules

    act = {"cancel": job_rules.cancel, "pause": job_rules.pause, "resume": job_rules.requeue}
    with _store(db) as store:
        try:
            record = act[action](store, job)
        except (job_rules.JobNotFound, job_rules.JobConflict) as exc:
            raise UserError(str(exc)) from None
    if record.control:
        console.print(f"job {record.id} is running: asked its driver to {record.control}")
    else:
        console.print(f"job {record.id} is {record.status}")


@app.command()
def cancel(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """Cancel a job: a running one stops its calls within a second and keeps what it did."""
    _control("cancel", job, db)


@app.command()
def pause(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """Pause a job after its next generation (`evo requeue` or `evo resume` continues it)."""
    _control("pause", job, db)


@app.command()
def requeue(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """Queue a paused, interrupted, failed or cancelled job again, for the service to resume."""
    _control("resume", job, db)


@app.command()
def worker(
    db: DbOption = None,
    max_jobs: Annotated[
        int | None, typer.Option(help="jobs run at once (default EVO_MAX_JOBS)")
    ] = None,
) -> None:
    """Run queued jobs from the store until stopped (Ctrl-C or SIGTERM: running jobs are
    interrupted and resume from their checkpoints at the next start)."""
    import signal
    import threading

    from workers.service import JobService

    # Both stop it cleanly, as they stop `evo serve`: SIGTERM is how a container runtime or
    # systemd stops a service, and SIGINT is handled even when a shell that started the worker
    # in the background left it ignored. The handlers only set a flag, so a signal that comes
    # at any moment (during start-up too) is acted on the same way.
    stopping = threading.Event()
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, lambda signum, frame: stopping.set())

    settings = _settings(db)
    if max_jobs:
        settings = settings.model_copy(update={"max_jobs": max_jobs})
    store = _store(settings.database_url)
    service = JobService(store, settings)
    service.on_end.append(lambda job_id, status: console.print(f"job {job_id} {status}"))
    try:
        service.start()
        console.print(f"running queued jobs from {store.url} ({settings.max_jobs} at a time, "
                      f"{settings.executor} executor); Ctrl-C stops")
        while not stopping.wait(0.5):
            pass
        console.print("stopping: running jobs are interrupted and will resume")
    finally:
        service.stop()
        store.close()


db_app = typer.Typer(no_args_is_help=True, help="The store's schema: migrate, show version.")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(db: DbOption = None) -> None:
    """Bring the store's schema to the newest migration (stores also do so when opened)."""
    from storage import Store
    from storage.db import current_revision

    settings = _settings(db)
    with Store(settings.database_url, upgrade=False) as store:
        before = current_revision(store.engine)
        store.upgrade()
        after = current_revision(store.engine)
        console.print(f"{store.url}: {before or 'empty'} → {after}"
                      if before != after else f"{store.url}: at {after}, nothing to do")


@db_app.command("current")
def db_current(db: DbOption = None) -> None:
    """The migration the store is at, and the newest one."""
    from storage import Store
    from storage.db import current_revision, head_revision

    settings = _settings(db)
    with Store(settings.database_url, upgrade=False) as store:
        now = current_revision(store.engine)
    console.print(f"{store.url}: at {now or 'nothing (empty)'}; newest {head_revision()}")


@app.command()
def reap(
    db: DbOption = None,
    after: Annotated[
        float | None,
        typer.Option(min=0, help="also jobs whose lease was last renewed this many seconds "
                     "ago (for a process you know is gone)"),
    ] = None,
) -> None:
    """Take over running jobs whose lease ran out: they become interrupted (then `evo resume`
    them), and whatever still runs them can write nothing more."""
    from workers.runner import reap as reap_jobs

    with _store(db) as store:
        dead = reap_jobs(store, silent_for_s=after)
    console.print(f"{len(dead)} job(s) marked interrupted" + "".join(f"\n  {j}" for j in dead))


@app.command()
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
    comparison continues where it stopped."""
    from rich.table import Table

    from evo.algorithms import UnknownAlgorithm, get_algorithm
    from evo.app.compare import COLUMNS, cells, summarize, to_csv, to_markdown
    from evo.app.settings import Settings
    from evo.spec_io import load_spec
    from workers.runner import compare_runs

    names = [a.strip() for a in algorithms.split(",") if a.strip()]
    for name in names:
        try:
            get_algorithm(name)
        except UnknownAlgorithm as exc:
            raise UserError(str(exc)) from None
    base = load_spec(_spec_path(spec), set_ or ())
    settings = Settings()
    if db:
        settings = settings.model_copy(update={"database_url": db})
    title = (f"{base.task if isinstance(base.task, str) else 'task'} · "
             f"budget {base.budget.calls} calls · {repeats} run(s) each")
    total = len(names) * repeats

    def write(runs: list) -> None:
        # after every run, so a long comparison that stops early still leaves its table
        rows = summarize(runs)
        note = "" if len(runs) == total else f" · {len(runs)} of {total} runs so far"
        if markdown:
            markdown.write_text(to_markdown(rows, title=title + note))
        if csv_out:
            csv_out.write_text(to_csv(rows))

    store = _store(settings.database_url)
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
    for path in (markdown, csv_out):
        if path:
            err.print(f"wrote {path}")


@app.command()
def jobs(
    db: DbOption = None,
    status: Annotated[str | None, typer.Option(help="only jobs in this state")] = None,
    limit: Annotated[int, typer.Option(help="how many, newest first")] = 20,
) -> None:
    """List jobs, newest first."""
    from rich.table import Table

    with _store(db) as store:
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


@app.command()
def show(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """A job's population per generation, its best prompts and what it cost."""
    from evo.app.progress import show_job

    with _store(db) as store:
        record = _job(store, job)
        show_job(console, store, record)


@app.command()
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
    with _store(db) as store:
        try:
            text = render_export(store, _job(store, job), format, top)
        except NoBestPrompt as exc:  # nothing written, not even an empty file
            raise UserError(str(exc)) from None
    if output:
        output.write_text(text)
        err.print(f"wrote {output}")
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


BENCHMARKS = ("orchestration", "local_model", "store", "savings", "task_difficulty", "quality",
              "client_cpu")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
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


@app.command()
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


@app.command()
def algorithms() -> None:
    """The algorithms and their parameters (with defaults)."""
    from rich.table import Table

    from evo.algorithms import REGISTRY

    table = Table("name", "summary", "parameters")
    for name, cls in sorted(REGISTRY.items()):
        params = ", ".join(f"{k}={f.default}" for k, f in cls.params_model.model_fields.items())
        table.add_row(name, cls.summary, params)
    console.print(table)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8000,
    db: DbOption = None,
) -> None:
    """Serve the REST API (under /api/v1; schema at /api/v1/docs) and run submitted jobs."""
    import uvicorn

    from api import create_app

    settings = _settings(db)
    store = _store(settings.database_url)
    if not store.api_keys():
        err.print("no API keys yet: make one with `evo keys create NAME --admin`")
    console.print(f"dashboard on http://{host}:{port}/ · API on http://{host}:{port}/api/v1 "
                  f"from {store.url} "
                  f"({settings.max_jobs} job(s) at a time, {settings.executor} executor)")
    try:
        # a stream left open must not hold up shutdown: running jobs stop and resume later
        uvicorn.run(create_app(store, settings), host=host, port=port,
                    timeout_graceful_shutdown=10, log_level="info")
    except KeyboardInterrupt:  # uvicorn passes Ctrl-C on once it has shut down cleanly
        pass
    finally:
        store.close()
    console.print("stopped: running jobs were interrupted and will resume")


keys_app = typer.Typer(no_args_is_help=True, help="API keys for `evo serve`.")
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="whose key: the owner of the jobs it submits")],
    admin: Annotated[bool, typer.Option("--admin", help="may see and act on every job")] = False,
    db: DbOption = None,
) -> None:
    """Make a key and print it (once: only a hash of it is stored)."""
    from api import keys

    with _store(db) as store:
        try:
            record, token = keys.create_key(store, name, admin=admin)
        except keys.KeyProblem as exc:
            raise UserError(str(exc)) from None
    err.print(f"key for {record.name}{' (admin)' if record.admin else ''}; "
              "store it now, it is not shown again:")
    sys.stdout.write(token + "\n")


@keys_app.command("list")
def keys_list(db: DbOption = None) -> None:
    """The keys: name, first characters, admin or not, when made and revoked."""
    from rich.table import Table

    with _store(db) as store:
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


@keys_app.command("revoke")
def keys_revoke(
    name: Annotated[str, typer.Argument(help="revoke every active key of this name")],
    db: DbOption = None,
) -> None:
    """Revoke a name's keys: they are refused at once (its jobs stay, for an admin to see)."""
    from api import keys

    with _store(db) as store:
        try:
            count = keys.revoke(store, name)
        except keys.KeyProblem as exc:
            raise UserError(str(exc)) from None
    console.print(f"revoked {count} key(s) of {name}")


def _job(store, ref: str):
    try:
        record = store.get_job(ref)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if record is None:
        raise UserError(f"no job {ref!r} in {store.url}")
    return record


def main() -> None:
    """Entry point: user errors become one clear message and exit status 2, never a traceback."""
    from evo.llm import LLMUnavailable
    from evo.spec_io import SpecError
    from evo.task import TaskError
    from workers.capacity import CannotSchedule
    from workers.pool import PoolExhausted

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app(standalone_mode=False)
    except (UserError, SpecError, TaskError, LLMUnavailable, CannotSchedule,
            PoolExhausted) as exc:
        err.print("[bold red]error:[/] ", end="")
        err.print(str(exc), highlight=False, markup=False)
        sys.exit(2)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except typer.TyperException as exc:  # usage errors: unknown option, missing argument
        show = getattr(exc, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()
