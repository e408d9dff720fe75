"""The process side of a job's lease: keeping it, and finding out that it is gone.

``LeaseKeeper`` renews every lease of one holder (a service, or a CLI process running a job) from
a thread of its own, so a lease is renewed from the moment of its claim, while model workers
start (which can block for long), and whatever the holder's event loop is doing. ``JobWatch``
runs beside a job's driver and polls its row twice a second: a control request (cancel, pause,
interrupt) is passed on to the job, and a job that no longer runs under the driver's epoch stops
the driver at once, since none of its writes would be accepted any more (``storage/leases.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

from storage import HeldJob, Lease, Store

log = logging.getLogger(__name__)
T = TypeVar("T")

STOPS = ("cancel", "interrupt")  # requests that stop a job at once (a pause waits for a boundary)


def holder_name(kind: str) -> str:
    """A name no other process will use: kind, host, pid and a random suffix."""
    return f"{kind}:{socket.gethostname()[:64]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseKeeper:
    """Renews the leases of ``holder`` every ``ttl_s / 3`` seconds until stopped.

    ``on_renewed`` sees the running jobs the holder still holds after each renewal (in the
    keeper's thread). A renewal that fails (the store is away) is logged and tried again at the
    next beat: the leases run out only if the store stays away for the lease's whole length.
    """

    def __init__(
        self,
        store: Store,
        holder: str,
        ttl_s: float,
        on_renewed: Callable[[list[HeldJob]], None] | None = None,
    ) -> None:
        self.store = store
        self.holder = holder
        self.ttl_s = ttl_s
        self.on_renewed = on_renewed
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> LeaseKeeper:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="evo-lease", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> LeaseKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def renew(self) -> list[HeldJob]:
        held = self.store.renew_leases(self.holder, self.ttl_s)
        if self.on_renewed is not None:
            self.on_renewed(held)
        return held

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self.renew()
            except Exception:
                log.warning("renewing the leases of %s failed", self.holder, exc_info=True)


class JobStopped(Exception):
    """The job was stopped (``kind``: cancel, interrupt, or lost) before its driver ran."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class JobWatch:
    """Polls one job's row for its driver: control requests and the lease's epoch.

    ``requested`` is the control request acted on (``cancel`` replaces the others), ``lost`` is
    true once the job no longer runs under the lease. Either stop sets ``stopping`` (a
    ``threading.Event``, for start-up work in threads) and calls the ``on_stop`` callbacks.
    """

    POLL_S = 0.5

    def __init__(self, store: Store, lease: Lease) -> None:
        self.store = store
        self.lease = lease
        self.requested: str | None = None
        self.lost = False
        self.stopping = threading.Event()
        self._on_stop: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JobWatch:
        self._task = asyncio.create_task(self._poll())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def on_stop(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` when the job is stopped (at once, if it already is)."""
        self._on_stop.append(fn)
        if self.stopping.is_set():
            fn()

    @property
    def stopped_as(self) -> str | None:
        """``lost``, ``cancel`` or ``interrupt`` once the job is to stop at once, else None."""
        if self.lost:
            return "lost"
        return self.requested if self.requested in STOPS else None

    async def until_stopped(self, work: Awaitable[T]) -> T:
        """Await ``work`` unless the job is stopped first (then ``JobStopped``; the work, if a
        thread, is left to notice ``stopping``)."""
        job = asyncio.ensure_future(work)
        stopped = asyncio.get_running_loop().create_future()
        self.on_stop(lambda: stopped.done() or stopped.set_result(None))
        await asyncio.wait([job, stopped], return_when=asyncio.FIRST_COMPLETED)
        if job.done():
            return job.result()
        job.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, not lost
        raise JobStopped(self.stopped_as or "cancel")

    async def check(self) -> None:
        """Read the job's row once and act on it."""
        state = await asyncio.to_thread(self.store.job_control, self.lease.job_id)
        if state is None or state.status != "running" or state.epoch != self.lease.epoch:
            if not self.lost:
                log.warning("job %s: the lease of epoch %d is gone (%s); its driver stops",
                            self.lease.job_id, self.lease.epoch,
                            "deleted" if state is None else f"{state.status}, epoch "
                            f"{state.epoch}")
                self.lost = True
                self._stop()
            return
        if state.control == "cancel" and self.requested != "cancel":
            self.requested = "cancel"
            self._stop()
        elif state.control == "interrupt" and self.requested not in STOPS:
            self.requested = "interrupt"
            self._stop()
        elif state.control == "pause" and self.requested is None:
            self.requested = "pause"

    async def _poll(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # the store is away: the job's own writes will say so
                log.debug("polling job %s failed", self.lease.job_id, exc_info=True)
            await asyncio.sleep(self.POLL_S)

    def _stop(self) -> None:
        self.stopping.set()
        for fn in list(self._on_stop):
            fn()
