"""A model as the judge of free-text answers: the requests it is sent and how its answers are read.

    pointwise   s_c   ← JUDGE(input, [reference], answer, criterion c)   1 call per criterion
                score = weighted mean of the s_c, each mapped from 1..scale to [0, 1]
    pairwise    v1 ← JUDGE(input, A = answer, B = baseline, criteria)
                v2 ← JUDGE(input, A = baseline, B = answer, criteria)    2 calls per example
                score = mean over the readable verdicts of 1 (answer wins), ½ (tie), 0

One criterion a call, as G-Eval does: a small judge asked for several scores in one answer
rarely gives them all. Each answer is pre-filled up to the verdict ("Score:", "Winner:"), the
reason comes after it (a small model told to reason first seldom gets to the verdict), and the
reading is lenient about spacing, case and "4/5" for 4. What still cannot be read has no value:
the example scores 0 like an unparsed answer of any task, but with the failure
``judge_unparsable`` (the judge's text kept), counted in the candidate's failures and the job's
stats, so that a judge that cannot follow the format shows rather than hides.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from evo.llm import LLMRequest, Message
from evo.rubric import Criterion, Rubric

JUDGE, BASELINE = "judge", "baseline"  # the ledger's purposes for judge and baseline calls
UNPARSABLE = "judge_unparsable"

POINTWISE = """Grade the response below on one criterion.

Task: {task}
Input: {input}{reference}
Response: {answer}

Criterion: {name}: {description}

How well does the response meet it? Reply with a whole number from 1 to {scale} ({scale} is \
best), then one line "Reason:" with a short reason."""

PAIRWISE = """Two responses were written for the input below. Decide which one is better.

Task: {task}
Input: {input}

Response A: {first}

Response B: {second}

Judge them on:
{criteria}

Reply with a line "Winner: A", "Winner: B" or "Winner: tie", then one line "Reason:" with a \
short reason."""

SCORE, WINNER = "Score:", "Winner:"  # the pre-filled openings of the two kinds of answer
_SCORE = re.compile(r"score\W{0,6}?(\d+)[*_]*(?:\s*(?:/|out of)\s*\d+)?", re.I)
_REASON = re.compile(r"reason(?:ing)?\s*:\s*", re.I)
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


def _criteria(rubric: Rubric) -> str:
    return "\n".join(f"- {c.name}: {c.description}" for c in rubric.criteria)


def _request(text: str, rubric: Rubric, prefill: str) -> LLMRequest:
    return LLMRequest(messages=(Message("user", text),), max_tokens=rubric.max_tokens,
                      temperature=0.0, prefill=prefill)


def is_judge_request(request: LLMRequest) -> bool:
    text = request.messages[-1].content if request.messages else ""
    return text.startswith((POINTWISE[:20], PAIRWISE[:20]))


def answer_of(request: LLMRequest, text: str) -> str:
    """The judge's whole answer: the pre-filled opening and what the model wrote after it."""
    return request.prefill + text


def pointwise_requests(
    rubric: Rubric, task: str, example_input: str, answer: str, reference: str | None = None
) -> list[LLMRequest]:
    """One request per criterion, in the rubric's order."""
    ref = f"\nReference answer: {reference}" if reference is not None else ""
    return [_request(POINTWISE.format(task=task, input=example_input, reference=ref,
                                      answer=answer, name=c.name, description=c.description,
                                      scale=c.scale), rubric, SCORE)
            for c in rubric.criteria]


def pairwise_requests(
    rubric: Rubric, task: str, example_input: str, answer: str, baseline: str
) -> tuple[LLMRequest, LLMRequest]:
    """The comparison in both orders: the answer as A, then the baseline as A."""

    def one(first: str, second: str) -> LLMRequest:
        return _request(PAIRWISE.format(task=task, input=example_input, first=first,
                                        second=second, criteria=_criteria(rubric)),
                        rubric, WINNER)

    return one(answer, baseline), one(baseline, answer)


def _reason(text: str, verdict: re.Match[str]) -> str:
    """The judge's reason: what follows its last "Reason:", else its words after the verdict."""
    found = list(_REASON.finditer(text))
    rest = text[found[-1].end():] if found else text[verdict.end():]
    return " ".join(rest.split()).lstrip(".,;:- ")


def read_score(text: str, criterion: Criterion) -> tuple[int | None, str]:
    """The score in a judge's answer on ``criterion`` (None: none in 1..scale), and its reason."""
    found = _SCORE.search(text)
    if found is None or not 1 <= int(found.group(1)) <= criterion.scale:
        return None, " ".join(text.split())
    return int(found.group(1)), _reason(text, found)


def read_winner(text: str) -> tuple[str | None, str]:
    """"A", "B" or "tie" from a judge's first "Winner: ..." (None: none), and its reason."""
    found = _WINNER.search(text)
    if found is None:
        return None, " ".join(text.split())
    word = found.group(1).lower()
    return ("tie" if word == "tie" else word.upper()), _reason(text, found)


def pointwise_verdict(texts: list[str | None], rubric: Rubric) -> Verdict:
    """``texts``: the judge's answer on each criterion (None: that call failed). A value needs
    every criterion's score."""
    scores: dict[str, int] = {}
    reasons = []
    for text, c in zip(texts, rubric.criteria, strict=True):
        value, reason = read_score(text, c) if text is not None else (None, "")
        reasons.append(reason)
        if value is not None:
            scores[c.name] = value
    missing = len(rubric.criteria) - len(scores)
    value = rubric.value(scores) if not missing else None
    return Verdict(value, tuple(reasons), scores=scores, unparsable=missing)


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
    return 2 if rubric.mode == "pairwise" else len(rubric.criteria)
