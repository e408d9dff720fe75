"""``evo`` commands for the job queue: submit a job, cancel, pause or requeue one, run the queue
(``evo worker``) and take over jobs whose lease ran out."""

from __future__ import annotations

from typing import Annotated

import typer

from evo.app.cli_common import (
    DbOption,
    JobArg,
    UserError,
    checked_job,
    console,
    db_settings,
    find_job,
    open_store,
    spec_path,
)


def submit(
    spec: Annotated[str, typer.Argument(help="a YAML/JSON spec file, or a shipped example name")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a field: --set algorithm.population=8"),
    ] = None,
    db: DbOption = None,
) -> None:
    """Queue a job for the service (`evo worker` or `evo serve`) to run."""
    from workers import jobs as job_rules

    # the cluster of the service that will run it is not known here
    parsed, task = checked_job(spec_path(spec), set_ or [], capacity=None)
    if parsed.models.task.api_key or (parsed.models.meta and parsed.models.meta.api_key):
        raise UserError("a queued job cannot carry an inline api_key (it is never stored); "
                        "name an environment variable with api_key_env instead")
    settings = db_settings(db)
    with open_store(settings.database_url, create=True) as store:
        job = job_rules.create(store, parsed, task.name, owner=settings.owner)
    console.print(f"job [bold]{job.id}[/] queued")


def _control(action: str, job: str, db: str | None) -> None:
    from workers import jobs as job_rules

    act = {"cancel": job_rules.cancel, "pause": job_rules.pause, "resume": job_rules.requeue}
    with open_store(db) as store:
        found = find_job(store, job)  # "no job" says which store was looked in
        try:
            record = act[action](store, found.id)
        except (job_rules.JobNotFound, job_rules.JobConflict) as exc:
            raise UserError(str(exc)) from None
    if record.control:
        console.print(f"job {record.id} is running: asked its driver to {record.control}")
    else:
        console.print(f"job {record.id} is {record.status}")


def cancel(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """Cancel a job: a running one stops its calls within a second and keeps what it did."""
    _control("cancel", job, db)


def pause(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """Pause a job after its next generation (`evo requeue` or `evo resume` continues it)."""
    _control("pause", job, db)


def requeue(
    job: JobArg,
    db: DbOption = None,
) -> None:
    """Queue a paused, interrupted, failed or cancelled job again, for the service to resume."""
    _control("resume", job, db)


def worker(
    db: DbOption = None,
    max_jobs: Annotated[
        int | None, typer.Option(help="jobs run at once (default EVO_MAX_JOBS)")
    ] = None,
) -> None:
    """Run queued jobs from the store until stopped by Ctrl-C or SIGTERM.

    Running jobs are then interrupted, and resume from their checkpoints at the next start."""
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

    settings = db_settings(db)
    if max_jobs:
        settings = settings.model_copy(update={"max_jobs": max_jobs})
    store = open_store(settings.database_url, create=True)
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


def reap(
    db: DbOption = None,
    after: Annotated[
        float | None,
        typer.Option(min=0, help="also jobs whose lease was last renewed this many seconds "
                     "ago (for a process you know is gone)"),
    ] = None,
) -> None:
    """Take over running jobs whose lease ran out, as interrupted.

    Then `evo resume` them; whatever still runs them can write nothing more."""
    from workers.runner import reap as reap_jobs

    with open_store(db) as store:
        dead = reap_jobs(store, silent_for_s=after)
    console.print(f"{len(dead)} job(s) marked interrupted" + "".join(f"\n  {j}" for j in dead))
