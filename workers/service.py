"""The service's runner: claims queued jobs from the store, runs each, and tracks them.

Any number of services may share one store: a job is claimed by one conditional UPDATE, so it
runs once. At start-up the service marks jobs whose driver went silent as interrupted and queues
every interrupted job again, so it resumes from its last checkpoint; it keeps doing so while it
runs. Jobs run either as Ray tasks on the cluster (``EVO_EXECUTOR=ray``, the default: a driver
crash cannot take the service down) or as tasks on the service's own event loop
(``EVO_EXECUTOR=inprocess``). Inline API keys of submitted specs are held here, in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from evo.events import InProcessBus
from evo.settings import Settings
from evo.spec import JobSpec
from evo.spec_io import parse_spec
from storage import JobRecord, Store
from workers import jobs
from workers.driver import Driver

log = logging.getLogger(__name__)

Secrets = dict[str, str]  # model role ("task" | "meta") → inline API key


def with_secrets(spec: JobSpec, secrets: Mapping[str, str]) -> JobSpec:
    """The stored (public) spec with the inline keys given at submission put back."""
    from pydantic import SecretStr

    if "task" in secrets:
        spec.models.task.api_key = SecretStr(secrets["task"])
    if "meta" in secrets and spec.models.meta is not None:
        spec.models.meta.api_key = SecretStr(secrets["meta"])
    return spec


def secrets_of(spec: JobSpec) -> Secrets:
    out = {}
    if spec.models.task.api_key is not None:
        out["task"] = spec.models.task.api_key.get_secret_value()
    if spec.models.meta is not None and spec.models.meta.api_key is not None:
        out["meta"] = spec.models.meta.api_key.get_secret_value()
    return out


async def run_stored(
    job: JobRecord, store: Store, settings: Settings, bus: InProcessBus, secrets: Secrets
) -> str:
    """Run (or resume) a claimed job to its end; returns its final status."""
    from workers.runner import run_job

    try:
        spec = with_secrets(parse_spec(job.spec), secrets)
        result = await run_job(spec, store=store, settings=settings, bus=bus, job_id=job.id,
                               resume=True)
    except Exception as exc:
        # A job that failed before its driver started (its data file vanished, its endpoint
        # has no key) would otherwise stay "running" until reaped, and be retried forever.
        reason = f"could not start: {type(exc).__name__}: {exc}"
        if await asyncio.to_thread(store.transition, job.id, ("running",), status="failed",
                                   reason=reason, ended_at=datetime.now(UTC), control=None):
            log.warning("job %s %s", job.id, reason)
            return "failed"
        raise
    return result.status


def _ray_entry(job_id: str, settings: dict[str, Any], secrets: Secrets) -> str:
    """A job's driver as a Ray task: its own process on the cluster, its own store connection."""
    from workers.redis_bus import make_bus

    conf = Settings(**settings)
    with Store(conf.database_url) as store:
        job = store.get_job(job_id)
        if job is None:
            return "missing"
        bus = make_bus(conf)
        try:
            return asyncio.run(run_stored(job, store, conf, bus, secrets))
        finally:
            close = getattr(bus, "close", None)
            if close:
                close()


class JobService:
    """Runs the store's queued jobs, at most ``settings.max_jobs`` at a time."""

    REAP_EVERY_S = 15.0

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        bus: InProcessBus | None = None,
        poll_s: float = 0.5,
        stale_after_s: float = 3 * Driver.HEARTBEAT_S,
    ) -> None:
        self.store = store
        self.settings = settings
        self.bus = bus or InProcessBus()
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s
        self._secrets: dict[str, Secrets] = {}
        self._running: dict[str, Any] = {}  # job id → asyncio task or Ray object ref
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failed: Exception | None = None
        self.on_end: list[Callable[[str, str], None]] = []

    # --- requests ------------------------------------------------------------------------------

    def submit(self, spec: JobSpec, *, owner: str | None = None) -> JobRecord:
        job = jobs.submit(self.store, spec, owner=owner)
        if keys := secrets_of(spec):
            self._secrets[job.id] = keys
        self.wake()
        return job

    def resume(self, job_ref: str) -> JobRecord:
        job = jobs.requeue(self.store, job_ref)
        self.wake()
        return job

    def wake(self) -> None:
        """Look at the queue now rather than at the next poll."""
        if self._loop is not None and self._wakeup is not None:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    @property
    def running(self) -> list[str]:
        return list(self._running)

    # --- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Run the service's loop in a background thread (returns once it is accepting work)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._thread_main, name="evo-service", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=60)
        if self._failed is not None:
            self._thread = None
            raise self._failed

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop claiming jobs; running jobs stop at once and are marked interrupted, so the next
        start-up (of this or any service on the store) resumes them from their checkpoints."""
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)  # type: ignore[union-attr]
        self._thread.join(timeout_s)
        self._thread = None

    def recover(self) -> list[str]:
        """Interrupted jobs, and running ones whose driver went silent, go back to the queue."""
        from workers.runner import reap

        dead = reap(self.store, stale_after_s=self.stale_after_s)
        again = []
        for job in self.store.list_jobs(status="interrupted", limit=10_000):
            if self.store.transition(job.id, ("interrupted",), status="queued", control=None):
                again.append(job.id)
        if dead or again:
            log.info("re-queued %d interrupted job(s) (%d had a silent driver)",
                     len(again), len(dead))
        return again

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    _wakeup: asyncio.Event | None = None

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        try:
            await asyncio.to_thread(self.recover)
        except Exception as exc:  # the store is unreachable: say so to whoever started us
            self._failed = exc
            self._ready.set()
            return
        self._ready.set()
        last_reap = self._loop.time()
        try:
            while not self._stopping.is_set():
                # cleared before claiming: a job submitted while the claim runs wakes the next
                # round at once instead of waiting a poll interval
                self._wakeup.clear()
                self._collect()
                await self._claim_and_launch()
                if self._loop.time() - last_reap > self.REAP_EVERY_S:
                    last_reap = self._loop.time()
                    await asyncio.to_thread(self.recover)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_s)
        finally:
            await self._interrupt_all()

    async def _claim_and_launch(self) -> None:
        free = self.settings.max_jobs - len(self._running)
        if free <= 0:
            return
        queued = await asyncio.to_thread(
            self.store.list_jobs, status="queued", limit=free, oldest_first=True
        )
        for job in queued:
            if not await asyncio.to_thread(
                self.store.transition, job.id, ("queued",), status="running"
            ):
                continue  # another service took it
            self._launch(job)

    def _launch(self, job: JobRecord) -> None:
        secrets = self._secrets.get(job.id, {})
        log.info("starting job %s (%s on %s)", job.id, job.algorithm, job.task)
        if self.settings.executor == "ray":
            import ray

            from workers.runner import init_ray

            init_ray(self.settings)
            entry = ray.remote(num_cpus=0, max_retries=0)(_ray_entry)
            self._running[job.id] = entry.remote(job.id, self.settings.model_dump(), secrets)
        else:
            self._running[job.id] = asyncio.create_task(
                run_stored(job, self.store, self.settings, self.bus, secrets)
            )

    def _collect(self) -> None:
        """Forget jobs whose run ended (its driver has written the outcome)."""
        for job_id, handle in list(self._running.items()):
            status = self._finished(handle)
            if status is None:
                continue
            del self._running[job_id]
            self._secrets.pop(job_id, None)
            log.info("job %s ended: %s", job_id, status)
            for fn in self.on_end:
                fn(job_id, status)

    def _finished(self, handle: Any) -> str | None:
        if isinstance(handle, asyncio.Task):
            if not handle.done():
                return None
            if handle.cancelled():
                return "cancelled"
            exc = handle.exception()
            return f"failed: {exc}" if exc else handle.result()
        import ray

        ready, _ = ray.wait([handle], timeout=0)
        if not ready:
            return None
        try:
            return str(ray.get(ready[0]))
        except Exception as exc:  # the driver recorded its own failure; the task just reports
            return f"failed: {exc}"

    async def _interrupt_all(self) -> None:
        """On shutdown: ask each running driver to stop as interrupted, then wait for them."""
        ids = list(self._running)
        for job_id in ids:
            await asyncio.to_thread(self.store.transition, job_id, ("running",),
                                    control="interrupt")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while self._running and loop.time() < deadline:
            self._collect()
            await asyncio.sleep(0.2)
        for job_id, handle in list(self._running.items()):
            if isinstance(handle, asyncio.Task):
                handle.cancel()
            else:
                import ray

                ray.cancel(handle, force=True)
            # whatever it managed to write, the job resumes from its checkpoint later
            await asyncio.to_thread(self.store.transition, job_id, ("running",),
                                    status="interrupted", reason="the service stopped",
                                    control=None)
        self._running.clear()
