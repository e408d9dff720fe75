"""Promptbreeder's units and their few-shot contexts: what a tournament's mutation is planned
from, as plain data and pure functions (the loop is in ``promptbreeder.py``).

A task-prompt with a context has the context's working-outs, then its instruction, as its text;
its ``meta`` keeps the two apart (``instruction``, ``context``), so that mutation works on the
instruction alone.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from evo.candidate import Candidate, Score
from evo.meta_prompt import words

Unit = tuple[Candidate, Candidate]  # (task-prompt, mutation-prompt)
WorkingOut = tuple[str, str]  # (example id, the answer given)

WORKED = 8  # correct working-outs kept per unit: enough to draw from, small in a checkpoint
SAME = 0.9  # word overlap (Jaccard) above which the eda lists count two task-prompts as one


@dataclass(frozen=True)
class Plan:
    """One tournament's mutation, every random choice made before any call is awaited."""

    winner: Unit
    loser: int  # the loser's place in the population
    operator: str  # a mutation operator, "crossover", or "none" (nothing usable to do)
    style: str = ""  # thinking style (hyper_zero)
    shown: tuple[Candidate, ...] = ()  # task-prompts shown (eda, eda_rank, lineage)
    donor: Candidate | None = None  # crossover
    working: WorkingOut | None = None  # lamarckian
    context: tuple[WorkingOut, ...] = ()


def instruction(c: Candidate) -> str:
    """A task-prompt's instruction, without the few-shot context its text may start with."""
    return c.meta.get("instruction", c.text)


def context_of(c: Candidate) -> tuple[WorkingOut, ...]:
    return tuple((e, o) for e, o in c.meta.get("context", ()))


def distinct(cands: Sequence[Candidate]) -> list[Candidate]:
    """Task-prompts whose instructions are not near-copies of an earlier one's (word overlap)."""
    kept: list[tuple[Candidate, set[str]]] = []
    for c in cands:
        ws = set(words(instruction(c)))
        if all(len(ws & other) < SAME * len(ws | other) for _, other in kept):
            kept.append((c, ws))
    return [c for c, _ in kept]


def working_outs(
    score: Score, verbalizers: Mapping[str, str], known: Mapping[str, object]
) -> list[WorkingOut]:
    """The first ``WORKED`` examples a score's task-prompt answered correctly, with its answer
    (a label as its verbalizer word); ``known``: the examples a working-out may name."""
    return [(o.example_id, verbalizers.get(o.prediction, o.prediction))
            for o in score.outcomes
            if o.failure is None and o.score >= 1.0 and o.example_id in known][:WORKED]


def shuffle_context(
    rng: random.Random, context: tuple[WorkingOut, ...], worked: Sequence[WorkingOut],
    size: int, resample: float,
) -> tuple[WorkingOut, ...]:
    """A winner's context for its mutant: one of its correct working-outs added (while there is
    room) or swapped in, or, with probability ``resample``, the whole list drawn afresh."""
    if size == 0 or not worked:
        return context
    if rng.random() < resample:
        return tuple(rng.sample(list(worked), min(size, len(worked))))
    fresh = [w for w in worked if w not in context]
    if not fresh:
        return context
    new = rng.choice(fresh)
    if len(context) < size:
        return (*context, new)
    i = rng.randrange(len(context))
    return (*context[:i], new, *context[i + 1 :])
