"""The engine interface (``evo/engine.py``) of a running job, and the search it runs.

An algorithm sees this object as its engine. It makes candidates by the engine's rules, numbers
meta-LLM samples per strand (so repeated asks differ but replay identically), and at each
generation's end queues the checkpoint: the algorithm's state and this object's own
(``workers/checkpoint.py``). Paying for calls, fitness and writing are the parts it wires:
``workers/calls.py``, ``workers/scoring.py``, ``workers/recorder.py``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

from evo.algorithms import Algorithm
from evo.candidate import Candidate, Kind, Score
from evo.engine import (
    BudgetExhausted,
    ModelRole,
    Rejection,
    Sample,
    check_recorded,
    checked_state,
    new_candidate,
    rejection_key,
    task_kind,
)
from evo.events import Event, GenerationDone, InProcessBus, PhaseChanged, SearchWarning
from evo.gather import Strand, enter, strand
from evo.llm import LLMRequest, Message
from evo.programs import ProgramTask
from evo.spec import JobSpec, Price
from evo.task import Task
from storage.protocols import RunRecorder
from workers.answers import Answers
from workers.budget import Budget
from workers.cache import ResponseCache
from workers.calls import Calls
from workers.checkpoint import DriverState
from workers.final import (
    Entry,
    final_phase,
    final_reserve,
    label_bias,
    usd_reserve,
    versus_seed,
)
from workers.pool import Pool
from workers.recorder import Recorder
from workers.sandbox import Sandbox
from workers.scoring import Scorer
from workers.soft_prompts import described
from workers.spread import CODE as NO_SPREAD
from workers.spread import no_spread

log = logging.getLogger(__name__)


class JobPaused(Exception):
    """Raised at a generation boundary, after its checkpoint, when a pause was requested."""


class Search:
    def __init__(
        self,
        spec: JobSpec,
        task: Task | ProgramTask,
        *,
        job_id: str,
        store: RunRecorder,
        recorder: Recorder,
        task_pool: Pool,
        meta_pool: Pool,
        cache: ResponseCache,
        bus: InProcessBus,
        sandbox: Sandbox,
        driver_id: str,
        judge_pool: Pool | None = None,
    ) -> None:
        self.spec, self.task, self.job_id, self.store = spec, task, job_id, store
        self.recorder, self.bus = recorder, bus
        self.task_pool, self.meta_pool = task_pool, meta_pool
        self.judge_pool = judge_pool or task_pool  # metric judge: the task model by default
        self.rng = random.Random(spec.seed)
        self.budget = Budget(spec.budget.calls, spec.budget.tokens, spec.budget.seconds,
                             final_reserve(spec, task), max_usd=spec.budget.usd,
                             reserve_usd=usd_reserve(spec, task))
        self.calls = Calls(job_id, cache, self.budget, recorder, bus, price_of=self.price_of)
        self.scoring = Scorer(
            spec, task, job_id=job_id, calls=self.calls, pool=task_pool, budget=self.budget,
            sandbox=sandbox, recorder=recorder, bus=bus, reject=self.reject,
            judge_pool=self.judge_pool,
        )
        self._count = 0  # candidates made: what their ids are numbered by
        self._root = Strand()  # the algorithm's main line: what it asked is checkpointed
        self._kind: Kind = task_kind(task)
        self.rejections: Counter[str] = Counter()
        self.candidates: dict[str, Candidate] = {}
        self.preferred: dict[str, float] = {}  # the algorithm's own fitness, where it has one
        self.warnings: list[dict[str, str]] = []  # SearchWarnings given: code and message
        # who runs it, for the events it publishes; set by the driver once it holds the job
        self.epoch = 0
        self.driver_id = driver_id
        self.pause_requested: Callable[[], bool] = lambda: False

    def price_of(self, pool: Pool) -> Price | None:
        """The price of the model ``pool`` serves: the task model's, the meta-LLM's or the
        judge's."""
        models = self.spec.models
        if pool is self.task_pool:
            return models.task.price
        return (models.grader if pool is self.judge_pool else models.optimizer).price

    @property
    def search_scores(self) -> dict[str, Score]:
        return self.scoring.search_scores

    @property
    def racing_saved(self) -> int:
        return self.scoring.racing_saved

    def candidate(
        self,
        text: str,
        *,
        operator: str,
        generation: int,
        parents: Sequence[Candidate] = (),
        meta: dict[str, Any] | None = None,
        kind: Kind | None = None,
        island: int = 0,
        source: Sample | None = None,
    ) -> Candidate:
        self._count += 1
        cid = hashlib.blake2b(f"{self.job_id}:{self._count}".encode(), digest_size=16).hexdigest()
        cand = new_candidate(cid, text, operator=operator, generation=generation,
                             parents=parents, meta=meta, kind=kind or self._kind,
                             island=island, source=source)
        if cand.kind == "soft_prompt":
            cand = described(self.spec.models.task, cand)
        self.candidates[cid] = cand
        return cand

    def lookup(self, ids: Sequence[str]) -> list[Candidate]:
        return [self.candidates[i] for i in ids]

    def record(self, candidates: Sequence[Candidate]) -> None:
        check_recorded(candidates, self.recorder.written)
        for cand in candidates:
            self.recorder.made(cand)

    def prefer(self, fitness: dict[str, float]) -> None:
        self.preferred.update(fitness)

    def reject(self, operator: str, reason: Rejection, detail: str = "") -> None:
        self.rejections[rejection_key(operator, reason, detail)] += 1
        log.debug("rejected %s proposal: %s %s", operator, reason, detail)

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
        model: ModelRole = "meta",
    ) -> list[Sample | None]:
        # numbered within the asking strand: the same samples however strands interleave
        line = strand()
        mode = self.spec.models.optimizer.mode  # a base model is prompted as a completion
        base = LLMRequest(
            tuple(messages), max_tokens, temperature, tuple(stop), prefill, strand=line.path,
            mode=mode,
        )
        pool = self.task_pool if model == "task" else self.meta_pool
        model_name = pool.model
        key = base.cache_key(model_name)
        first = line.asked[key]
        line.asked[key] += n
        requests = [
            LLMRequest(base.messages, max_tokens, temperature, base.stop, prefill,
                       seed=_seed(self.spec.seed, key, first + i), sample=first + i,
                       strand=line.path, mode=mode)
            for i in range(n)
        ]
        responses = await self.calls.call(pool, requests, purpose, [None] * n)
        return [None if r.error else Sample(r.text, req.cache_key(model_name))
                for req, r in zip(requests, responses, strict=True)]

    async def evaluate(
        self, candidates: Sequence[Candidate], split: str = "dev", subset: int | None = None
    ) -> list[Score]:
        scores = await self.scoring.score(candidates, split, subset)
        if len(scores) < len(candidates):
            raise BudgetExhausted(self.budget.short_of())
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
            self.epoch,
            self.driver_id,
        )
        events: list[Event] = [event, *self._warnings(generation)]
        self.scoring.generation = generation + 1
        # a copy: the next generation changes the live state while this one is being written
        checkpoint = {"algorithm": checked_state(state), "driver": self.state().to_json()}

        def publish() -> None:
            for e in events:
                self.bus.publish(e)

        # written behind the job, like its paid calls, with its checkpoint (so a resumed job
        # knows what it already said); the events go out once stored, so whoever they reach
        # finds the generation in the store
        self.recorder.step(self.stats(), checkpoint=(generation, checkpoint),
                           events=[e.payload() for e in events], then=publish)
        await self.recorder.keep_up()  # the generation before this one is stored by now
        if self.pause_requested():
            await self.recorder.drain()
            raise JobPaused(f"paused by request after generation {generation}")

    def _warnings(self, generation: int) -> list[SearchWarning]:
        """What the user should hear of after ``generation``, once in the job's life: no spread
        among the seeds and generation 1 (checked then only; a job resumed past it has either
        said so already or had spread)."""
        if generation != 1 or any(w["code"] == NO_SPREAD for w in self.warnings):
            return []
        failed_runs = sum(n for key, n in self.rejections.items()
                          if key.split(":")[1:2] == ["run_failed"])
        message = no_spread(self.spec, self.task, self.search_scores.values(),
                            self.scoring.answers, failed_runs)
        if message is None:
            return []
        log.warning("job %s: %s", self.job_id, message)
        self.warnings.append({"code": NO_SPREAD, "message": message})
        return [SearchWarning(self.job_id, NO_SPREAD, message)]

    async def run(
        self, algorithm: Algorithm, checkpoint: tuple[int, dict[str, Any]] | None
    ) -> tuple[list[Entry], Entry | None, str | None]:
        """The search, then the final scoring on the reserved budget: (leaderboard, the best
        seed's entry, why the search stopped early, if it did)."""
        reason = None
        enter(self._root)
        try:
            await algorithm.run(self, checkpoint)
        except BudgetExhausted as exc:
            reason = f"search stopped: {exc}"
        await self.recorder.flush(self.stats())
        if algorithm.result == "dataset":  # its result is what it recorded: nothing to re-score
            return [], None, reason
        self.budget.release_reserve()
        self.bus.publish(PhaseChanged(self.job_id, "final"))
        board, seed = await final_phase(self.scoring, self.candidates, self.preferred,
                                        self.recorder.written, self.spec.evaluation,
                                        algorithm.result_by_own_fitness)
        await self.recorder.flush(self.stats())
        return board, seed, reason

    # ---- the checkpoint and the stats ------------------------------------------------------

    def state(self) -> DriverState:
        b = self.budget
        return DriverState(
            rng=self.rng.getstate(),
            count=self._count,
            asked=dict(self._root.asked),
            forks=self._root.forks,
            generation=self.scoring.generation,
            paid=self.calls.paid,
            calls=b.calls, tokens=b.tokens, cached=b.cached, elapsed=b.elapsed(), usd=b.usd,
            rejections=dict(self.rejections),
            racing_saved=self.scoring.racing_saved,
            preferred=dict(self.preferred),
            best_search=self.scoring.best_search,
            scores=dict(self.scoring.search_scores),
            incumbents=dict(self.scoring.incumbents),
            answers=self.scoring.answers.to_json(),
            warnings=[dict(w) for w in self.warnings],
            rows=(self.recorder.evaluations, self.recorder.outcome_rows),
        )

    async def restore(self) -> tuple[int, dict[str, Any]] | None:
        """Load the last checkpoint: stored candidates, the driver's state, and the responses
        this job paid for (see ``Calls.restore``)."""
        paid, last, stored, hits = await asyncio.to_thread(self._stored)
        if last is None:
            await asyncio.to_thread(self.recorder.rewind, 0, 0)
            self.calls.restore(paid, 0, hits)
            return None
        generation, checkpoint = last
        d = DriverState.from_json(checkpoint["driver"])
        if d.rows is not None:
            await asyncio.to_thread(self.recorder.rewind, *d.rows)
        self.rng.setstate(d.rng)
        self._count = d.count
        self._root = Strand(forks=d.forks, asked=Counter(d.asked))
        self.budget.calls, self.budget.tokens, self.budget.cached = d.calls, d.tokens, d.cached
        self.budget.started -= d.elapsed
        self.budget.usd = d.usd
        self.rejections = Counter(d.rejections)
        self.preferred = dict(d.preferred)
        self.warnings = [dict(w) for w in d.warnings]
        s = self.scoring
        s.generation, s.racing_saved, s.best_search = d.generation, d.racing_saved, d.best_search
        s.search_scores.update(d.scores)
        s.incumbents.update(d.incumbents)
        s.answers = Answers.from_json(d.answers)
        self.candidates.update((c.id, c) for c in stored)
        self.recorder.known(stored)
        self.calls.restore(paid, d.paid, hits - d.cached)
        return generation, checkpoint["algorithm"]

    def _stored(self) -> tuple[list, tuple[int, dict[str, Any]] | None, list[Candidate], int]:
        """What a resumed job reads from the store: its paid responses, its last checkpoint, its
        candidates and its stored cache hits (one thread, off the event loop)."""
        return (self.store.paid_responses(self.job_id), self.store.latest_checkpoint(self.job_id),
                self.store.candidates(self.job_id),
                self.store.call_totals(self.job_id)["cached"])

    def stats(self, board: Sequence[Entry] = (), seed: Entry | None = None) -> dict[str, Any]:
        s = self.scoring
        stats: dict[str, Any] = {
            "calls": self.budget.calls,
            "tokens": self.budget.tokens,
            "usd": self.budget.usd,
            "cached": self.budget.cached,
            "candidates": len(s.search_scores),
            "best_search": s.best_search,
            "rejected": dict(self.rejections),
            "racing_saved_calls": s.racing_saved,
            "abandoned_calls": self.calls.abandoned,
            "served_by": dict(self.task_pool.served),
            "elapsed_s": round(self.budget.elapsed(), 2),
        }
        if self.task.labels:  # how labels were read: log-probabilities or parsed from text
            stats["label_scoring"] = s.answers.label_scoring()
        if s.judge is not None:  # answers the judge scored, and its answers it could not read
            stats["judge"] = s.answers.judge_counts()
        if self.warnings:
            stats["warnings"] = [dict(w) for w in self.warnings]
        if board:
            stats |= {"best_dev": board[0].dev, "best_test": board[0].test}
            if board[0].test_scores:  # per test example: what confidence intervals need
                stats["best_test_scores"] = list(board[0].test_scores)
        if seed:
            stats |= {"seed_dev": seed.dev, "seed_test": seed.test}
            if seed.test_scores:
                stats["seed_test_scores"] = list(seed.test_scores)
        if board and (vs := versus_seed(board, seed, self.spec.evaluation.confidence,
                                        self.spec.seed)):
            stats["vs_seed"] = vs
        if bias := label_bias(self.task, board, seed):
            stats["label_bias"] = bias
        return stats


def _seed(job_seed: int, key: str, sample: int) -> int:
    digest = hashlib.blake2b(f"{job_seed}:{key}:{sample}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")
