"""Fitness: candidates scored on example sets (subsets, racing, affordability) or, for programs,
run in the sandbox. It keeps the search's own scores, the best so far and, per example set, the
incumbent that racing compares newcomers with.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import random
from collections.abc import Callable, Sequence
from functools import partial

from evo import judge, strategies
from evo.candidate import Candidate, Outcome, Score
from evo.events import CandidateScored, InProcessBus
from evo.gather import fan_out
from evo.judge import Verdict
from evo.llm import LLMRequest, LLMResponse
from evo.programs import ProgramTask
from evo.soft_prompt import SoftPrompt
from evo.spec import JobSpec
from evo.task import Example, ExampleResult, Task
from storage import EvaluationRecord
from workers.answers import Answers
from workers.budget import Budget
from workers.calls import Calls
from workers.chains import lockstep
from workers.judging import Judge, Judged
from workers.pool import Pool
from workers.racing import survivors
from workers.recorder import Recorder
from workers.sandbox import Limits, RunResult, Sandbox

SEARCH = "search"  # where a judged candidate's outcomes in the search are stored

# per example set (split, subset): the best complete mean and its per-example scores
Incumbents = dict[tuple[str, int | None], tuple[float, dict[str, float]]]


class Scorer:
    def __init__(
        self,
        spec: JobSpec,
        task: Task | ProgramTask,
        *,
        job_id: str,
        calls: Calls,
        pool: Pool,
        budget: Budget,
        sandbox: Sandbox,
        recorder: Recorder,
        bus: InProcessBus,
        reject: Callable[[str, str, str], None],
        judge_pool: Pool | None = None,
    ) -> None:
        self.spec, self.task, self.job_id = spec, task, job_id
        self.calls, self.pool, self.budget, self.sandbox = calls, pool, budget, sandbox
        self.recorder, self.bus, self.reject = recorder, bus, reject
        self.generation = 0  # which fresh subset, when subsets are resampled each generation
        self.search_scores: dict[str, Score] = {}
        self.best_search: float | None = None  # best search score so far: the live "best"
        self.incumbents: Incumbents = {}
        self.racing_saved = 0
        self.answers = Answers()  # how every task answer scored was read, cached ones too
        self.judge: Judge | None = None  # metric judge: who scores the answers
        if isinstance(task, Task) and task.judged:
            rubric = task.metric.rubric  # type: ignore[attr-defined]  # a JudgeMetric's
            self.judge = Judge(task, rubric, calls, judge_pool or pool, pool, self._moded)
        self._subsets: dict[tuple[str, int, int], tuple[Example, ...]] = {}

    async def score(
        self, candidates: Sequence[Candidate], split: str, subset: int | None
    ) -> list[Score]:
        """Score the leading candidates that the budget can pay for in full (maybe all).

        With racing on (search phase only), examples go out in blocks and a candidate that falls
        significantly behind the leader stops early; its score then covers what it saw.
        """
        if isinstance(self.task, ProgramTask):
            return await self._score_programs(candidates, split)
        task = self.task
        examples = self.examples(split, subset)
        label = self.spec.evaluation.label_scoring and bool(task.labels)
        strategy = self.spec.evaluation.strategy
        made: dict[str, list[LLMRequest]] = {}

        def asks(cand: Candidate) -> list[LLMRequest]:
            """The candidate's request per example (a chain's first), made once (with their
            cache keys)."""
            if cand.id not in made:
                soft = soft_prompt_of(cand)
                made[cand.id] = [
                    self._moded(task.request(cand.text, ex, label_scoring=label, soft=soft))
                    if strategy == "direct"
                    else self._moded(strategies.first_request(strategy, task, _pool(cand), ex))
                    for ex in examples
                ]
            return made[cand.id]

        calibrate = label and self.spec.evaluation.calibrate

        def costs(cand: Candidate) -> list[LLMRequest]:
            free = [self._moded(task.content_free_request(cand.text, soft_prompt_of(cand)))
                    ] if calibrate else []
            return asks(cand) + free

        judging = judge_calls(task)

        def per(cand: Candidate) -> int:
            return strategies.calls_per_example(strategy, len(_pool(cand))) + judging

        todo = list(candidates[: self._affordable(candidates, costs, per)])
        offsets = await self._calibration(todo) if calibrate else {}
        race = self.spec.evaluation.racing
        racing = race.enabled and not self.budget.final
        step = max(1, race.block if racing else len(examples))
        starts = range(0, len(examples), step)
        outcomes: dict[str, list[Outcome]] = {c.id: [] for c in todo}
        alive, seen = todo, 0
        key = (split, subset)
        for i, start in enumerate(starts):
            block = examples[start : start + step]
            if strategy == "direct":
                requests = [r for c in alive for r in asks(c)[start : start + step]]
                owners = [c.id for c in alive for _ in block]
                responses = iter(await self.calls.call(self.pool, requests, "evaluate", owners))
            else:
                responses = iter(await self._chains(alive, block))
            pairs = [(cand, ex, next(responses)) for cand in alive for ex in block]
            results = [task.score(ex, response, offsets.get(cand.id))
                       for cand, ex, response in pairs]
            verdicts = await self._verdicts(pairs, results)
            for (cand, ex, response), r, v in zip(pairs, results, verdicts, strict=True):
                offset = offsets.get(cand.id)
                self.answers.add(task, response, r, v)
                value, failure = r.score, r.failure
                if v is not None:
                    value, failure = v.value or 0.0, v.failure
                outcomes[cand.id].append(Outcome(
                    ex.id, ex.target, r.prediction, value, failure,
                    task.label_logprobs(response, offset), v.to_json() if v else None,
                ))
            seen += len(block)
            if racing and seen >= race.min_examples and i < len(starts) - 1:
                alive = self._race(alive, outcomes, key, race.confidence, len(examples) - seen)
        whole = subset is None or subset >= len(task.split(split))
        scores = []
        for cand in todo:
            outs = tuple(outcomes[cand.id])
            complete = len(outs) == len(examples)
            tag = None if whole and complete else str(subset or "all")
            if not complete:
                tag = f"{tag}:raced@{len(outs)}"
            score = Score(cand.id, split, sum(o.score for o in outs) / max(1, len(outs)),
                          len(outs), sum(o.failure is not None for o in outs), tag, outs)
            scores.append(score)
            self._record(cand, score)
            best = self.incumbents.get(key)
            if complete and (best is None or score.value > best[0]):
                self.incumbents[key] = (score.value, {o.example_id: o.score for o in outs})
        return scores

    async def _chains(
        self, cands: list[Candidate], block: Sequence[Example]
    ) -> list[LLMResponse]:
        """Each candidate's answer to each example by the job's evaluation strategy: a chain of
        calls per example, all paid like any call, sent a round at a time; a step that fell
        back to its default is counted as a rejection of that step."""
        task, strategy = self.task, self.spec.evaluation.strategy
        assert isinstance(task, Task)
        chains = [partial(strategies.answer, strategy, task, _pool(c), ex)
                  for c in cands for ex in block]
        owners: list[str | None] = [c.id for c in cands for _ in block]

        async def send(
            requests: list[LLMRequest], purpose: str, who: list[str | None]
        ) -> list[LLMResponse]:
            return await self.calls.call(self.pool, [self._moded(r) for r in requests], purpose,
                                         who)

        answers = await lockstep(chains, owners, send)
        for a in answers:
            for step, reason in a.notes:
                self.reject(step, reason, "")
        return [a.response for a in answers]

    async def _verdicts(
        self, pairs: list[tuple[Candidate, Example, LLMResponse]], results: list[ExampleResult]
    ) -> list[Verdict | None]:
        """The judge's verdict on each answer (``metric: judge``; None for other metrics and
        for answers with nothing to judge)."""
        if self.judge is None:
            return [None] * len(pairs)
        items = [Judged(cand.id, ex, r.prediction if r.failure is None else None)
                 for (cand, ex, _), r in zip(pairs, results, strict=True)]
        return await self.judge.verdicts(items)

    async def _calibration(self, cands: list[Candidate]) -> dict[str, dict[str, float]]:
        """Each prompt's label scores for the content-free input (a failed call: none)."""
        task = self.task
        assert isinstance(task, Task)
        requests = [self._moded(task.content_free_request(c.text, soft_prompt_of(c)))
                    for c in cands]
        answers = await self.calls.call(self.pool, requests, "calibrate", [c.id for c in cands])
        return {c.id: dict(a.label_logprobs) for c, a in zip(cands, answers, strict=True)
                if a.error is None and a.label_logprobs}

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
                self.reject(cand.operator, "run_failed", score.outcomes[0].failure or "")
            self._record(cand, score)
        return scores

    def _moded(self, request: LLMRequest) -> LLMRequest:
        """The task model's request in its mode (``models.task.mode``)."""
        mode = self.spec.models.task.mode
        return request if mode == "chat" else dataclasses.replace(request, mode=mode)

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
        incumbent = self.incumbents.get(key)
        earlier = {k: v for k, v in incumbent[1].items() if k in seen_ids} if incumbent else None
        keep = set(survivors(per, [c.id for c in alive], confidence, earlier))
        self.racing_saved += (len(alive) - len(keep)) * remaining
        return [c for c in alive if c.id in keep]

    def _affordable(
        self,
        candidates: Sequence[Candidate],
        asks: Callable[[Candidate], list[LLMRequest]],
        per: Callable[[Candidate], int] = lambda cand: 1,
    ) -> int:
        """How many candidates (in order) the budget can score completely, cache hits being free.
        ``per``: the calls behind each request not cached (a chain behind its first)."""
        unlimited = 10**12
        left = self.budget.affordable(unlimited)
        money = self.budget.usd_left()  # None: no money budget
        if left == unlimited and money is None:
            return len(candidates)
        seen: set[str] = set()
        for k, cand in enumerate(candidates):
            requests = {r.cache_key(self.pool.model): r for r in asks(cand)}
            unpaid = self.calls.unanswered(sorted(requests.keys() - seen))
            new = len(unpaid) * per(cand)
            if new > left:
                self.budget.short = "calls"
                return k
            if money is not None:  # its most, so that no call of it is refused half way
                most = self.calls.bound(self.pool, [requests[key] for key in sorted(unpaid)])
                if most * per(cand) > money:
                    self.budget.short = "usd"
                    return k
                money -= most * per(cand)
            left -= new
            seen |= requests.keys()
        return len(candidates)

    def examples(self, split: str, subset: int | None) -> tuple[Example, ...]:
        assert isinstance(self.task, Task)
        examples = self.task.split(split)
        if subset is None or subset >= len(examples):
            return examples
        # a fixed sample for the whole search, or a fresh one each generation when asked
        epoch = self.generation if self.spec.evaluation.resample_subsets else 0
        key = (split, subset, epoch)
        if key not in self._subsets:
            # its own generator: the sample must not depend on what the algorithm drew before
            rng = random.Random(f"{self.spec.seed}:{split}:{subset}:{epoch}")
            self._subsets[key] = tuple(rng.sample(list(examples), subset))
        return self._subsets[key]

    def _record(self, cand: Candidate, score: Score) -> None:
        if not self.budget.final and score.n > 0:  # the search's own fitness, on its split
            prior = self.search_scores.get(cand.id)
            if prior is None or (prior.subset is not None and score.subset is None):
                self.search_scores[cand.id] = score
            if self.best_search is None or score.value > self.best_search:
                self.best_search = score.value
        if self.budget.final and score.n > 0:  # what pairs two finalists example by example
            self.recorder.outcomes(cand.id, score.split, score.outcomes)
        elif self.judge is not None and score.n > 0:  # the judge's reasons, for every candidate
            self.recorder.outcomes(cand.id, SEARCH, score.outcomes)
        self.recorder.scored(cand, EvaluationRecord(
            candidate_id=cand.id, split=score.split, value=score.value, n=score.n,
            failures=score.failures, subset=score.subset, generation=cand.generation,
        ))
        self.bus.publish(CandidateScored(self.job_id, cand.id, cand.generation, cand.operator,
                                         score.split, score.value, score.n))


def judge_calls(task: Task) -> int:
    """The most judge calls one answer costs (a pairwise baseline from the seed prompt is one
    more, paid once per example for the job and counted here as if for every candidate)."""
    if not task.judged:
        return 0
    rubric = task.metric.rubric  # type: ignore[attr-defined]  # a JudgeMetric's
    return judge.calls_per_example(rubric) + (rubric.mode == "pairwise"
                                              and rubric.against == "seed")


def soft_prompt_of(cand: Candidate) -> SoftPrompt | None:
    """A soft-prompt candidate's vectors, as a request carries them (None for text)."""
    return SoftPrompt.from_meta(cand.meta) if cand.kind == "soft_prompt" else None


def _pool(cand: Candidate) -> list[str]:
    return strategies.pool_of(cand.text, cand.meta)


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
