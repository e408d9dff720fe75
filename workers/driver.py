"""The job's life: a driver runs one job under its lease, from its claim to its one end.

job row (running) → the search (``workers/search.py``) until the algorithm returns or the budget
ends it → final phase (``workers/final.py``) → the job's end, written once, fenced by the lease.
A cancel, an interrupt or a lost lease stops the search between calls; a pause waits for the next
generation's checkpoint. Whatever ends the job, what it paid for is stored before it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from evo.algorithms import Algorithm, get_algorithm
from evo.candidate import Candidate
from evo.events import InProcessBus, JobEnded, JobStarted
from evo.programs import ProgramTask
from evo.spec import JobSpec
from evo.task import Task
from storage import JOB_STATUSES, JobUpdate, Lease, LeaseLost, Store
from workers import faults, jobs
from workers.cache import ResponseCache
from workers.final import Entry
from workers.lease import JobWatch, LeaseKeeper, holder_name
from workers.pareto import cost_per_call, front_of
from workers.pool import Pool
from workers.reasons import tenant_reason
from workers.recorder import Recorder
from workers.sandbox import Sandbox, SubprocessSandbox
from workers.search import JobPaused, Search

log = logging.getLogger(__name__)

# how a job that is stopped at once ends: the status and reason it is stored with
STOPS = {
    "cancel": ("cancelled", "cancelled by request"),
    "interrupt": ("interrupted", "the service stopped; the job resumes from its last checkpoint"),
}
LOST = "lost"  # a driver's result when its lease was gone: it wrote nothing more


@dataclass
class JobResult:
    job_id: str
    status: str
    leaderboard: list[Entry]
    seed: Entry | None
    stats: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None
    # the job's task and model for ``predict`` (set by ``evo.optimize``)
    predictor: Any = field(default=None, repr=False, compare=False)

    @property
    def best(self) -> Entry | None:
        return self.leaderboard[0] if self.leaderboard else None

    def predict(
        self, inputs: str | Sequence[str], candidate: Entry | Candidate | str | None = None
    ) -> str | list[str]:
        """A prompt of this job applied to new input(s): the best (default), a leaderboard
        entry, a candidate, or the id (or unique prefix) of one on the leaderboard or the best
        seed. See ``Entry.predict``."""
        if self.predictor is None:
            raise RuntimeError(f"job {self.job_id} has no model to predict with here: use "
                               f"`evo predict {self.job_id[:8]}`")
        if candidate is None:
            if self.best is None:
                from evo.app.export import NoBestPrompt

                raise NoBestPrompt(self.job_id, self.status)
            candidate = self.best
        if isinstance(candidate, str):
            entries = self.leaderboard + ([self.seed] if self.seed else [])
            found = {e.candidate.id: e for e in entries if e.candidate.id.startswith(candidate)}
            if len(found) != 1:
                raise LookupError(f"{len(found) or 'no'} candidate(s) of the leaderboard or the "
                                  f"best seed start with {candidate!r}")
            candidate = next(iter(found.values()))
        chosen = candidate.candidate if isinstance(candidate, Entry) else candidate
        return self.predictor.outputs(chosen, inputs)


class Driver:
    CONTROL_POLL_S = JobWatch.POLL_S

    def __init__(
        self,
        spec: JobSpec,
        task: Task | ProgramTask,
        *,
        store: Store,
        task_pool: Pool,
        meta_pool: Pool,
        cache: ResponseCache,
        bus: InProcessBus | None = None,
        job_id: str,
        sandbox: Sandbox | None = None,
        lease: Lease | None = None,
        watch: JobWatch | None = None,
        lease_s: float = 30.0,
        judge_pool: Pool | None = None,
    ) -> None:
        self.spec = spec
        self.task = task
        self.store = store
        self.bus = bus or InProcessBus()
        self.job_id = job_id
        self.driver_id = uuid.uuid4().hex[:12]  # tells this driver's records from any other's
        # the job's lease: given by whoever claimed the job, or claimed by ``run`` itself
        self.lease = lease
        self.lease_s = lease_s
        self.watch = watch
        self.recorder = Recorder(store, job_id, lease)
        # the engine the algorithm sees
        self.search = Search(
            spec, task, job_id=job_id, store=store, recorder=self.recorder, task_pool=task_pool,
            meta_pool=meta_pool, cache=cache, bus=self.bus,
            sandbox=sandbox or SubprocessSandbox(), driver_id=self.driver_id,
            judge_pool=judge_pool,
        )
        self.search.epoch = lease.epoch if lease else 0
        self.search.pause_requested = self._pause_requested

    def _pause_requested(self) -> bool:
        return self.watch is not None and self.watch.requested == "pause"

    async def run(self, *, resume: bool = False) -> JobResult:
        """Run the job; with ``resume``, continue a stored one from its last checkpoint, if it
        has one. A driver given no lease claims the job itself (a new job is created running;
        a stored one is taken over whatever its state, completed aside) and keeps the lease
        renewed while it runs."""
        algo_cls = get_algorithm(self.spec.algorithm.name)
        algorithm = algo_cls(
            algo_cls.params_model.model_validate(self.spec.algorithm.params),
            self.spec.algorithm.templates,
        )
        async with contextlib.AsyncExitStack() as stack:
            if self.lease is None:
                self.lease = await asyncio.to_thread(self._claim, resume)
                self.recorder.fence(self.lease)
                self.search.epoch = self.lease.epoch
                stack.enter_context(LeaseKeeper(self.store, self.lease.holder, self.lease_s))
            if self.watch is None:
                self.watch = await stack.enter_async_context(JobWatch(self.store, self.lease))
            return await self._run(algorithm, algo_cls.name, resume)

    async def _run(self, algorithm: Algorithm, name: str, resume: bool) -> JobResult:
        assert self.lease is not None and self.watch is not None
        checkpoint = await self.search.restore() if resume else None
        started = JobStarted(
            self.job_id,
            name,
            self.task.name,
            self.spec.budget.calls,
            self.search.budget.reserve,
            self.lease.epoch,
            self.driver_id,
        )
        try:
            await asyncio.to_thread(self.store.write_batch, self.job_id,
                                    events=[started.payload()], lease=self.lease)
        except LeaseLost:
            return self._lost()
        self.bus.publish(started)
        work = asyncio.create_task(self.search.run(algorithm, checkpoint))
        self.watch.on_stop(work.cancel)
        try:
            board, seed, reason = await work
        except JobPaused as exc:
            return await self._stop_as("paused", str(exc))
        except asyncio.CancelledError:
            stop = self.watch.stopped_as
            if stop is not None and work.cancelled():
                # asked to stop (or the lease is gone): the job ends here, keeping its records
                return await self._stop_as(*STOPS.get(stop, (LOST, None)))
            await self._stop_as("cancelled", "cancelled")
            raise
        except LeaseLost:
            return self._lost()
        except Exception as exc:
            result = await self._stop_as("failed", tenant_reason(exc, self.job_id))
            if result.status == LOST:
                return result
            raise
        finally:
            work.cancel()
        stats = self.search.stats(board, seed)
        try:
            if board and len(self.spec.evaluation.objectives) > 1:
                stats["pareto"] = await self._pareto(board, seed, stats)
        except LeaseLost:
            return self._lost()
        best_id = board[0].candidate.id if board else None
        faults.point("end")
        try:
            await self._end("completed", reason, best_id, stats)
        except LeaseLost:
            return self._lost()
        return JobResult(self.job_id, "completed", board, seed, stats, reason)

    async def _pareto(
        self, board: list[Entry], seed: Entry | None, stats: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The finalists' front by score and the second objective (``workers/pareto.py``); a
        cost per call is read from the job's ledger, once all of it is stored."""
        objective = self.spec.evaluation.objectives[1]
        finalists = board + ([seed] if seed is not None else [])
        costs = None
        price = self.spec.models.task.price
        if objective == "-cost_per_call" and price is not None:
            await self.recorder.flush(stats)
            calls = await asyncio.to_thread(self.store.llm_calls, self.job_id)
            costs = cost_per_call(calls, price)
        return front_of(finalists, objective, costs)

    def _claim(self, resume: bool) -> Lease:
        holder = holder_name("driver")
        if not resume:
            jobs.create(self.store, self.spec, self.task.name, job_id=self.job_id,
                        lease=(holder, self.lease_s))
            return Lease(self.job_id, 1, holder)
        lease = self.store.claim_job(self.job_id, holder, self.lease_s,
                                     from_status=JOB_STATUSES - {"completed"}, take_over=True)
        if lease is None:
            raise LookupError(f"job {self.job_id} is not stored, or has completed")
        return lease

    async def _stop_as(self, status: str, reason: str | None) -> JobResult:
        """End the job early as ``status``, after storing what it recorded; a job whose lease
        is gone writes nothing."""
        assert self.watch is not None
        if status == LOST or self.watch.lost:
            return self._lost()
        try:
            await self.recorder.flush(self.search.stats())
            await self._end(status, reason, None)
        except LeaseLost:
            return self._lost()
        return JobResult(self.job_id, status, [], None, self.search.stats(), reason)

    def _lost(self) -> JobResult:
        log.warning("job %s: epoch %s is no longer this driver's; it stopped without writing more",
                    self.job_id, self.lease.epoch if self.lease else "?")
        return JobResult(self.job_id, LOST, [], None, self.search.stats(),
                         "the job was taken over, cancelled or ended elsewhere")

    async def _end(
        self, status: str, reason: str | None, best: str | None, stats: dict | None = None
    ) -> None:
        assert self.lease is not None
        stats = stats or self.search.stats()
        ended = JobEnded(self.job_id, status, reason, best, stats, self.lease.epoch,
                         self.driver_id)
        await asyncio.to_thread(
            self.store.write_batch,
            self.job_id,
            events=[ended.payload()],
            job=JobUpdate(status=status, reason=reason, best_candidate_id=best, stats=stats,
                          ended_at=datetime.now(UTC), control=None, control_at=None),
            lease=self.lease,
        )
        self.bus.publish(ended)
