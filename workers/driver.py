"""The engine behind every job: runs one algorithm, pays for its calls, records everything.

job row (running) → algorithm.run(engine) until it returns or the budget ends the search
  ├ generate(): meta-LLM calls, numbered per strand so repeated asks differ but replay identically
  ├ evaluate(): candidate × example requests → cache → budget → pool → task metric → Score
  ├ paid calls: ledger rows and responses, written in order behind the job as rounds return
  └ generation_done(): one store transaction (candidates, lineage, scores, ledger, checkpoint),
    written behind the job too, after the paid records before it
final phase (reserved budget): top-k re-scored on full dev, winner and best seed once on test
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import math
import os
import random
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from evo.algorithms import get_algorithm
from evo.candidate import Candidate, Outcome, Score
from evo.engine import BudgetExhausted
from evo.events import (
    CallsMade,
    CandidateScored,
    GenerationDone,
    InProcessBus,
    JobEnded,
    JobStarted,
    PhaseChanged,
)
from evo.gather import Strand, enter, fan_out, strand
from evo.llm import LLMRequest, LLMResponse, Message
from evo.programs import ProgramTask
from evo.spec import JobSpec
from evo.task import Example, Task
from storage import JOB_STATUSES, EvaluationRecord, Lease, LeaseLost, LLMCallRecord, Store
from workers import jobs
from workers.budget import Budget
from workers.cache import ResponseCache
from workers.lease import JobWatch, LeaseKeeper, holder_name
from workers.pool import Pool
from workers.racing import survivors
from workers.reasons import tenant_reason
from workers.sandbox import Limits, RunResult, Sandbox, SubprocessSandbox
from workers.write_behind import WriteBehind

log = logging.getLogger(__name__)


# (request key, answer text) of the meta-LLM samples this task got last and has not yet turned
# into candidates: how a candidate is linked to the call that wrote it, without the algorithm
# saying so. A context variable, so concurrent children (asyncio tasks) never see each other's.
_GENERATED: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("evo_generated", default=())

# how a job that is stopped at once ends: the status and reason it is stored with
STOPS = {
    "cancel": ("cancelled", "cancelled by request"),
    "interrupt": ("interrupted", "the service stopped; the job resumes from its last checkpoint"),
}
LOST = "lost"  # a driver's result when its lease was gone: it wrote nothing more


class JobPaused(Exception):
    """Raised at a generation boundary, after its checkpoint, when a pause was requested."""


@dataclass(frozen=True)
class Entry:
    """One row of the final leaderboard."""

    candidate: Candidate
    dev: float
    dev_n: int
    test: float | None = None
    test_n: int = 0
    # per-example test scores, for confidence intervals
    test_scores: tuple[float, ...] = field(default=(), repr=False)


@dataclass
class JobResult:
    job_id: str
    status: str
    leaderboard: list[Entry]
    seed: Entry | None
    stats: dict[str, Any] = field(default_factory=dict)
    reason: str | None = None

    @property
    def best(self) -> Entry | None:
        return self.leaderboard[0] if self.leaderboard else None


class Driver:
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
    ) -> None:
        self.spec = spec
        self.task = task
        self.store = store
        self.task_pool = task_pool
        self.meta_pool = meta_pool
        self.cache = cache
        self.bus = bus or InProcessBus()
        self.job_id = job_id
        self.sandbox = sandbox or SubprocessSandbox()
        self.rng = random.Random(spec.seed)
        self.budget = Budget(
            spec.budget.calls, spec.budget.tokens, spec.budget.seconds, self.final_reserve()
        )
        self._count = 0
        self._root = Strand()  # the algorithm's main line: what it asked is checkpointed
        self._subsets: dict[tuple[str, int, int], tuple[Example, ...]] = {}
        self._generation = 0
        self.rejections: Counter[str] = Counter()
        self.racing_saved = 0
        self.abandoned = 0  # calls in flight when the job was stopped, never answered
        self._paid = 0  # responses paid so far, in order
        self._replay: dict[str, dict] = {}  # paid before a crash, not yet asked again
        # best complete per-example scores so far, per example set: what racing compares with
        self._incumbents: dict[tuple[str, int | None], tuple[float, dict[str, float]]] = {}
        self.candidates: dict[str, Candidate] = {}
        self.search_scores: dict[str, Score] = {}
        self.best_search: float | None = None  # best search score so far: the live "best"
        self.preferred: dict[str, float] = {}  # the algorithm's own fitness, where it has one
        # candidates stored or pending, in the order of their rows (the store's ``seq``)
        self._written: dict[str, int] = {}
        self._pending_cands: list[Candidate] = []
        self._pending_evals: list[EvaluationRecord] = []
        self._pending_calls: list[LLMCallRecord] = []
        # the job's lease: given by whoever claimed the job, or claimed by ``run`` itself
        self.lease = lease
        self.lease_s = lease_s
        self.watch = watch
        self.driver_id = uuid.uuid4().hex[:12]  # tells this driver's records from any other's
        self._writer = self._make_writer()

    # ---- the Engine interface -------------------------------------------------------------

    def candidate(
        self,
        text: str,
        *,
        operator: str,
        generation: int,
        parents: Sequence[Candidate] = (),
        meta: dict[str, Any] | None = None,
    ) -> Candidate:
        self._count += 1
        cid = hashlib.blake2b(f"{self.job_id}:{self._count}".encode(), digest_size=16).hexdigest()
        meta = dict(meta or {})
        samples = _GENERATED.get()
        for i, (key, answer) in enumerate(samples):
            if text.strip() and text.strip() in answer:
                meta.setdefault("made_by", key)
                _GENERATED.set(samples[:i] + samples[i + 1 :])
                break
        cand = Candidate(
            id=cid,
            text=text,
            generation=generation,
            operator=operator,
            parents=tuple(p.id for p in parents),
            meta=meta,
        )
        self.candidates[cid] = cand
        return cand

    def lookup(self, ids: Sequence[str]) -> list[Candidate]:
        return [self.candidates[i] for i in ids]

    def prefer(self, fitness: dict[str, float]) -> None:
        self.preferred.update(fitness)

    def reject(self, operator: str, reason: str) -> None:
        self.rejections[f"{operator}:{reason}"] += 1
        log.debug("rejected %s proposal: %s", operator, reason)

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        max_tokens: int = 256,
        prefill: str = "",
        stop: Sequence[str] = (),
        purpose: str = "generate",
    ) -> list[str | None]:
        # numbered within the asking strand: the same samples however strands interleave
        line = strand()
        base = LLMRequest(
            tuple(messages), max_tokens, temperature, tuple(stop), prefill, strand=line.path
        )
        key = base.cache_key(self.meta_pool.model)
        first = line.asked[key]
        line.asked[key] += n
        requests = [
            LLMRequest(
                base.messages,
                max_tokens,
                temperature,
                base.stop,
                prefill,
                seed=_seed(self.spec.seed, key, first + i),
                sample=first + i,
                strand=line.path,
            )
            for i in range(n)
        ]
        responses = await self._call(self.meta_pool, requests, purpose, [None] * n)
        _GENERATED.set(tuple(
            (req.cache_key(self.meta_pool.model), prefill + r.text)
            for req, r in zip(requests, responses, strict=True) if not r.error
        ))
        return [None if r.error else r.text for r in responses]

    async def evaluate(
        self, candidates: Sequence[Candidate], split: str = "dev", subset: int | None = None
    ) -> list[Score]:
        scores = await self._score(candidates, split, subset)
        if len(scores) < len(candidates):
            raise BudgetExhausted("wall time" if self.budget.time_up() else "calls")
        return scores

    async def generation_done(
        self, generation: int, population: Sequence[Candidate], state: dict[str, Any]
    ) -> None:
        values = [self.search_scores[c.id].value for c in population if c.id in self.search_scores]
        event = GenerationDone(
            self.job_id,
            generation,
            max(values, default=0.0),
            sum(values) / max(1, len(values)),
            len(population),
            self.budget.calls,
            self.budget.tokens,
            self.lease.epoch if self.lease else 0,
            self.driver_id,
        )
        self._generation = generation + 1
        # a copy: the next generation changes the live state while this one is being written
        checkpoint = json.loads(json.dumps({"algorithm": state, "driver": self._state()}))
        # written behind the job, like its paid calls; the event goes out once it is stored,
        # so whoever it reaches finds the generation in the store
        self._queue_step(
            checkpoint=(generation, checkpoint),
            events=[event.payload()],
            then=lambda: self.bus.publish(event),
        )
        await self._writer.keep_up()  # the generation before this one is stored by now
        if self.watch is not None and self.watch.requested == "pause":
            await self._writer.drain()
            raise JobPaused(f"paused by request after generation {generation}")

    # ---- running a job ----------------------------------------------------------------------

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
                self._writer = self._make_writer()
                stack.enter_context(LeaseKeeper(self.store, self.lease.holder, self.lease_s))
            if self.watch is None:
                self.watch = await stack.enter_async_context(JobWatch(self.store, self.lease))
            return await self._run(algorithm, algo_cls.name, resume)

    async def _run(self, algorithm: Any, name: str, resume: bool) -> JobResult:
        assert self.lease is not None and self.watch is not None
        checkpoint = await asyncio.to_thread(self._restore) if resume else None
        started = JobStarted(
            self.job_id,
            name,
            self.task.name,
            self.spec.budget.calls,
            self.budget.reserve,
            self.lease.epoch,
            self.driver_id,
        )
        try:
            await asyncio.to_thread(self.store.write_batch, self.job_id,
                                    events=[started.payload()], lease=self.lease)
        except LeaseLost:
            return self._lost()
        self.bus.publish(started)
        work = asyncio.create_task(self._work(algorithm, checkpoint))
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
        stats = self._stats(board, seed)
        best_id = board[0].candidate.id if board else None
        try:
            await self._end("completed", reason, best_id, stats)
        except LeaseLost:
            return self._lost()
        return JobResult(self.job_id, "completed", board, seed, stats, reason)

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

    def _make_writer(self) -> WriteBehind:
        return WriteBehind(functools.partial(self.store.write_paid, lease=self.lease),
                           self.job_id, functools.partial(self.store.write_batch,
                                                          lease=self.lease))

    async def _stop_as(self, status: str, reason: str | None) -> JobResult:
        """End the job early as ``status``, after storing what it recorded; a job whose lease
        is gone writes nothing."""
        assert self.watch is not None
        if status == LOST or self.watch.lost:
            return self._lost()
        try:
            await self._flush()
            await self._end(status, reason, None)
        except LeaseLost:
            return self._lost()
        return JobResult(self.job_id, status, [], None, self._stats([], None), reason)

    def _lost(self) -> JobResult:
        log.warning("job %s: epoch %s is no longer this driver's; it stopped without writing more",
                    self.job_id, self.lease.epoch if self.lease else "?")
        return JobResult(self.job_id, LOST, [], None, self._stats([], None),
                         "the job was taken over, cancelled or ended elsewhere")

    async def _work(
        self, algorithm: Any, checkpoint: tuple[int, dict[str, Any]] | None
    ) -> tuple[list[Entry], Entry | None, str | None]:
        """The search, then the final scoring on the reserved budget."""
        reason = None
        enter(self._root)
        try:
            await algorithm.run(self, checkpoint)
        except BudgetExhausted as exc:
            reason = f"search stopped: {exc}"
        await self._flush()
        self.budget.release_reserve()
        self.bus.publish(PhaseChanged(self.job_id, "final"))
        board, seed = await self._final()
        return board, seed, reason

    CONTROL_POLL_S = JobWatch.POLL_S

    def _state(self) -> dict[str, Any]:
        """What the driver needs, beside the stored rows, to continue exactly where it was."""
        version, internal, gauss = self.rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "count": self._count,
            "asked": dict(self._root.asked),
            "forks": self._root.forks,
            "generation": self._generation,
            "paid": self._paid,
            "budget": {"calls": self.budget.calls, "tokens": self.budget.tokens,
                       "cached": self.budget.cached, "elapsed": self.budget.elapsed()},
            "rejections": dict(self.rejections),
            "racing_saved": self.racing_saved,
            "preferred": dict(self.preferred),
            "best_search": self.best_search,
            "scores": {c: [s.split, s.value, s.n, s.failures, s.subset]
                       for c, s in self.search_scores.items()},
            "incumbents": [[split, subset, value, per]
                           for (split, subset), (value, per) in self._incumbents.items()],
        }

    def _restore(self) -> tuple[int, dict[str, Any]] | None:
        """Load the last checkpoint: stored candidates, driver state, and the responses this job
        paid for. Those paid before the checkpoint fill the cache as they did the first time;
        those paid after it are replayed when the same requests come again."""
        paid = self.store.paid_responses(self.job_id)
        last = self.store.latest_checkpoint(self.job_id)
        if last is None:
            self._replay = dict(paid)
            return None
        generation, checkpoint = last
        d = checkpoint["driver"]
        version, internal, gauss = d["rng"]
        self.rng.setstate((version, tuple(internal), gauss))
        self._count, self._generation, self._paid = d["count"], d["generation"], d["paid"]
        self._root = Strand(forks=d.get("forks", 0), asked=Counter(d["asked"]))
        self.budget.calls, self.budget.tokens = d["budget"]["calls"], d["budget"]["tokens"]
        self.budget.cached = d["budget"]["cached"]
        self.budget.started -= d["budget"]["elapsed"]
        self.rejections = Counter(d["rejections"])
        self.racing_saved = d["racing_saved"]
        self.preferred = dict(d.get("preferred", {}))
        self.search_scores = {
            c: Score(c, split, value, n, failures, subset)
            for c, (split, value, n, failures, subset) in d["scores"].items()
        }
        # checkpoints from before it was kept: the best of the scores the search still holds
        self.best_search = d.get("best_search", max(
            (s.value for s in self.search_scores.values()), default=None))
        self._incumbents = {(sp, sub): (v, per) for sp, sub, v, per in d["incumbents"]}
        for cand in self.store.candidates(self.job_id):
            self.candidates[cand.id] = cand
            self._written[cand.id] = len(self._written)
        self._remember([(key, _response(response)) for key, response in paid[: self._paid]])
        self._replay = dict(paid[self._paid :])
        return generation, checkpoint["algorithm"]

    async def _end(
        self, status: str, reason: str | None, best: str | None, stats: dict | None = None
    ) -> None:
        assert self.lease is not None
        stats = stats or self._stats([], None)
        ended = JobEnded(self.job_id, status, reason, best, stats, self.lease.epoch,
                         self.driver_id)
        await asyncio.to_thread(
            self.store.write_batch,
            self.job_id,
            events=[ended.payload()],
            job={
                "status": status,
                "reason": reason,
                "best_candidate_id": best,
                "stats": stats,
                "ended_at": _now(),
                "control": None,
                "control_at": None,
            },
            lease=self.lease,
        )
        self.bus.publish(ended)

    async def _final(self) -> tuple[list[Entry], Entry | None]:
        """Re-score the search's top-k and every seed prompt on the full dev split (the best seed
        leads the leaderboard unless one beats it); test the winner and the best seed.

        Every seed, not only the one the search ranked first: on a small dev subset the weakest
        seed can look best, and it would then be both the baseline reported and the prompt
        handed back."""
        ev = self.spec.evaluation
        # equals in the order they were made, however the checkpoint kept its dicts
        made = self._written
        ranked = sorted(
            self.search_scores.values(),
            key=lambda s: (-self.preferred.get(s.candidate_id, s.value),
                           made.get(s.candidate_id, len(made))),
        )
        if not ranked:
            return [], None
        top = [self.candidates[s.candidate_id] for s in ranked[: ev.top_k]]
        seeds = [
            self.candidates[s.candidate_id]
            for s in ranked
            if self.candidates[s.candidate_id].operator == "seed"
        ]
        dev = await self._full_scores(top + [s for s in seeds if s not in top], "dev")
        # Ties go to the older candidate, as in the stored leaderboard: an evolved prompt that
        # is no better on the full split than the seed it came from is no reason to change it.
        board = sorted(
            (Entry(c, dev[c.id].value, dev[c.id].n) for c in top if c.id in dev),
            key=lambda e: (-e.dev, made[e.candidate.id]),
        )
        seed_entry = min(
            (Entry(s, dev[s.id].value, dev[s.id].n) for s in seeds if s.id in dev),
            key=lambda e: (-e.dev, made[e.candidate.id]),
            default=None,
        )
        seed = seed_entry.candidate if seed_entry else None
        if (not self.preferred and seed_entry and seed not in top
                and (not board or seed_entry.dev >= board[0].dev)):
            # The finalists did not beat a seed prompt on the full split (their search scores
            # were luck on a small subset): the seed is what the job should hand back. An
            # algorithm with an objective of its own (GrIPS) has named its finalists by it.
            board = [seed_entry, *board]
        if ev.test and board:
            wanted = [board[0].candidate] + ([seed] if seed_entry else [])
            test = await self._full_scores(wanted, "test")
            if board[0].candidate.id in test:
                t = test[board[0].candidate.id]
                board[0] = Entry(board[0].candidate, board[0].dev, board[0].dev_n, t.value, t.n,
                                 tuple(o.score for o in t.outcomes))
            if seed_entry and seed.id in test:
                t = test[seed.id]
                seed_entry = Entry(seed, seed_entry.dev, seed_entry.dev_n, t.value, t.n,
                                   tuple(o.score for o in t.outcomes))
        await self._flush()
        return board, seed_entry

    async def _full_scores(self, cands: list[Candidate], split: str) -> dict[str, Score]:
        out: dict[str, Score] = {}
        need = []
        for c in dict.fromkeys(cands):
            prior = self.search_scores.get(c.id)
            if split == "dev" and prior and prior.subset is None and prior.split == "dev":
                out[c.id] = prior
            else:
                need.append(c)
        scored = await self._score(need, split, None)
        if len(scored) < len(need):
            log.warning("final %s scoring cut short by the budget", split)
        out.update({s.candidate_id: s for s in scored})
        return out

    # ---- calls, scores, writes ---------------------------------------------------------------

    async def _call(
        self,
        pool: Pool,
        requests: Sequence[LLMRequest],
        purpose: str,
        owners: Sequence[str | None],
    ) -> list[LLMResponse]:
        """Answer requests from the cache, from what this job already paid (after a crash), or
        from the pool. Paid calls are recorded with their responses as the round returns (written
        behind the job, see ``workers/write_behind.py``); cache hits go out with the generation."""
        keys = [r.cache_key(pool.model) for r in requests]
        out: list[LLMResponse | None] = self._lookup(keys)
        misses: dict[str, list[int]] = {}
        for i, hit in enumerate(out):
            if hit is None:
                misses.setdefault(keys[i], []).append(i)
        uniq = [requests[idx[0]] for idx in misses.values()]
        est = sum(len(m.content) // 3 for r in uniq for m in r.messages) + sum(
            r.max_tokens for r in uniq
        )
        self.budget.take(len(uniq), est)
        fresh = [k for k in misses if k not in self._replay]
        try:
            answered = (
                await pool.call_many([requests[misses[k][0]] for k in fresh]) if fresh else []
            )
        except asyncio.CancelledError:
            # stopped mid-flight: only answered calls count, so the ledger and stats agree
            self.budget.calls -= len(uniq)
            self.abandoned += len(fresh)
            raise
        answers = dict(zip(fresh, answered, strict=True))
        ledger, paid, answered_now = [], [], []
        for key, idx in misses.items():
            replayed = self._replay.pop(key, None)
            answer = _response(replayed) if replayed is not None else answers[key]
            if replayed is None:  # a replayed call already has its ledger row
                ledger.append(self._ledger_row(owners[idx[0]], purpose, answer))
                if answer.error is None:  # a failed call is asked again, not replayed
                    record = answer.as_dict()
                    if purpose != "evaluate":  # meta-prompts are few: keep them, for lineage
                        record["request"] = _request_record(requests[idx[0]])
                    paid.append((self._paid, key, record))
            self._paid += 1
            answered_now.append((key, answer))
            self.budget.spend_tokens(answer.tokens)
            for j, i in enumerate(idx):
                out[i] = answer if j == 0 else _as_cached(answer)
        self._remember(answered_now)
        if ledger:  # stored in the background, in order, while the next round goes out
            self._writer.put(ledger, paid)
        firsts = {idx[0] for idx in misses.values()}
        hits = [i for i in range(len(out)) if i not in firsts]
        self._pending_calls += [self._ledger_row(owners[i], purpose, out[i]) for i in hits]
        self.budget.cached += len(hits)
        self.bus.publish(CallsMade(self.job_id, self.budget.calls, self.budget.tokens, len(hits)))
        return out  # type: ignore[return-value]

    def _lookup(self, keys: list[str]) -> list[LLMResponse | None]:
        many = getattr(self.cache, "get_many", None)  # one round trip to a shared cache
        return list(many(keys)) if many else [self.cache.get(k) for k in keys]

    def _remember(self, answers: list[tuple[str, LLMResponse]]) -> None:
        many = getattr(self.cache, "put_many", None)  # one round trip to a shared cache
        if many is not None:
            many(answers)
            return
        for key, answer in answers:
            self.cache.put(key, answer)

    def _ledger_row(
        self, owner: str | None, purpose: str, resp: LLMResponse | None
    ) -> LLMCallRecord:
        assert resp is not None
        return LLMCallRecord(
            job_id=self.job_id,
            candidate_id=owner,
            purpose=purpose,
            model=resp.model,
            prompt_tokens=resp.prompt_tokens,
            completion_tokens=resp.completion_tokens,
            latency_s=resp.latency_s,
            cached=resp.cached,
            error=resp.error,
        )

    async def _score(
        self, candidates: Sequence[Candidate], split: str, subset: int | None
    ) -> list[Score]:
        """Score the leading candidates that the budget can pay for in full (maybe all).

        With racing on (search phase only), examples go out in blocks and a candidate that falls
        significantly behind the leader stops early; its score then covers what it saw.
        """
        if isinstance(self.task, ProgramTask):
            return await self._score_programs(candidates, split)
        examples = self._examples(split, subset)
        label = self.spec.evaluation.label_scoring and bool(self.task.labels)
        made: dict[str, list[LLMRequest]] = {}

        def asks(cand: Candidate) -> list[LLMRequest]:
            """The candidate's request per example, made once (with their cache keys)."""
            if cand.id not in made:
                made[cand.id] = [
                    self.task.request(cand.text, ex, label_scoring=label) for ex in examples
                ]
            return made[cand.id]

        todo = list(candidates[: self._affordable_candidates(candidates, asks)])
        race = self.spec.evaluation.racing
        racing = race.enabled and not self.budget.final
        step = max(1, race.block if racing else len(examples))
        starts = range(0, len(examples), step)
        outcomes: dict[str, list[Outcome]] = {c.id: [] for c in todo}
        alive, seen = todo, 0
        key = (split, subset)
        for i, start in enumerate(starts):
            block = examples[start : start + step]
            requests = [r for c in alive for r in asks(c)[start : start + step]]
            owners = [c.id for c in alive for _ in block]
            responses = iter(await self._call(self.task_pool, requests, "evaluate", owners))
            for cand in alive:
                for ex in block:
                    r = self.task.score(ex, next(responses))
                    outcomes[cand.id].append(
                        Outcome(ex.id, ex.target, r.prediction, r.score, r.failure)
                    )
            seen += len(block)
            if racing and seen >= race.min_examples and i < len(starts) - 1:
                alive = self._race(alive, outcomes, key, race.confidence, len(examples) - seen)
        whole = subset is None or subset >= len(self.task.split(split))
        scores = []
        for cand in todo:
            outs = tuple(outcomes[cand.id])
            complete = len(outs) == len(examples)
            tag = None if whole and complete else str(subset or "all")
            if not complete:
                tag = f"{tag}:raced@{len(outs)}"
            score = Score(
                cand.id,
                split,
                sum(o.score for o in outs) / max(1, len(outs)),
                len(outs),
                sum(o.failure is not None for o in outs),
                tag,
                outs,
            )
            scores.append(score)
            self._record_score(cand, score)
            best = self._incumbents.get(key)
            if complete and (best is None or score.value > best[0]):
                self._incumbents[key] = (score.value, {o.example_id: o.score for o in outs})
        return scores

    async def _score_programs(self, candidates: Sequence[Candidate], split: str) -> list[Score]:
        """Run each program on the split's instances in the sandbox (never in this process)."""
        if self.budget.time_up() and not self.budget.final:
            return []
        task = self.task
        assert isinstance(task, ProgramTask)
        instances = list(task.split(split))
        limits = Limits(cpu_s=task.cpu_s, wall_s=task.wall_s, memory_mb=task.memory_mb)
        gate = asyncio.Semaphore(max(1, os.cpu_count() or 1))

        async def run(cand: Candidate) -> Score:
            async with gate:
                result = await self.sandbox.arun(
                    task.program(cand.text), "evo_harness",
                    {"instances": instances, **task.params}, limits=limits,
                )
            return program_score(task, cand.id, split, instances, result)

        scores = list(await fan_out(*(run(c) for c in candidates)))
        for cand, score in zip(candidates, scores, strict=True):
            if score.n == 0:
                self.reject(cand.operator, f"run_failed: {score.outcomes[0].failure}")
            self._record_score(cand, score)
        return scores

    def _race(
        self,
        alive: list[Candidate],
        outcomes: dict[str, list[Outcome]],
        key: tuple[str, int | None],
        confidence: float,
        remaining: int,
    ) -> list[Candidate]:
        per = {c.id: {o.example_id: o.score for o in outcomes[c.id]} for c in alive}
        seen_ids = next(iter(per.values())).keys() if per else set()
        incumbent = self._incumbents.get(key)
        earlier = {k: v for k, v in incumbent[1].items() if k in seen_ids} if incumbent else None
        keep = set(survivors(per, [c.id for c in alive], confidence, earlier))
        dropped = len(alive) - len(keep)
        self.racing_saved += dropped * remaining
        return [c for c in alive if c.id in keep]

    def _affordable_candidates(
        self,
        candidates: Sequence[Candidate],
        asks: Callable[[Candidate], list[LLMRequest]],
    ) -> int:
        """How many candidates (in order) the budget can score completely, cache hits being free."""
        unlimited = 10**12
        left = self.budget.affordable(unlimited)
        if left == unlimited:
            return len(candidates)
        seen: set[str] = set()
        model = self.task_pool.model
        for k, cand in enumerate(candidates):
            keys = {r.cache_key(model) for r in asks(cand)}
            fresh = sorted(keys - seen)
            new = {key for key, hit in zip(fresh, self._lookup(fresh), strict=True) if hit is None}
            if len(new) > left:
                return k
            left -= len(new)
            seen |= keys
        return len(candidates)

    def _examples(self, split: str, subset: int | None) -> tuple[Example, ...]:
        examples = self.task.split(split)
        if subset is None or subset >= len(examples):
            return examples
        # a fixed sample for the whole search, or a fresh one each generation when asked
        epoch = self._generation if self.spec.evaluation.resample_subsets else 0
        key = (split, subset, epoch)
        if key not in self._subsets:
            # its own generator: the sample must not depend on what the algorithm drew before
            rng = random.Random(f"{self.spec.seed}:{split}:{subset}:{epoch}")
            self._subsets[key] = tuple(rng.sample(list(examples), subset))
        return self._subsets[key]

    def _record_score(self, cand: Candidate, score: Score) -> None:
        if not self.budget.final and score.n > 0:  # the search's own fitness, on its split
            prior = self.search_scores.get(cand.id)
            if prior is None or (prior.subset is not None and score.subset is None):
                self.search_scores[cand.id] = score
            if self.best_search is None or score.value > self.best_search:
                self.best_search = score.value
        if cand.id not in self._written:
            self._written[cand.id] = len(self._written)
            self._pending_cands.append(cand)
        self._pending_evals.append(
            EvaluationRecord(
                candidate_id=cand.id,
                split=score.split,
                value=score.value,
                n=score.n,
                failures=score.failures,
                subset=score.subset,
                generation=cand.generation,
            )
        )
        self.bus.publish(
            CandidateScored(
                self.job_id,
                cand.id,
                cand.generation,
                cand.operator,
                score.split,
                score.value,
                score.n,
            )
        )

    def _queue_step(
        self,
        checkpoint: tuple[int, dict] | None = None,
        events: Sequence[dict] = (),
        then: Callable[[], None] | None = None,
    ) -> None:
        """Queue what the job recorded since the last step for the writer, after the paid
        records queued before it."""
        cands, evals, calls = self._pending_cands, self._pending_evals, self._pending_calls
        self._pending_cands, self._pending_evals, self._pending_calls = [], [], []
        self._writer.step(
            then,
            candidates=cands,
            evaluations=evals,
            llm_calls=calls,
            checkpoint=checkpoint,
            job={"stats": self._stats([], None)},
            events=list(events),
        )

    async def _flush(self) -> None:
        """Store everything the job has recorded, and wait until it is stored."""
        self._queue_step()
        await self._writer.drain()

    def final_reserve(self) -> int:
        return final_reserve(self.spec, self.task)

    def _stats(self, board: list[Entry], seed: Entry | None) -> dict[str, Any]:
        stats: dict[str, Any] = {
            "calls": self.budget.calls,
            "tokens": self.budget.tokens,
            "cached": self.budget.cached,
            "candidates": len(self.search_scores),
            "best_search": self.best_search,
            "rejected": dict(self.rejections),
            "racing_saved_calls": self.racing_saved,
            "abandoned_calls": self.abandoned,
            "served_by": dict(self.task_pool.served),
            "elapsed_s": round(self.budget.elapsed(), 2),
        }
        if board:
            stats |= {"best_dev": board[0].dev, "best_test": board[0].test}
            if board[0].test_scores:  # per test example: what confidence intervals need
                stats["best_test_scores"] = list(board[0].test_scores)
        if seed:
            stats |= {"seed_dev": seed.dev, "seed_test": seed.test}
        return stats


def final_reserve(spec: JobSpec, task: Task | ProgramTask) -> int:
    """Calls held back so that final scoring always fits: top-k and the seed prompts on full
    dev, and the winner and the best seed on test."""
    ev = spec.evaluation
    if isinstance(task, ProgramTask):
        return 0  # programs are scored in the sandbox, not by paid calls
    dev = len(task.split("dev"))
    test = len(task.split("test")) if ev.test else 0
    return (ev.top_k + seed_count(task)) * dev + 2 * test


def seed_count(task: Task) -> int:
    """Distinct seed prompts the final phase re-scores (at least one is always there)."""
    return len(dict.fromkeys(task.seed_prompts)) or 1


def program_score(
    task: ProgramTask, cid: str, split: str, instances: list, result: RunResult
) -> Score:
    """A sandbox run as a Score: per-instance objectives, or no fitness (n = 0) with the reason."""
    values = result.value if result.ok else None
    if not (
        isinstance(values, list)
        and len(values) == len(instances)
        and all(isinstance(v, int | float) and math.isfinite(v) for v in values)
    ):
        reason = result.reason if not result.ok else "bad_return: one number per instance expected"
        failed = Outcome("program", "", (result.stderr or "")[-500:], 0.0, reason)
        return Score(cid, split, 0.0, 0, len(instances), None, (failed,))
    outcomes = tuple(
        Outcome(f"{split}-{i}", "", f"{v:.6g}", float(v)) for i, v in enumerate(values)
    )
    return Score(cid, split, task.fitness(values), len(values), 0, None, outcomes)


def _seed(job_seed: int, key: str, sample: int) -> int:
    digest = hashlib.blake2b(f"{job_seed}:{key}:{sample}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def _request_record(request: LLMRequest) -> dict[str, Any]:
    return {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "prefill": request.prefill,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }


_RESPONSE_FIELDS = frozenset(LLMResponse.__dataclass_fields__)


def _response(stored: dict[str, Any]) -> LLMResponse:
    """A stored paid response back as an LLMResponse (its recorded request left aside)."""
    return LLMResponse(**{k: v for k, v in stored.items() if k in _RESPONSE_FIELDS})


def _as_cached(resp: LLMResponse) -> LLMResponse:
    return replace(resp, cached=True, latency_s=0.0)


def _now() -> datetime:
    return datetime.now(UTC)
