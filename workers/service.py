"""The job service: claims queued jobs from the store, runs each under a lease, and tracks them.

Any number of services may share one store. A job is claimed by one conditional UPDATE that
grants the service a lease under a new epoch (``storage/leases.py``); a thread of the service
renews its leases from the claim on, while the job's model workers start too, and every write of
the job's driver is fenced by the epoch, so a job runs under one driver at a time whatever
fails. Every few seconds the service also takes over jobs whose lease ran out (their service
died: they become interrupted and are queued again, to resume from their last checkpoint) and
enforces cancels that a driver did not act on. A job whose driver process ended without ending
the job (killed, out of memory) is marked interrupted by its service and queued again.

Jobs run either as Ray tasks on the cluster (``EVO_EXECUTOR=ray``, the default: a driver crash
cannot take the service down) or as tasks on the service's own event loop
(``EVO_EXECUTOR=inprocess``). Inline API keys of submitted specs are held here, in memory only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from evo.app.settings import Settings
from evo.events import InProcessBus
from evo.spec import JobSpec
from evo.spec_io import parse_spec
from storage import HeldJob, JobRecord, Lease, Store
from workers import jobs
from workers.capacity import Capacity, cluster_capacity
from workers.driver import LOST
from workers.lease import LeaseKeeper, holder_name
from workers.reasons import tenant_reason

log = logging.getLogger(__name__)

Secrets = dict[str, str]  # model role ("task" | "meta" | "judge") → inline API key

DRIVER_GONE = ("its driver process ended without ending the job; it resumes from its last "
               "checkpoint")
SERVICE_STOPPED = "the service stopped; the job resumes from its last checkpoint"


def with_secrets(spec: JobSpec, secrets: Mapping[str, str]) -> JobSpec:
    """The stored (public) spec with the inline keys given at submission put back."""
    from pydantic import SecretStr

    for role, model in spec.models.roles():
        if role in secrets:
            model.api_key = SecretStr(secrets[role])
    return spec


def secrets_of(spec: JobSpec) -> Secrets:
    return {role: model.api_key.get_secret_value() for role, model in spec.models.roles()
            if model.api_key is not None}


async def run_stored(
    job: JobRecord, lease: Lease, store: Store, settings: Settings, bus: InProcessBus,
    secrets: Secrets,
) -> str:
    """Run (or resume) a claimed job to its end under ``lease``; returns its final status."""
    from workers.runner import end_unstarted, run_job

    try:
        spec = with_secrets(parse_spec(job.spec), secrets)
    except Exception as exc:  # a stored spec this version no longer reads
        reason = f"could not start: {tenant_reason(exc, job.id)}"
        return (await end_unstarted(store, bus, lease, "failed", reason)).status
    try:
        result = await run_job(spec, store=store, settings=settings, bus=bus, lease=lease,
                               resume=True)
    except Exception as exc:
        # the job's end (failed, with its reason) is stored by now; if not, it is here (the
        # write is fenced: it is refused when the job has ended, or moved on)
        reason = tenant_reason(exc, job.id)
        if (await end_unstarted(store, bus, lease, "failed", reason)).status != LOST:
            return "failed"
        state = await asyncio.to_thread(store.job_control, job.id)
        return state.status if state is not None else LOST
    return result.status


def _ray_entry(job_id: str, lease: Lease, settings: dict[str, Any], secrets: Secrets) -> str:
    """A job's driver as a Ray task: its own process on the cluster, its own store connection."""
    from workers.redis_bus import make_bus

    conf = Settings(**settings)
    with Store(conf.database_url) as store:
        job = store.get_job(job_id)
        if job is None:
            return "missing"
        bus = make_bus(conf)
        try:
            return asyncio.run(run_stored(job, lease, store, conf, bus, secrets))
        finally:
            close = getattr(bus, "close", None)
            if close:
                close()


@dataclass
class _Running:
    lease: Lease
    handle: Any  # an asyncio task, or a Ray object ref
    unheld: int = 0  # renewals in a row that found the job no longer held


class JobService:
    """Runs the store's queued jobs, at most ``settings.max_jobs`` at a time."""

    REAP_EVERY_S = 5.0
    STOP_GRACE_S = 10.0  # how long stopping waits for drivers to end as interrupted

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        bus: InProcessBus | None = None,
        poll_s: float = 0.5,
    ) -> None:
        self.store = store
        self.settings = settings
        self.bus = bus or InProcessBus()
        self.poll_s = poll_s
        self.holder = holder_name("service")
        self._secrets: dict[str, Secrets] = {}
        self._running: dict[str, _Running] = {}
        self._keeper = LeaseKeeper(store, self.holder, settings.lease_s, self._renewed)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self._wakeup: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failed: Exception | None = None
        self._started_ray = False
        self.on_end: list[Callable[[str, str], None]] = []

    # --- requests ------------------------------------------------------------------------------

    def submit(self, spec: JobSpec, *, owner: str | None = None) -> JobRecord:
        """Queue a job, refused (``SpecError``) if this service's cluster cannot run it."""
        job = jobs.submit(self.store, spec, owner=owner, capacity=self.capacity())
        if keys := secrets_of(spec):
            self._secrets[job.id] = keys
        self.wake()
        return job

    def capacity(self) -> Capacity | None:
        """CPUs of the cluster this service runs model workers on (None: in-process workers)."""
        return cluster_capacity(self.settings)

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
        self._ready.wait(timeout=120)
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
        """Take over jobs whose lease ran out, enforce cancels left unheeded, and queue every
        interrupted job again; the ids queued."""
        from workers.runner import reap

        dead = reap(self.store)
        cancelled = self.store.enforce_cancels(self.settings.cancel_grace_s)
        again = []
        for job in self.store.list_jobs(status="interrupted", limit=10_000):
            if self.store.transition(job.id, ("interrupted",), status="queued", control=None):
                again.append(job.id)
        if dead or again or cancelled:
            log.info("re-queued %d interrupted job(s) (%d had a lease that ran out); "
                     "cancelled %d job(s) whose driver did not act on the request",
                     len(again), len(dead), len(cancelled))
        return again

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self._wakeup = asyncio.Event()
        try:
            if self.settings.executor == "ray":
                # before any claim: a lease must not wait on a cluster that is still starting
                await asyncio.to_thread(self._start_ray)
            await asyncio.to_thread(self.recover)
        except Exception as exc:  # the store (or the cluster) is unreachable: say so
            self._failed = exc
            self._ready.set()
            return
        self._keeper.start()
        self._ready.set()
        # a lease that ran out is taken over within a third of its length
        reap_every = min(self.REAP_EVERY_S, self.settings.lease_s / 3)
        last_reap = self._loop.time()
        try:
            while not self._stopping.is_set():
                # cleared before claiming: a job submitted while the claim runs wakes the next
                # round at once instead of waiting a poll interval
                self._wakeup.clear()
                await self._collect()
                await self._claim_and_launch()
                if self._loop.time() - last_reap > reap_every:
                    last_reap = self._loop.time()
                    await asyncio.to_thread(self.recover)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_s)
        finally:
            await self._interrupt_all()
            self._keeper.stop()
            if self._started_ray:
                import ray

                # the local cluster this service started goes with it, agents included
                ray.shutdown()

    def _start_ray(self) -> None:
        import ray

        from workers.cluster import init_ray

        if not ray.is_initialized():
            init_ray(self.settings)
            self._started_ray = self.settings.ray_address is None

    async def _claim_and_launch(self) -> None:
        free = self.settings.max_jobs - len(self._running)
        if free <= 0:
            return
        queued = await asyncio.to_thread(
            self.store.list_jobs, status="queued", limit=free, oldest_first=True
        )
        for job in queued:
            lease = await asyncio.to_thread(
                self.store.claim_job, job.id, self.holder, self.settings.lease_s
            )
            if lease is None:
                continue  # another service took it, or it was cancelled meanwhile
            self._launch(job, lease)

    def _launch(self, job: JobRecord, lease: Lease) -> None:
        secrets = self._secrets.get(job.id, {})
        log.info("starting job %s (%s on %s), epoch %d", job.id, job.algorithm, job.task,
                 lease.epoch)
        if self.settings.executor == "ray":
            import ray

            entry = ray.remote(num_cpus=0, max_retries=0)(_ray_entry)
            handle = entry.remote(job.id, lease, self.settings.model_dump(), secrets)
        else:
            handle = asyncio.create_task(
                run_stored(job, lease, self.store, self.settings, self.bus, secrets)
            )
        self._running[job.id] = _Running(lease, handle)

    def _renewed(self, held: list[HeldJob]) -> None:
        """After each renewal (keeper thread): a driver whose job this service no longer holds
        under its epoch (taken over, or a cancel enforced) is stopped, if it has not stopped by
        itself by the next renewal (it finds out within a second and writes nothing more)."""
        mine = {h.job_id: h.epoch for h in held}
        for job_id, run in list(self._running.items()):
            if mine.get(job_id) == run.lease.epoch:
                run.unheld = 0
                continue
            run.unheld += 1
            if run.unheld >= 2 and self._loop is not None:
                self._loop.call_soon_threadsafe(self._kill, job_id)

    def _kill(self, job_id: str) -> None:
        run = self._running.get(job_id)
        if run is None:
            return
        log.warning("job %s: stopping its driver, which no longer holds the job", job_id)
        if isinstance(run.handle, asyncio.Task):
            run.handle.cancel()
        else:
            import ray

            ray.cancel(run.handle, force=True)

    async def _collect(self) -> None:
        """Forget jobs whose driver ended; a job its driver left running (the process died) is
        interrupted under a new epoch, to be queued again."""
        for job_id, run in list(self._running.items()):
            status = self._finished(run.handle)
            if status is None:
                continue
            del self._running[job_id]
            state = await asyncio.to_thread(self.store.job_control, job_id)
            if (state is not None and state.status == "running"
                    and state.epoch == run.lease.epoch):
                log.warning("job %s: %s (%s)", job_id, DRIVER_GONE, status)
                status = await asyncio.to_thread(self.store.stop_running, job_id,
                                                 run.lease.epoch, "interrupted",
                                                 DRIVER_GONE) or status
            if status != "interrupted":  # an interrupted job may run here again
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
        except Exception as exc:  # the driver process died, or the task was cancelled
            return f"{LOST}: {type(exc).__name__}"

    async def _interrupt_all(self) -> None:
        """On shutdown: ask each running driver to stop as interrupted, wait a little, then
        interrupt what is left from here (fencing those drivers out) and stop them."""
        for job_id in list(self._running):
            await asyncio.to_thread(self.store.request_control, job_id, "interrupt")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.STOP_GRACE_S
        while self._running and loop.time() < deadline:
            await self._collect()
            await asyncio.sleep(0.2)
        for job_id, run in list(self._running.items()):
            # whatever it managed to write, the job resumes from its checkpoint later
            await asyncio.to_thread(self.store.stop_running, job_id, run.lease.epoch,
                                    "interrupted", SERVICE_STOPPED)
            self._kill(job_id)
        self._running.clear()
