"""What a running job records, queued in the order it happened and written behind it.

Paid calls go out as their round returns (``paid``); candidates, their scores and the ledger rows
of cache hits wait for the job's next step (a generation's end, or a flush), which carries them
with the checkpoint in one transaction. Every write is fenced by the job's lease; the writer
(``workers/write_behind.py``) keeps them in order, so what is stored is always a prefix of what
the job did.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

from evo.candidate import Candidate, Outcome
from storage import EvaluationRecord, JobUpdate, Lease, LLMCallRecord
from storage.protocols import RunRecorder
from workers.write_behind import Paid, WriteBehind


class Recorder:
    def __init__(self, store: RunRecorder, job_id: str, lease: Lease | None) -> None:
        self.store = store
        self.job_id = job_id
        # candidates stored or pending, in the order of their rows (the store's ``seq``)
        self.written: dict[str, int] = {}
        self._candidates: list[Candidate] = []
        self._evaluations: list[EvaluationRecord] = []
        self._calls: list[LLMCallRecord] = []
        self._outcomes: list[tuple[str, str, Outcome]] = []
        # rows recorded so far (stored or pending): what a checkpoint knew of (``rewind``)
        self.evaluations = 0
        self.outcome_rows = 0
        self.fence(lease)

    def fence(self, lease: Lease | None) -> None:
        """Write under ``lease`` from now on (a driver that claims its job itself gets it late)."""
        self.lease = lease
        self._writer = WriteBehind(
            functools.partial(self.store.write_paid, lease=lease), self.job_id,
            functools.partial(self.store.write_batch, lease=lease),
        )

    def known(self, candidates: Sequence[Candidate]) -> None:
        """Candidates stored before a resume: already written, in this order."""
        for cand in candidates:
            self.written[cand.id] = len(self.written)

    def scored(self, cand: Candidate, evaluation: EvaluationRecord) -> None:
        self.made(cand)
        self._evaluations.append(evaluation)
        self.evaluations += 1

    def made(self, cand: Candidate) -> None:
        """A candidate to store (once), scored or not."""
        if cand.id not in self.written:
            self.written[cand.id] = len(self.written)
            self._candidates.append(cand)

    def outcomes(self, candidate_id: str, split: str, outcomes: Sequence[Outcome]) -> None:
        """A final-phase score's per-example results: they go out with the next step."""
        self._outcomes += [(candidate_id, split, o) for o in outcomes]
        self.outcome_rows += len(outcomes)

    def rewind(self, evaluations: int, outcomes: int) -> None:
        """Before a resumed job writes anything: drop the scores and per-example rows stored
        after its checkpoint, which it is about to record again."""
        self.store.rewind(self.job_id, evaluations=evaluations, outcomes=outcomes,
                          lease=self.lease)
        self.evaluations, self.outcome_rows = evaluations, outcomes

    def cached(self, rows: Sequence[LLMCallRecord]) -> None:
        """Ledger rows of calls answered from the cache: they go out with the next step."""
        self._calls += rows

    def paid(self, ledger: list[LLMCallRecord], paid: Paid) -> None:
        """One round of paid calls, stored in the background while the next round goes out."""
        self._writer.put(ledger, paid)

    def step(
        self,
        stats: dict[str, Any],
        *,
        checkpoint: tuple[int, dict] | None = None,
        events: Sequence[dict] = (),
        then: Callable[[], None] | None = None,
    ) -> None:
        """Queue what the job recorded since the last step, after the paid records before it;
        ``then`` runs once it is stored."""
        cands, evals, calls = self._candidates, self._evaluations, self._calls
        outcomes, self._outcomes = self._outcomes, []
        self._candidates, self._evaluations, self._calls = [], [], []
        self._writer.step(
            then,
            candidates=cands,
            evaluations=evals,
            llm_calls=calls,
            outcomes=outcomes,
            checkpoint=checkpoint,
            job=JobUpdate(stats=stats),
            events=list(events),
        )

    async def keep_up(self) -> None:
        """Wait until the step before the last is stored."""
        await self._writer.keep_up()

    async def flush(self, stats: dict[str, Any]) -> None:
        """Store everything the job has recorded, and wait until it is stored."""
        self.step(stats)
        await self._writer.drain()

    async def drain(self) -> None:
        await self._writer.drain()
