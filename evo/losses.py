"""Losses of a label-scored prompt, from the label log-probabilities of its answers.

Methods that learn a prompt from output probabilities alone (BBT, BDPL) minimize one of these on
a training sample instead of maximizing accuracy: cross-entropy and the hinge are smooth enough
to tell two prompts apart when both get every answer wrong. An answer with no label
log-probabilities (a failed call, a generated answer) counts as the uniform guess: it carries no
information either way, so it neither rewards nor punishes the prompt beyond knowing nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal

from evo.candidate import Outcome

Loss = Literal["ce", "hinge", "accuracy"]
HINGE_MARGIN = 1.0  # in nats: the target must beat every other label by this much to cost nothing


def example_loss(kind: Loss, logprobs: Mapping[str, float] | None, target: str) -> float:
    """One answer's loss. ``logprobs`` by label (renormalized here over the label set)."""
    if not logprobs or target not in logprobs:
        k = max(2, len(logprobs or {}))
        return {"ce": math.log(k), "hinge": HINGE_MARGIN, "accuracy": 1.0 - 1.0 / k}[kind]
    top = max(logprobs.values())
    norm = top + math.log(sum(math.exp(v - top) for v in logprobs.values()))
    if kind == "ce":
        return norm - logprobs[target]
    others = [v for label, v in logprobs.items() if label != target]
    gap = logprobs[target] - max(others) if others else math.inf
    if kind == "hinge":
        return max(0.0, HINGE_MARGIN - gap)
    return 0.0 if gap > 0 else 1.0  # accuracy, as a loss: 1 for a wrong (or tied) answer


def mean_loss(kind: Loss, outcomes: Sequence[Outcome]) -> float:
    """The mean loss over a score's outcomes (``math.inf`` for none)."""
    if not outcomes:
        return math.inf
    return sum(example_loss(kind, o.label_logprobs, o.target) for o in outcomes) / len(outcomes)
