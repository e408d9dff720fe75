"""How a job starts in this process: build the store, the pools and the driver, run to the end.

``optimize`` is the Python API (``evo.optimize``) and what ``evo run`` calls. LLM workers are Ray
actors by default (a local cluster is started unless ``EVO_RAY_ADDRESS`` names one); with
``EVO_EXECUTOR=inprocess`` they are clients inside this process.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from evo.compare import Run, run_specs
from evo.events import InProcessBus, JobEnded
from evo.llm import LLMClient
from evo.programs import ProgramTask
from evo.settings import Settings
from evo.spec import JobSpec, ModelSpec
from evo.spec_io import load_spec, parse_spec
from evo.task import Task, load_task
from storage import Lease, LeaseLost, Store
from workers import capacity, faults, jobs
from workers.admission import check_job
from workers.cache import ResponseCache
from workers.driver import LOST, STOPS, Driver, JobResult
from workers.lease import JobStopped, JobWatch, LeaseKeeper, holder_name
from workers.pool import LocalWorker, Pool
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
    """Run one job to completion and return its leaderboard.

    ``spec`` is a JobSpec, a mapping, or a path to a YAML/JSON file. ``clients`` (``{"task": ...,
    "meta": ...}``) replaces the spec's model endpoints with ready client objects, in process.
    A spec that cannot run is refused (``SpecError``) before any job is stored.
    """
    spec = _as_spec(spec, overrides)
    settings = settings or Settings()
    task = load_task(spec.task, base_dir=spec._base_dir)
    check_job(spec, task, capacity=None if clients else capacity.cluster_capacity(settings))
    own_store = store is None
    store = store or Store(settings.database_url)
    bus = make_bus(settings)
    for fn in subscribe:
        bus.subscribe(fn)
    try:
        return asyncio.run(run_job(spec, store=store, settings=settings, bus=bus, clients=clients,
                                   task=task))
    finally:
        _close(bus)
        if own_store:
            store.close()


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
            task_pool, meta_pool = await _start_pools(watch, pools, spec, clients)
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
) -> tuple[Pool, Pool]:
    """The task and meta pools, built in a thread so the job's watch goes on meanwhile; a stop
    ends the wait (the thread notices ``stopping`` and gives up within a second)."""
    clients = clients or {}

    def build() -> tuple[Pool, Pool]:
        task_pool = pools.build(spec.models.task, clients.get("task"))
        if spec.models.meta is None and not clients.get("meta"):
            return task_pool, task_pool
        return task_pool, pools.build(spec.models.optimizer, clients.get("meta"))

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
        jobs.create(store, spec, task.name, job_id=job_id, lease=(holder, settings.lease_s))
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
    fields = {"status": status, "reason": reason, "ended_at": datetime.now(UTC),
              "control": None, "control_at": None}
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
    job = store.get_job(job_ref)
    if job is None:
        raise CannotResume(f"no job {job_ref!r} in {store.url}")
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
    from evo.compare import run_of_job

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


def init_ray(settings: Settings) -> None:
    """Connect to ``EVO_RAY_ADDRESS``, or start a local cluster, once per process."""
    import ray

    if not ray.is_initialized():
        extra: dict[str, Any] = {}
        if settings.ray_address is None:
            # Ray runs its workers at niceness 15; model actors are where a job's work is done,
            # and at 15 they lose the CPU to any other process on the machine (3x slower with
            # one busy neighbour on 2 cores). A cluster Evo joins keeps its own setting.
            extra["_system_config"] = {"worker_niceness": 0}
        ray.init(
            address=settings.ray_address,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
            **extra,
        )
        # What exists now (imported modules, Ray's state) lives as long as the process; moved
        # out of the collector's sight, a full collection no longer walks it: ~100 ms pauses
        # of the event loop, several per job, each one holding back every call in flight.
        gc.collect()
        gc.freeze()


class PoolFactory:
    """Builds pools of workers for model specs and closes them all at the end.

    Ray actors are waited for as long as the cluster could hold them (CPUs held by other jobs
    come free); a pool the cluster cannot hold even when idle fails the job after
    ``settings.start_timeout_s`` (a node may be restarting), and a set ``stopping`` ends the wait.
    """

    WAIT_S = 1.0  # between looks at the actors, the cluster and ``stopping``

    def __init__(self, settings: Settings, batch_size: int,
                 stopping: threading.Event | None = None) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self.stopping = stopping
        self._closers: list[Callable[[], None]] = []
        self._taken = 0.0  # CPUs the job's pools so far ask of the cluster

    def build(self, model: ModelSpec, client: LLMClient | None = None) -> Pool:
        if client is not None:
            return Pool([LocalWorker(client)], model=client.model, batch_size=self.batch_size)
        if self.settings.executor == "inprocess" or model.provider == "scripted":
            size = model.workers or (
                max(1, (os.cpu_count() or 1) // model.threads) if model.provider == "local" else 1
            )
            return self._inprocess(model, size)
        return self._ray(model)

    def _inprocess(self, model: ModelSpec, size: int) -> Pool:
        from workers.llm import make_client
        from workers.scripted import ScriptedClient

        def new() -> LLMClient:
            if model.provider == "scripted":
                return ScriptedClient()
            return make_client(model, self.settings)

        clients = [new() for _ in range(size)]
        for c in clients:
            self._closers.append(c.close)
        return Pool(
            [LocalWorker(c) for c in clients],
            model=clients[0].model,
            batch_size=self.batch_size,
            affinity=model.provider == "local",
        )

    def _ray(self, model: ModelSpec) -> Pool:
        import ray

        from workers.actors import ActorWorker, LLMWorker

        init_ray(self.settings)
        if model.provider == "local":
            # one model per ``threads`` CPUs of the whole cluster, not just this machine
            size = capacity.pool_size(model, capacity.ray_capacity(), self._taken)
            self._taken += size * model.threads
            # SPREAD: the pool's actors go to different nodes where the cluster has them
            options: dict[str, Any] = {"num_cpus": model.threads, "scheduling_strategy": "SPREAD"}
        else:
            size = model.workers or 1
            options = {"num_cpus": 0, "max_concurrency": model.concurrency,
                       "scheduling_strategy": "SPREAD"}
        key = model.api_key.get_secret_value() if model.api_key else None
        public = model.model_dump(mode="json")
        handles = [
            LLMWorker.options(**options).remote(public, key, self.settings.redis_url)
            for _ in range(size)
        ]
        self._closers.append(lambda: [ray.kill(h) for h in handles])
        described = self._started(handles, model)
        inflight = 1 if model.provider == "local" else max(1, model.concurrency // self.batch_size)
        return Pool(
            [ActorWorker(h) for h in handles],
            model=described[0][0],
            batch_size=self.batch_size,
            inflight_per_worker=inflight,
            labels=[node for _, node in described],
            affinity=model.provider == "local",
        )

    def _started(self, handles: list[Any], model: ModelSpec) -> list[tuple[str, str]]:
        """(model name, node) of each actor once all have started."""
        import ray
        from ray.exceptions import RayActorError, RayError

        refs = [h.describe.remote() for h in handles]
        short_since: float | None = None
        while True:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=self.WAIT_S)
            if len(ready) == len(refs):
                try:
                    return ray.get(refs)
                except RayActorError as exc:
                    # the worker's own error (a model file that is not there, a key refused)
                    cause = getattr(exc, "cause", None)
                    inner = getattr(cause, "cause", cause)
                    if isinstance(inner, Exception) and not isinstance(inner, RayError):
                        raise inner from exc
                    raise
            if self.stopping is not None and self.stopping.is_set():
                raise JobStopped("stopped")
            if model.provider != "local":
                continue
            short = capacity.shortfall(model.threads, self._taken, capacity.ray_capacity())
            if short is None:
                short_since = None  # the CPUs exist: held by other jobs, they come free
                continue
            short_since = short_since or time.monotonic()
            if time.monotonic() - short_since > self.settings.start_timeout_s:
                raise capacity.CannotSchedule(
                    f"the model workers could not start within "
                    f"{self.settings.start_timeout_s:g} s: {short}")

    def close(self) -> None:
        for close in self._closers:
            try:
                close()
            except Exception:
                log.debug("closing a worker failed", exc_info=True)
        self._closers.clear()


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
