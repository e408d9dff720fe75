"""Is the winner really better than the best seed? A paired comparison on the same test examples.

Both prompts were scored on the same examples, so the comparison is paired: each example gives a
difference (winner's score − seed's). For a 0/1 metric (accuracy) the test is McNemar's exact
test on the examples only one of the two got right; for other metrics, whether the paired
bootstrap interval of the mean difference excludes zero. The interval is always the paired
bootstrap's, in points (hundredths of the metric's scale when the metric runs 0–1).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RESAMPLES = 5000


@dataclass(frozen=True)
class Comparison:
    n: int  # examples both were scored on
    diff: float  # mean difference, winner − seed, in points
    low: float  # the interval's ends, in points
    high: float
    confidence: float
    test: str  # "mcnemar" (0/1 scores) or "bootstrap"
    p: float | None  # McNemar's two-sided exact p; None for the bootstrap test
    only_winner: int  # examples only the winner got right (0/1 scores)
    only_seed: int  # examples only the seed got right
    shown: bool  # the winner is shown to be better at this confidence

    def sentence(self) -> str:
        level = f"{self.confidence:.0%}"
        by = f"better than the best seed by {self.diff:+.1f} points" if self.diff >= 0 else (
            f"worse than the best seed by {-self.diff:.1f} points")
        head = f"{by}, {level} interval [{self.low:+.1f}, {self.high:+.1f}]"
        why = "" if self.p is None else f", McNemar p {_p(self.p)}"
        verdict = "shown to be better" if self.shown else "not shown to be better"
        return f"{head}: {verdict} on {self.n} test examples{why}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sentence": self.sentence()}


def compare(
    winner: Sequence[float],
    seed: Sequence[float],
    *,
    confidence: float = 0.95,
    rng: random.Random | None = None,
    scale: float = 100.0,
) -> Comparison:
    """The winner against the seed on the same examples, in the same order."""
    if len(winner) != len(seed) or not winner:
        raise ValueError("a paired comparison needs scores of both on the same examples")
    diffs = [w - s for w, s in zip(winner, seed, strict=True)]
    low, high = paired_interval(diffs, confidence, rng or random.Random(0))
    binary = all(v in (0.0, 1.0) for v in (*winner, *seed))
    only_winner = sum(1 for w, s in zip(winner, seed, strict=True) if w > s) if binary else 0
    only_seed = sum(1 for w, s in zip(winner, seed, strict=True) if s > w) if binary else 0
    mean = sum(diffs) / len(diffs)
    if binary:
        p: float | None = mcnemar_exact(only_winner, only_seed)
        shown = mean > 0 and p < 1 - confidence
    else:
        p, shown = None, low > 0
    return Comparison(len(diffs), scale * mean, scale * low, scale * high, confidence,
                      "mcnemar" if binary else "bootstrap", p, only_winner, only_seed, shown)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p: of the b + c examples where the two disagree, how likely a
    split at least this uneven is if each is equally likely to be the one that is right."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_interval(
    diffs: Sequence[float], confidence: float, rng: random.Random, resamples: int = RESAMPLES
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean paired difference (examples resampled)."""
    d = np.asarray(diffs, dtype=float)
    draws = np.random.default_rng(rng.getrandbits(64)).integers(0, len(d), (resamples, len(d)))
    means = d[draws].mean(axis=1)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def _p(p: float) -> str:
    return f"= {p:.2g}" if p >= 0.001 else "< 0.001"
