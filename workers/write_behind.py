"""Paid-call records written in order, in the background, while the job goes on.

Recording a round of paid calls (ledger rows and responses) takes a transaction: 5–25 ms on
SQLite for a round of 1,000. Waiting for it before the next round is dispatched puts that time
on the job's critical path at every round; here the next round's requests go out while the
write runs. Rounds that finish while a write is running are coalesced into the next one (the
ten single-call meta rounds of a generation become one or two transactions).

What this trades: a SIGKILL within one write's time after a round returns loses that round's
records as well as the round in flight, and those calls are paid again on resume, as calls in
flight at a crash always are. Order is what resuming relies on, and it is kept: one write at a
time, in the order the rounds returned, so what is stored is always a prefix of what was paid,
and a checkpoint is only written after ``drain`` (every paid record before it is stored).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from storage import LLMCallRecord
from workers import faults

Write = Callable[[str, list[LLMCallRecord], list[tuple[int, str, dict[str, Any]]]], None]


class WriteBehind:
    def __init__(self, write: Write, job_id: str) -> None:
        self._write = write
        self._job_id = job_id
        self._ledger: list[LLMCallRecord] = []
        self._paid: list[tuple[int, str, dict[str, Any]]] = []
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None

    def put(self, ledger: list[LLMCallRecord], paid: list[tuple[int, str, dict[str, Any]]]
            ) -> None:
        """Queue one round's records; a write that failed earlier is raised here."""
        self._raise()
        self._ledger += ledger
        self._paid += paid
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._run())

    async def drain(self) -> None:
        """Wait until every queued record is stored (even if the caller is cancelled meanwhile:
        a stopped job's record must hold what it paid for before it reports that it ended)."""
        while self._task is not None and not self._task.done():
            task = self._task
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                if not task.done():
                    await task
                raise
        self._raise()

    async def _run(self) -> None:
        while self._ledger and self._error is None:
            ledger, paid = self._ledger, self._paid
            self._ledger, self._paid = [], []
            try:
                await asyncio.to_thread(self._write, self._job_id, ledger, paid)
            except BaseException as exc:  # kept, and raised to the job at its next step
                self._error = exc
                return
            faults.point("paid")

    def _raise(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error
