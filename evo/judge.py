"""A model as the judge of free-text answers: the requests it is sent and how its answers are read.

    pointwise   verdict ← JUDGE(input, [reference], answer, criteria)       1 call per example
                score   = weighted mean of the criterion scores, each mapped to [0, 1]
    pairwise    v1 ← JUDGE(input, A = answer, B = baseline, criteria)
                v2 ← JUDGE(input, A = baseline, B = answer, criteria)        2 calls per example
                score   = mean over the readable verdicts of 1 (answer wins), ½ (tie), 0

A small judge follows formats loosely, so each request pre-fills the opening of its answer and
the reading is lenient about spacing, case and "4/5" for 4. What still cannot be read has no
value: the example scores 0 like an unparsed answer of any task, but with the failure
``judge_unparsable`` (the judge's reasoning kept), counted in the candidate's failures and the
job's stats, so that a judge that cannot follow the format shows rather than hides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evo.llm import LLMRequest, Message
from evo.rubric import Rubric

JUDGE, BASELINE = "judge", "baseline"  # the ledger's purposes for judge and baseline calls
UNPARSABLE = "judge_unparsable"

POINTWISE = """Grade the response below.

Task: {task}
Input: {input}{reference}
Response: {answer}

Score the response on each criterion, 1 being the worst:
{criteria}

Write one short sentence of reasoning, then one line per criterion in the form "name: score"."""

PAIRWISE = """Two responses were written for the input below. Decide which one is better.

Task: {task}
Input: {input}

Response A: {first}

Response B: {second}

Judge them on:
{criteria}

Write one short sentence of reasoning, then a last line "Winner: A", "Winner: B" or \
"Winner: tie"."""

PREFILL = "Reasoning:"
_WINNER = re.compile(r"winner\W{0,3}(?:is\s+)?(?:response\s+)?(a|b|tie)\b", re.I)


@dataclass(frozen=True)
class JudgeMetric:
    """``metric: judge``: the score of an answer comes from the judge model (``workers/judging.py``
    asks it); the metric itself only tells an empty answer, which is not worth a judge's call."""

    rubric: Rubric
    name: str = "judge"
    judged: bool = field(default=True, init=False)

    def parse(self, prediction: str) -> str | None:
        return prediction.strip() or None

    def __call__(self, prediction: str, example: Any) -> float:
        raise TypeError("a judge metric's score comes from the judge model, not from the text")


@dataclass(frozen=True)
class Verdict:
    """What the judge said of one answer: its score in [0, 1] (None: no readable verdict), the
    criterion scores (pointwise) or the winners in each order (pairwise), its reasoning, and how
    many of its answers could not be read."""

    value: float | None
    reasoning: tuple[str, ...] = ()
    scores: dict[str, int] | None = None
    winners: tuple[str | None, ...] = ()
    unparsable: int = 0
    failure: str | None = None  # why there is no value: unparsable, or the judge's call failed

    def __post_init__(self) -> None:
        if self.value is None and self.failure is None:
            object.__setattr__(self, "failure", UNPARSABLE)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reasoning": list(self.reasoning), "unparsable": self.unparsable}
        if self.value is not None:
            out["value"] = self.value
        if self.scores is not None:
            out["scores"] = dict(self.scores)
        if self.winners:
            out["winners"] = list(self.winners)
        return out


def _criteria(rubric: Rubric, with_scale: bool = True) -> str:
    return "\n".join(
        f"- {c.name}" + (f" (1-{c.scale})" if with_scale else "") + f": {c.description}"
        for c in rubric.criteria
    )


def _request(text: str, rubric: Rubric) -> LLMRequest:
    return LLMRequest(messages=(Message("user", text),), max_tokens=rubric.max_tokens,
                      temperature=0.0, prefill=PREFILL)


def pointwise_request(
    rubric: Rubric, task: str, example_input: str, answer: str, reference: str | None = None
) -> LLMRequest:
    ref = f"\nReference answer: {reference}" if reference is not None else ""
    return _request(POINTWISE.format(task=task, input=example_input, reference=ref,
                                     answer=answer, criteria=_criteria(rubric)), rubric)


def pairwise_requests(
    rubric: Rubric, task: str, example_input: str, answer: str, baseline: str
) -> tuple[LLMRequest, LLMRequest]:
    """The comparison in both orders: the answer as A, then the baseline as A."""

    def one(first: str, second: str) -> LLMRequest:
        return _request(PAIRWISE.format(task=task, input=example_input, first=first,
                                        second=second, criteria=_criteria(rubric, False)), rubric)

    return one(answer, baseline), one(baseline, answer)


def _score_line(name: str) -> re.Pattern[str]:
    # "accuracy: 4", "- Accuracy = 4/5", "**accuracy**: 4 out of 5"
    return re.compile(rf"{re.escape(name)}\W{{0,6}}?(\d+)(?:\s*(?:/|out of)\s*\d+)?", re.I)


def read_pointwise(text: str, rubric: Rubric) -> tuple[dict[str, int] | None, str]:
    """The criterion scores in a judge's answer (None unless every criterion has one in its
    range; the last mention counts) and the reasoning before the first of them."""
    scores: dict[str, int] = {}
    first = len(text)
    for c in rubric.criteria:
        found = list(_score_line(c.name).finditer(text))
        if not found:
            return None, text.strip()
        value = int(found[-1].group(1))
        if not 1 <= value <= c.scale:
            return None, text.strip()
        scores[c.name] = value
        first = min(first, found[-1].start())
    return scores, text[:first].strip()


def read_winner(text: str) -> tuple[str | None, str]:
    """"A", "B" or "tie" from a judge's last "Winner: ..." line (None: none), and its reasoning."""
    found = list(_WINNER.finditer(text))
    if not found:
        return None, text.strip()
    word = found[-1].group(1).lower()
    return ("tie" if word == "tie" else word.upper()), text[: found[-1].start()].strip()


def pointwise_verdict(text: str | None, rubric: Rubric) -> Verdict:
    """``text``: the judge's answer (None: the call failed)."""
    if text is None:
        return Verdict(None, unparsable=1)
    scores, reasoning = read_pointwise(text, rubric)
    if scores is None:
        return Verdict(None, (reasoning,), unparsable=1)
    return Verdict(rubric.value(scores), (reasoning,), scores=scores)


def pairwise_verdict(first: str | None, second: str | None) -> Verdict:
    """The answer was A in ``first`` and B in ``second``."""
    winners: list[str | None] = []
    reasons: list[str] = []
    points: list[float] = []
    for text, mine in ((first, "A"), (second, "B")):
        winner, reasoning = read_winner(text) if text is not None else (None, "")
        winners.append(winner)
        reasons.append(reasoning)
        if winner is not None:
            points.append(0.5 if winner == "tie" else float(winner == mine))
    value = sum(points) / len(points) if points else None
    return Verdict(value, tuple(reasons), winners=tuple(winners),
                   unparsable=sum(w is None for w in winners))


def calls_per_example(rubric: Rubric) -> int:
    """Judge calls per answer (the baseline's answer, when it is the seed's, is one more call
    per example, shared by every candidate)."""
    return 2 if rubric.mode == "pairwise" else 1
