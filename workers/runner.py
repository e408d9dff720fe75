"""How a job starts in this process: build the store, the pools and the driver, run to the end.

``optimize`` is the Python API (``evo.optimize``) and what ``evo run`` calls. LLM workers are Ray
actors by default (a local cluster is started unless ``EVO_RAY_ADDRESS`` names one); with
``EVO_EXECUTOR=inprocess`` they are clients inside this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evo.app.compare import Run, run_specs
from evo.app.settings import Settings, default_database_url, default_store_path
from evo.events import InProcessBus, JobEnded
from evo.llm import LLMClient
from evo.programs import ProgramTask
from evo.spec import JobSpec, ModelSpec
from evo.spec_io import load_spec, parse_spec
from evo.task import Task, load_task
from storage import JobUpdate, Lease, LeaseLost, Store
from workers import capacity, faults, jobs
from workers.admission import check_job
from workers.cache import ResponseCache
from workers.cluster import PoolFactory
from workers.driver import LOST, STOPS, Driver, JobResult
from workers.lease import JobStopped, JobWatch, LeaseKeeper, holder_name
from workers.pool import Pool
from workers.reasons import tenant_reason
from workers.redis_bus import make_bus
from workers.redis_cache import make_cache

log = logging.getLogger(__name__)


def optimize(
    spec: JobSpec | Mapping[str, Any] | str | Path,
    *,
    overrides: Iterable[str] = (),
    store: Store | None = None,
    settings: Settings | None = None,
    subscribe: Iterable[Callable] = (),
    clients: Mapping[str, LLMClient] | None = None,
) -> JobResult:
    """Run one job to completion and return its leaderboard, whose prompts apply to new inputs
    with the job's model (``result.best.predict(x)``, ``workers/predict.py``).

    ``spec`` is a JobSpec, a mapping, or a path to a YAML/JSON file. ``clients`` (``{"task": ...,
    "meta": ...}``) replaces the spec's model endpoints with ready client objects, in process.
    A spec that cannot run is refused (``SpecError``) before any job is stored.
    """
    spec = _as_spec(spec, overrides)
    settings = settings or Settings()
    task = load_task(spec.task, base_dir=spec._base_dir)
    check_job(spec, task, capacity=None if clients else capacity.cluster_capacity(settings))
    own_store = store is None
    if own_store and settings.database_url == default_database_url():
        default_store_path().parent.mkdir(parents=True, exist_ok=True)  # on first use
    store = store or Store(settings.database_url)
    bus = make_bus(settings)
    for fn in subscribe:
        bus.subscribe(fn)
    try:
        result = asyncio.run(run_job(spec, store=store, settings=settings, bus=bus,
                                     clients=clients, task=task))
    finally:
        _close(bus)
        if own_store:
            store.close()
    # ``result.best.predict(x)``: the job's task model, in this process (built on first use)
    from workers.predict import Predictor, bind

    client = (clients or {}).get("task")
    return bind(result, Predictor(spec, task, client=client, settings=settings,
                                  job_id=result.job_id))


async def run_job(
    spec: JobSpec,
    *,
    store: Store,
    settings: Settings,
    bus: InProcessBus,
    lease: Lease | None = None,
    clients: Mapping[str, LLMClient] | None = None,
    cache: ResponseCache | None = None,
    job_id: str | None = None,
    resume: bool = False,
    task: Task | ProgramTask | None = None,
) -> JobResult:
    """Run a job to its end under its lease.

    From the claim on, the job's row is watched (a cancel while its model workers start stops
    it there), the workers start within a bounded time (``start_timeout_s``) or the job fails
    with the reason, and every write is fenced by the lease. Without a ``lease`` the job is
    claimed here, by this process, and the lease is renewed here until the job ends: a new job
    is created running; with ``resume`` a stored one is taken from a stopped state.
    """
    faults.install(store.engine)
    async with contextlib.AsyncExitStack() as stack:
        if lease is None:
            if task is None and not resume:  # a task that cannot load stores no job
                task = load_task(spec.task, base_dir=spec._base_dir)
            lease = await asyncio.to_thread(
                _claim_here, store, spec, task, settings, job_id or uuid.uuid4().hex, resume)
            stack.enter_context(LeaseKeeper(store, lease.holder, settings.lease_s))
        watch = await stack.enter_async_context(JobWatch(store, lease))
        pools = PoolFactory(settings, spec.evaluation.batch_size, stopping=watch.stopping)
        stack.callback(pools.close)
        try:
            if task is None:
                task = await asyncio.to_thread(load_task, spec.task, base_dir=spec._base_dir)
            task_pool, meta_pool, judge_pool = await _start_pools(watch, pools, spec, clients)
        except JobStopped as stop:
            return await end_unstarted(store, bus, lease, *STOPS.get(stop.kind, (LOST, "")))
        except Exception as exc:
            reason = tenant_reason(exc, lease.job_id)
            await end_unstarted(store, bus, lease, "failed", f"could not start: {reason}")
            raise
        if cache is None:
            cache = make_cache(settings, settings.cache_entries)
            stack.callback(_close, cache)
        driver = Driver(
            spec,
            task,
            store=store,
            task_pool=task_pool,
            meta_pool=meta_pool,
            judge_pool=judge_pool,
            cache=cache,
            bus=bus,
            job_id=lease.job_id,
            lease=lease,
            watch=watch,
            lease_s=settings.lease_s,
        )
        return await driver.run(resume=resume)


async def _start_pools(
    watch: JobWatch, pools: PoolFactory, spec: JobSpec,
    clients: Mapping[str, LLMClient] | None,
) -> tuple[Pool, Pool, Pool]:
    """The task, meta and judge pools (a role without a model of its own is served by the task
    pool), built in a thread so the job's watch goes on meanwhile; a stop ends the wait (the
    thread notices ``stopping`` and gives up within a second)."""
    clients = clients or {}

    def build() -> tuple[Pool, Pool, Pool]:
        task_pool = pools.build(spec.models.task, clients.get("task"))

        def own(role: str, model: ModelSpec | None) -> Pool:
            if model is None and not clients.get(role):
                return task_pool
            return pools.build(model or spec.models.task, clients.get(role))

        return task_pool, own("meta", spec.models.meta), own("judge", spec.models.judge)

    started = asyncio.ensure_future(asyncio.to_thread(build))
    try:
        return await watch.until_stopped(started)
    finally:
        if not started.done():  # let it end before the pools are closed, or its actors leak
            with contextlib.suppress(Exception):
                await started


def _claim_here(
    store: Store, spec: JobSpec, task: Task | ProgramTask | None, settings: Settings,
    job_id: str, resume: bool,
) -> Lease:
    """Claim a job for this process: a new one is created running, a stored one resumed."""
    holder = holder_name("cli")
    if not resume:
        assert task is not None
        jobs.create(store, spec, task.name, job_id=job_id, owner=settings.owner,
                    lease=(holder, settings.lease_s))
        return Lease(job_id, 1, holder)
    lease = store.claim_job(job_id, holder, settings.lease_s, from_status=RESUMABLE)
    if lease is None:
        job = store.get_job(job_id)
        raise CannotResume(_why_not(job_id, job))
    return lease


async def end_unstarted(
    store: Store, bus: InProcessBus, lease: Lease, status: str, reason: str
) -> JobResult:
    """End a job whose driver never ran (stopped or failed while its workers started)."""
    if status == LOST:
        return JobResult(lease.job_id, LOST, [], None, {}, reason)
    ended = JobEnded(lease.job_id, status, reason, None, {}, lease.epoch, None)
    fields = JobUpdate(status=status, reason=reason, ended_at=datetime.now(UTC),
                       control=None, control_at=None)
    try:
        await asyncio.to_thread(store.write_batch, lease.job_id, events=[ended.payload()],
                                job=fields, lease=lease)
    except LeaseLost:
        return JobResult(lease.job_id, LOST, [], None, {}, reason)
    bus.publish(ended)
    return JobResult(lease.job_id, status, [], None, {}, reason)


RESUMABLE = ("interrupted", "failed", "cancelled", "paused", "running")


class CannotResume(ValueError):
    """The job is not in a state that can be resumed (or is still alive)."""


def resume(
    job_ref: str,
    *,
    store: Store,
    settings: Settings | None = None,
    subscribe: Iterable[Callable] = (),
) -> JobResult:
    """Continue a stored job from its last checkpoint (``evo resume``): one that stopped, or
    one still marked running whose lease has run out (its process is gone)."""
    settings = settings or Settings()
    from storage.jobs import missing_job

    try:
        job = store.get_job(job_ref)
    except ValueError as exc:  # an ambiguous prefix: the message lists what it matches
        raise CannotResume(str(exc)) from None
    if job is None:
        raise CannotResume(f"{missing_job(job_ref)} in {store.url}")
    if job.status not in RESUMABLE:
        raise CannotResume(_why_not(job.id, job))
    spec = parse_spec(job.spec)
    bus = make_bus(settings)
    for fn in subscribe:
        bus.subscribe(fn)
    try:
        return asyncio.run(run_job(spec, store=store, settings=settings, bus=bus, job_id=job.id,
                                   resume=True))
    finally:
        _close(bus)


def _why_not(job_id: str, job: Any) -> str:
    if job is None:
        return f"no job {job_id}"
    if job.status == "running":
        until = job.lease_expires_at.strftime("%H:%M:%S UTC") if job.lease_expires_at else "?"
        return (f"job {job.id[:8]} is running: its lease is held until {until} and renewed "
                "while its process lives; cancel it, or, if that process is gone, wait for "
                "the lease to run out (or `evo reap --after 0`)")
    return (f"job {job.id[:8]} is {job.status}; only jobs that are "
            f"{', '.join(RESUMABLE[:4])} (or running with a lease that ran out) resume")


TAKEOVER_REASON = "its lease ran out: the process running it stopped renewing it"


def reap(store: Store, *, silent_for_s: float | None = None) -> list[str]:
    """Take over running jobs whose lease ran out (with ``silent_for_s``, also those whose lease
    was last renewed that long ago): they become interrupted (or cancelled, or paused, as was
    asked of them), under a new epoch that fences out whatever still runs them."""
    moved = store.take_over_expired(TAKEOVER_REASON, silent_for_s=silent_for_s)
    return [job_id for job_id, _ in moved]


def compare_runs(
    spec: JobSpec,
    algorithms: Sequence[str],
    repeats: int,
    *,
    store: Store,
    settings: Settings,
    progress: Callable[[str], None] = lambda _: None,
    on_run: Callable[[list[Run]], None] = lambda _: None,
    reuse: bool = True,
) -> list[Run]:
    """Run each algorithm ``repeats`` times on the spec's task and budget (``evo compare``).

    With ``reuse``, a run whose exact spec already completed in the store is taken from there,
    so a comparison that was interrupted continues where it stopped. ``on_run`` sees the runs
    so far after each one."""
    from evo.app.compare import run_of_job

    done = _completed_by_spec(store) if reuse else {}
    runs: list[Run] = []
    for name, r, one in run_specs(spec, algorithms, repeats):
        key = _spec_key(one.public_dict())
        if key in done:
            progress(f"{name} #{r + 1} (seed {one.seed}): completed before, job {done[key].id}")
            runs.append(run_of_job(name, r, done[key]))
        else:
            progress(f"running {name} #{r + 1} (seed {one.seed})")
            result = optimize(one, store=store, settings=settings)
            best = result.best
            runs.append(
                Run(
                    name,
                    r,
                    result.job_id,
                    best.dev if best else None,
                    best.test if best else None,
                    best.test_scores if best else (),
                    int(result.stats.get("calls", 0)),
                    int(result.stats.get("tokens", 0)),
                    float(result.stats.get("elapsed_s", 0.0)),
                    float(result.stats.get("usd", 0.0)),
                )
            )
        on_run(runs)
    return runs


def _spec_key(spec: dict[str, Any]) -> str:
    import json

    return json.dumps(spec, sort_keys=True)


def _completed_by_spec(store: Store) -> dict[str, Any]:
    out = {}
    for job in store.list_jobs(status="completed", limit=100_000, oldest_first=True):
        out.setdefault(_spec_key(job.spec), job)
    return out


def _close(thing: object) -> None:
    close = getattr(thing, "close", None)
    if close is not None:
        close()


def _as_spec(spec: JobSpec | Mapping[str, Any] | str | Path, overrides: Iterable[str]) -> JobSpec:
    from evo.spec_io import apply_overrides

    if isinstance(spec, JobSpec):
        if not overrides:
            return spec
        again = parse_spec(apply_overrides(spec.model_dump(mode="json"), overrides))
        again._base_dir = spec._base_dir
        return again
    if isinstance(spec, (str, Path)):
        return load_spec(spec, overrides)
    return parse_spec(apply_overrides(dict(spec), overrides))
