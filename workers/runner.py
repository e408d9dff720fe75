"""How a job starts in this process: build the store, the pools and the driver, run to the end.

``optimize`` is the Python API (``evo.optimize``) and what ``evo run`` calls. LLM workers are Ray
actors by default (a local cluster is started unless ``EVO_RAY_ADDRESS`` names one); with
``EVO_EXECUTOR=inprocess`` they are clients inside this process.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from evo.compare import Run, run_specs
from evo.events import InProcessBus
from evo.llm import LLMClient
from evo.programs import ProgramTask
from evo.settings import Settings
from evo.spec import JobSpec, ModelSpec
from evo.spec_io import load_spec, parse_spec
from evo.task import Task, load_task
from storage import Store
from workers import faults
from workers.cache import ResponseCache
from workers.driver import Driver, JobResult
from workers.pool import LocalWorker, Pool
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
    """
    spec = _as_spec(spec, overrides)
    settings = settings or Settings()
    own_store = store is None
    store = store or Store(settings.database_url)
    bus = make_bus(settings)
    for fn in subscribe:
        bus.subscribe(fn)
    try:
        return asyncio.run(run_job(spec, store=store, settings=settings, bus=bus, clients=clients))
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
    clients: Mapping[str, LLMClient] | None = None,
    cache: ResponseCache | None = None,
    job_id: str | None = None,
    resume: bool = False,
) -> JobResult:
    faults.install(store.engine)
    task = load_task(spec.task, base_dir=spec._base_dir)
    check_budget(spec, task)
    own_cache = cache is None
    cache = cache if cache is not None else make_cache(settings, settings.cache_entries)
    pools = PoolFactory(settings, spec.evaluation.batch_size)
    try:
        task_pool = pools.build(spec.models.task, (clients or {}).get("task"))
        if spec.models.meta is None and not (clients or {}).get("meta"):
            meta_pool = task_pool
        else:
            meta_pool = pools.build(spec.models.optimizer, (clients or {}).get("meta"))
        driver = Driver(
            spec,
            task,
            store=store,
            task_pool=task_pool,
            meta_pool=meta_pool,
            cache=cache,
            bus=bus,
            job_id=job_id or uuid.uuid4().hex,
        )
        return await driver.run(resume=resume)
    finally:
        pools.close()
        if own_cache:
            _close(cache)


RESUMABLE = ("interrupted", "failed", "cancelled", "paused", "running")


class CannotResume(ValueError):
    """The job is not in a state that can be resumed (or is still alive)."""


def resume(
    job_ref: str,
    *,
    store: Store,
    settings: Settings | None = None,
    subscribe: Iterable[Callable] = (),
    stale_after_s: float = 3 * Driver.HEARTBEAT_S,
) -> JobResult:
    """Continue a stored job from its last checkpoint (``evo resume``)."""
    settings = settings or Settings()
    job = store.get_job(job_ref)
    if job is None:
        raise CannotResume(f"no job {job_ref!r} in {store.url}")
    if job.status not in RESUMABLE:
        raise CannotResume(f"job {job.id[:8]} is {job.status}; only jobs that are "
                           f"{', '.join(RESUMABLE[:4])} (or running with a dead driver) resume")
    if job.status == "running" and not is_stale(job, stale_after_s):
        raise CannotResume(f"job {job.id[:8]} is running (its driver reported within the last "
                           f"{stale_after_s:.0f} s); cancel it or wait for the reaper")
    spec = parse_spec(job.spec)
    bus = make_bus(settings)
    for fn in subscribe:
        bus.subscribe(fn)
    try:
        return asyncio.run(run_job(spec, store=store, settings=settings, bus=bus, job_id=job.id,
                                   resume=True))
    finally:
        _close(bus)


def is_stale(job: Any, after_s: float) -> bool:
    from datetime import UTC, datetime

    beat = job.heartbeat_at or job.started_at or job.created_at
    return (datetime.now(UTC) - beat).total_seconds() > after_s


def reap(store: Store, *, stale_after_s: float = 3 * Driver.HEARTBEAT_S) -> list[str]:
    """Mark running jobs whose driver went silent as interrupted, so they can be resumed."""
    running = store.list_jobs(status="running", limit=10_000)
    dead = [j for j in running if is_stale(j, stale_after_s)]
    for job in dead:
        store.update_job(job.id, status="interrupted",
                         reason=f"driver silent for over {stale_after_s:.0f} s")
    return [j.id for j in dead]


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


def check_budget(spec: JobSpec, task: Task | ProgramTask) -> None:
    """Refuse a call budget that cannot even pay for the final scoring."""
    from evo.spec_io import FieldError, SpecError
    from workers.driver import final_reserve, seed_count

    calls, reserve = spec.budget.calls, final_reserve(spec, task)
    if calls is not None and calls <= reserve:
        raise SpecError(
            [
                FieldError(
                    ("budget", "calls"),
                    f"{calls} calls cannot pay for the search: the final scoring alone reserves "
                    f"{reserve} (top_k={spec.evaluation.top_k} candidates and "
                    f"{seed_count(task)} seed prompts on "
                    f"{len(task.split('dev'))} dev examples"
                    f"{', 2 prompts on test' if spec.evaluation.test else ''}); raise "
                    "budget.calls or lower evaluation.top_k",
                )
            ]
        )


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
    """Builds pools of workers for model specs and closes them all at the end."""

    def __init__(self, settings: Settings, batch_size: int) -> None:
        self.settings = settings
        self.batch_size = batch_size
        self._closers: list[Callable[[], None]] = []

    def build(self, model: ModelSpec, client: LLMClient | None = None) -> Pool:
        if client is not None:
            return Pool([LocalWorker(client)], model=client.model, batch_size=self.batch_size)
        size = model.workers or (
            max(1, (os.cpu_count() or 1) // model.threads) if model.provider == "local" else 1
        )
        if self.settings.executor == "inprocess" or model.provider == "scripted":
            return self._inprocess(model, size)
        return self._ray(model, size)

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

    def _ray(self, model: ModelSpec, size: int) -> Pool:
        import ray

        from workers.actors import ActorWorker, LLMWorker

        init_ray(self.settings)
        if model.workers is None and model.provider == "local":
            # one model per core budget of the whole cluster, not just this machine
            size = max(1, int(ray.cluster_resources().get("CPU", 1)) // model.threads)
        key = model.api_key.get_secret_value() if model.api_key else None
        public = model.model_dump(mode="json")
        # SPREAD: the pool's actors go to different nodes where the cluster has them
        if model.provider == "local":
            options = {"num_cpus": model.threads, "scheduling_strategy": "SPREAD"}
        else:
            options = {"num_cpus": 0, "max_concurrency": model.concurrency,
                       "scheduling_strategy": "SPREAD"}
        handles = [
            LLMWorker.options(**options).remote(public, key, self.settings.redis_url)
            for _ in range(size)
        ]
        described = ray.get([h.describe.remote() for h in handles])
        name = described[0][0]
        self._closers.append(lambda: [ray.kill(h) for h in handles])
        inflight = 1 if model.provider == "local" else max(1, model.concurrency // self.batch_size)
        return Pool(
            [ActorWorker(h) for h in handles],
            model=name,
            batch_size=self.batch_size,
            inflight_per_worker=inflight,
            labels=[node for _, node in described],
            affinity=model.provider == "local",
        )

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
