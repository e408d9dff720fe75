"""A job's records written in order, in the background, while the job goes on.

Recording a round of paid calls (ledger rows and responses) takes a transaction: 5–25 ms on
SQLite for a round of 1,000, and a generation's end (its candidates, scores and checkpoint)
20–40 ms. Waiting for either before the next round is dispatched puts that time on the job's
critical path; here the next round's requests go out while the write runs. Rounds that finish
while a write is running are coalesced into the next one (the ten single-call meta rounds of a
generation become one or two transactions); a generation's step is a transaction of its own.

A write that fails for a reason that passes (a dropped connection, a restarting server, a
database locked by another writer: the store's ``StoreUnavailable``) is tried again, a few times
with a growing pause, before the failure is handed to the job; the transaction rolled back, so
nothing is written twice. Any other failure is the job's at once.

What this trades: a SIGKILL within one write's time after a round or a generation ends loses
those records as well as the round in flight; the job then resumes from the checkpoint before,
and the calls whose records were lost are paid again, as calls in flight at a crash always are.
Order is what resuming relies on, and it is kept: one write at a time, in the order they were
queued, so what is stored is always a prefix of what the job did, and a checkpoint never lands
before the paid records it counts.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from storage import LLMCallRecord, StoreUnavailable
from workers import faults

Paid = list[tuple[int, str, dict[str, Any]]]
WritePaid = Callable[[str, list[LLMCallRecord], Paid], None]
WriteStep = Callable[..., None]  # Store.write_batch: (job_id, **fields)


@dataclass
class _Rounds:
    """Paid rounds queued back to back: written as one."""

    ledger: list[LLMCallRecord] = field(default_factory=list)
    paid: Paid = field(default_factory=list)


@dataclass
class _Step:
    fields: dict[str, Any]
    then: Callable[[], None] | None


class WriteBehind:
    ATTEMPTS = 4  # a write, then three more after 0.5, 1 and 2 s
    FIRST_PAUSE_S = 0.5

    def __init__(self, write_paid: WritePaid, job_id: str,
                 write_step: WriteStep | None = None) -> None:
        self._write_paid = write_paid
        self._write_step = write_step
        self._job_id = job_id
        self._queue: deque[_Rounds | _Step] = deque()
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._steps = 0  # steps queued or being written
        self._step_landed = asyncio.Event()

    def put(self, ledger: list[LLMCallRecord], paid: Paid) -> None:
        """Queue one round's records; a write that failed earlier is raised here."""
        self._raise()
        if not self._queue or not isinstance(self._queue[-1], _Rounds):
            self._queue.append(_Rounds())
        rounds = self._queue[-1]
        assert isinstance(rounds, _Rounds)
        rounds.ledger += ledger
        rounds.paid += paid
        self._start()

    def step(self, then: Callable[[], None] | None = None, **fields: Any) -> None:
        """Queue one step of the job (``write_step(job_id, **fields)``) after everything queued
        before it; ``then`` runs in this loop once it is stored (say, announcing it). The fields
        must not change after this call: they are written later, from another thread."""
        self._raise()
        if self._write_step is None:
            raise RuntimeError("this writer was made without write_step")
        self._queue.append(_Step(fields, then))
        self._steps += 1
        self._start()

    async def keep_up(self, steps: int = 1) -> None:
        """Wait until at most ``steps`` steps are unwritten: a job that runs faster than its
        store (answers replayed from a cache, a slow database) waits for it here instead of
        queueing without bound, which also bounds what a crash can lose."""
        while self._steps > steps and self._task is not None and not self._task.done():
            self._step_landed.clear()
            await self._step_landed.wait()
        self._raise()

    async def drain(self) -> None:
        """Wait until everything queued is stored (even if the caller is cancelled meanwhile:
        a stopped job's record must hold what it paid for before it reports that it ended).
        What waited behind a failure already raised is written now."""
        if self._queue and self._error is None:
            self._start()
        while self._task is not None and not self._task.done():
            task = self._task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    await task
                raise
        self._raise()

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while self._queue and self._error is None:
            item = self._queue.popleft()
            try:
                await self._write(item)
                if isinstance(item, _Rounds):
                    faults.point("paid")
                elif item.then is not None:
                    item.then()
            except BaseException as exc:  # kept, and raised to the job at its next step
                self._error = exc
                return
            finally:
                if isinstance(item, _Step):
                    self._steps -= 1
                    self._step_landed.set()

    async def _write(self, item: _Rounds | _Step) -> None:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(StoreUnavailable),
            stop=stop_after_attempt(self.ATTEMPTS),
            wait=wait_exponential(multiplier=self.FIRST_PAUSE_S, max=30),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                if isinstance(item, _Rounds):
                    await asyncio.to_thread(self._write_paid, self._job_id, item.ledger,
                                            item.paid)
                else:
                    assert self._write_step is not None
                    await asyncio.to_thread(self._write_step, self._job_id, **item.fields)

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
