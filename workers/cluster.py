"""Where a job's model workers run: Ray actors on a cluster (started here, or joined), or clients
inside the driver's process; ``PoolFactory`` builds a job's pools and closes them."""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from evo.app.settings import Settings
from evo.llm import LLMClient
from evo.spec import ModelSpec
from workers import capacity
from workers.lease import JobStopped
from workers.pool import LocalWorker, Pool, PoolExhausted

log = logging.getLogger(__name__)


_STARTER: ThreadPoolExecutor | None = None  # the thread a local cluster is started from
_STARTER_LOCK = threading.Lock()


def init_ray(settings: Settings) -> None:
    """Connect to ``EVO_RAY_ADDRESS``, or start a local cluster, once per process.

    A local cluster's processes are bound to the thread that starts them (Ray sets
    PR_SET_PDEATHSIG): started from a short-lived thread (a job's pools are built in one), they
    would be killed when it ends, and the process's next job would find no cluster. So they
    are started from the main thread, or else from one thread kept for the process's life.

    Quietly: Ray's start-up notices (the authentication mode, a SIGTERM handler it does not
    set from a thread) would break into a command's output; its errors still show."""
    global _STARTER
    if threading.current_thread() is threading.main_thread():
        _start_ray(settings)
        return
    with _STARTER_LOCK:
        if _STARTER is None:
            _STARTER = ThreadPoolExecutor(1, thread_name_prefix="evo-ray")
    _STARTER.submit(_start_ray, settings).result()


def _start_ray(settings: Settings) -> None:
    import ray

    if not ray.is_initialized():
        extra: dict[str, Any] = {}
        if settings.ray_address is None:
            # Ray runs its workers at niceness 15; model actors are where a job's work is done,
            # and at 15 they lose the CPU to any other process on the machine (3x slower with
            # one busy neighbour on 2 cores). A cluster Evo joins keeps its own setting.
            extra["_system_config"] = {"worker_niceness": 0}
        _keep_own_signal_handlers()
        with _ray_log_level(logging.ERROR):
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


def _keep_own_signal_handlers() -> None:
    """Ray's core installs a native handler for SIGTERM (among crash signals) in the process
    that connects, which prints a stack dump before passing the signal on: a service stopped by
    SIGTERM would print it on every clean stop. This process keeps its own handlers; Ray's
    workers keep theirs, for real crashes."""
    from ray._private import ray_constants

    if hasattr(ray_constants, "RAY_DISABLE_FAILURE_SIGNAL_HANDLER"):
        ray_constants.RAY_DISABLE_FAILURE_SIGNAL_HANDLER = True


@contextlib.contextmanager
def _ray_log_level(level: int) -> Iterator[None]:
    """Ray's own logger (it has its own handler) at ``level`` for the time of the block."""
    ray_log = logging.getLogger("ray")
    before = ray_log.level
    ray_log.setLevel(max(level, before))
    try:
        yield
    finally:
        ray_log.setLevel(before)


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
                    # its process died (out of memory, killed): the job fails with the reason
                    # in one line, as it does when every worker dies later
                    first = next((ln for ln in str(exc).splitlines() if ln.strip()), "")
                    raise PoolExhausted(
                        f"a model worker died while it started: {type(exc).__name__}: "
                        f"{first.strip()}") from exc
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
