"""Answers scored by a judge model (``metric: judge``): the calls behind ``evo/judge.py``.

The judge's calls are paid like every other call (cache, budget, ledger marked ``judge``, replay
after a crash), sent a round at a time: every answer of a block goes to the judge together. A
pairwise comparison with the seed prompt first asks the task model for the seed's answer to
each example (purpose ``baseline``: one call per example for the whole job, then the cache's).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from evo import judge
from evo.judge import Verdict
from evo.llm import LLMRequest, LLMResponse
from evo.rubric import Rubric
from evo.task import Example, Task
from workers.calls import Calls
from workers.pool import Pool


@dataclass(frozen=True)
class Judged:
    """One answer to judge: whose it is, the example, and the answer (None: there is none to
    judge, its call failed or it was empty)."""

    owner: str | None
    example: Example
    answer: str | None


class Judge:
    def __init__(
        self,
        task: Task,
        rubric: Rubric,
        calls: Calls,
        judge_pool: Pool,
        task_pool: Pool,
        moded: Callable[[LLMRequest], LLMRequest],
    ) -> None:
        self.task, self.rubric, self.calls = task, rubric, calls
        self.judge_pool, self.task_pool, self.moded = judge_pool, task_pool, moded

    async def verdicts(self, items: Sequence[Judged]) -> list[Verdict | None]:
        """A verdict per item (None where there was no answer to judge)."""
        todo = [i for i, item in enumerate(items) if item.answer is not None]
        out: list[Verdict | None] = [None] * len(items)
        if not todo:
            return out
        rubric, about = self.rubric, self.task.description
        if rubric.mode == "pointwise":
            k = len(rubric.criteria)
            requests = [q for i in todo for q in judge.pointwise_requests(
                rubric, about, items[i].example.input, items[i].answer or "",
                items[i].example.target if rubric.reference else None)]
            texts = await self._ask(requests, [items[i].owner for i in todo for _ in range(k)])
            for n, i in enumerate(todo):
                got = texts[n * k : (n + 1) * k]
                errors = [e for _, e in got if e]
                out[i] = _failed(errors[0]) if len(errors) == k else judge.pointwise_verdict(
                    [None if e else t for t, e in got], rubric)
            return out
        baselines = await self._baselines([items[i].example for i in todo])
        requests, owners = [], []
        for i, base in zip(todo, baselines, strict=True):
            if base is None or base == items[i].answer:
                continue
            requests += judge.pairwise_requests(rubric, about, items[i].example.input,
                                                items[i].answer or "", base)
            owners += [items[i].owner] * 2
        texts = iter(await self._ask(requests, owners))
        for i, base in zip(todo, baselines, strict=True):
            if base is None:
                out[i] = Verdict(None, failure="call_error: the baseline answer's call failed")
                continue
            if base == items[i].answer:  # the same text: a tie, whatever a judge would say
                out[i] = Verdict(0.5, ("the same answer as the baseline",), winners=("tie", "tie"))
                continue
            (first, e1), (second, e2) = next(texts), next(texts)
            if e1 and e2:
                out[i] = _failed(e1)
                continue
            out[i] = judge.pairwise_verdict(None if e1 else first, None if e2 else second)
        return out

    async def _ask(
        self, requests: list[LLMRequest], owners: list[str | None]
    ) -> list[tuple[str, str | None]]:
        """The judge's whole answers (pre-fill included) as (text, error)."""
        if not requests:
            return []
        responses = await self.calls.call(self.judge_pool, requests, judge.JUDGE, owners)
        return [(judge.answer_of(q, r.text), r.error)
                for q, r in zip(requests, responses, strict=True)]

    async def _baselines(self, examples: list[Example]) -> list[str | None]:
        """What each example is compared with in a pairwise judgment (None: its call failed)."""
        if self.rubric.against == "reference":
            return [ex.target for ex in examples]
        seed = self.task.seed_prompts[0]
        requests = [self.moded(self.task.request(seed, ex, label_scoring=False))
                    for ex in examples]
        answers: list[LLMResponse] = await self.calls.call(
            self.task_pool, requests, judge.BASELINE, [None] * len(requests))
        return [None if a.error else a.text.strip() for a in answers]


def _failed(error: str) -> Verdict:
    return Verdict(None, failure=f"call_error: {error}")
