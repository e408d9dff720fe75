"""Candidates (prompts, programs) and their scores."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# prompt: instruction text; program: code run in the sandbox; soft_prompt: continuous vectors fed
# in place of token embeddings (BBT); mutation_prompt: a prompt that rewrites task-prompts
# (Promptbreeder); instruction: one item of an evolved instruction data set (Evol-Instruct)
Kind = Literal["prompt", "program", "soft_prompt", "mutation_prompt", "instruction"]


@dataclass(frozen=True)
class Candidate:
    """One point of the search; ``parents`` are candidate ids, in the order the operator used."""

    id: str
    text: str
    generation: int
    operator: str
    parents: tuple[str, ...] = ()
    kind: Kind = "prompt"
    island: int = 0
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class Outcome:
    """One example's result: what the model answered and what it earned."""

    example_id: str
    target: str
    prediction: str
    score: float
    failure: str | None = None
    # label -> log-probability the model gave it (calibrated when calibration is on); None where
    # the answer was generated, not label-scored, or the call failed. For losses (BBT, BDPL).
    label_logprobs: dict[str, float] | None = field(default=None, compare=False)
    # metric judge: the judge's criterion scores or winners, its reasoning (evo/judge.py)
    judge: dict[str, Any] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Score:
    """A candidate's fitness on one split (or a subset of it).

    ``value`` is the mean metric over the ``n`` examples scored; ``failures`` counts examples whose
    call failed or whose answer could not be parsed (they score 0 and are recorded, not hidden).
    """

    candidate_id: str
    split: str
    value: float
    n: int
    failures: int = 0
    subset: str | None = None
    # per-example outcomes, in example order, for methods whose objective needs them (GrIPS)
    outcomes: tuple[Outcome, ...] = field(default=(), compare=False, repr=False)
