"""An in-memory engine, for testing an algorithm's logic without a driver, a store or Ray.

    engine = FakeEngine(task, reply=lambda ask: "<prompt>Be brief.</prompt>"[8:],
                        fitness=lambda cand, split: len(cand.text) / 100)
    await algorithm.run(engine)
    engine.made, engine.rejections, engine.checkpoints   # what it did

``reply`` answers each meta-LLM sample (``None``: the call failed); ``fitness`` gives a candidate's
score on a split, and ``outcomes``, where given, its per-example results (``Score.outcomes``, with
label log-probabilities for methods that learn from them).
``kept`` lists the candidates stored without a score. The engine holds to the same contract as
the driver (``evo/engine.py``): its rules are checked by the same functions, so an algorithm that
passes here breaks none of them. ``max_calls`` counts samples and scored candidates; crossing it
raises ``BudgetExhausted``.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from evo.candidate import Candidate, Kind, Outcome, Score
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
from evo.llm import Message
from evo.programs import ProgramTask
from evo.task import Task


@dataclass(frozen=True)
class Ask:
    """One meta-LLM sample asked for: what ``reply`` is given."""

    messages: tuple[Message, ...]
    prefill: str
    stop: tuple[str, ...]
    temperature: float
    max_tokens: int
    purpose: str
    model: ModelRole = "meta"  # "task": a request to the task model

    @property
    def prompt(self) -> str:
        return self.messages[-1].content


class FakeEngine:
    def __init__(
        self,
        task: Task | ProgramTask,
        *,
        reply: Callable[[Ask], str | None],
        fitness: Callable[[Candidate, str], float] = lambda cand, split: 0.0,
        outcomes: Callable[[Candidate, str], Sequence[Outcome]] | None = None,
        seed: int = 0,
        max_calls: int | None = None,
    ) -> None:
        self.task = task
        self.rng = random.Random(seed)
        self.reply = reply
        self.fitness = fitness
        self.outcomes = outcomes
        self.max_calls = max_calls
        self.calls = 0
        self.asked: list[Ask] = []
        self.made: list[Candidate] = []
        self.recorded: list[Candidate] = []  # stored unscored (``record``), in order
        self.scored: list[Score] = []
        self.rejections: Counter[str] = Counter()
        self.preferred: dict[str, float] = {}
        self.checkpoints: list[tuple[int, list[str], dict[str, Any]]] = []

    def _spend(self, n: int) -> None:
        if self.max_calls is not None and self.calls + n > self.max_calls:
            raise BudgetExhausted("calls")
        self.calls += n

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
        self._spend(n)
        out: list[Sample | None] = []
        for _ in range(n):
            ask = Ask(tuple(messages), prefill, tuple(stop), temperature, max_tokens, purpose,
                      model)
            self.asked.append(ask)
            text = self.reply(ask)
            out.append(None if text is None else Sample(text, f"ask-{len(self.asked)}"))
        return out

    async def evaluate(
        self, candidates: Sequence[Candidate], split: str = "dev", subset: int | None = None
    ) -> list[Score]:
        scores = []
        for cand in candidates:
            self._spend(1)
            tag = None if subset is None else str(subset)
            value = self.fitness(cand, split)
            outs = tuple(self.outcomes(cand, split)) if self.outcomes else ()
            failures = sum(o.failure is not None for o in outs)
            scores.append(Score(cand.id, split, value, max(1, len(outs)), failures, tag, outs))
        self.scored += scores
        return scores

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
        cand = new_candidate(f"c{len(self.made)}", text, operator=operator,
                             generation=generation, parents=parents, meta=meta,
                             kind=kind or task_kind(self.task), island=island, source=source)
        self.made.append(cand)
        return cand

    def lookup(self, ids: Sequence[str]) -> list[Candidate]:
        by_id = {c.id: c for c in self.made}
        return [by_id[i] for i in ids]

    def record(self, candidates: Sequence[Candidate]) -> None:
        stored = {c.id for c in self.recorded}
        check_recorded(candidates, stored)
        for cand in candidates:
            if cand.id not in stored:
                self.recorded.append(cand)
                stored.add(cand.id)

    def prefer(self, fitness: dict[str, float]) -> None:
        self.preferred.update(fitness)

    def reject(self, operator: str, reason: Rejection, detail: str = "") -> None:
        self.rejections[rejection_key(operator, reason, detail)] += 1

    async def generation_done(
        self, generation: int, population: Sequence[Candidate], state: dict[str, Any]
    ) -> None:
        self.checkpoints.append((generation, [c.id for c in population], checked_state(state)))

    @property
    def resume_point(self) -> tuple[int, dict[str, Any]] | None:
        """The last checkpoint as ``Algorithm.run`` takes it to resume."""
        if not self.checkpoints:
            return None
        generation, _, state = self.checkpoints[-1]
        return generation, state
