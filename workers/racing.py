"""Racing: stop scoring a candidate once it is significantly behind the leader.

Candidates are scored on the same examples in the same order, one block at a time. After each
block (once ``min_examples`` are in), every candidate is compared with the leader on the examples
both have seen, by an exact one-sided sign test on the paired differences: if the leader wins on so
many of the examples where the two differ that a fair coin would do so with probability below
``1 - confidence``, the candidate is dropped. Ties carry no information and are ignored, which
suits 0/1 metrics where most examples tie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from math import comb


def sign_test_p(wins: int, losses: int) -> float:
    """P(at least ``wins`` successes of wins+losses fair coin flips): small when wins dominate."""
    n = wins + losses
    if n == 0:
        return 1.0
    return sum(comb(n, k) for k in range(wins, n + 1)) / 2**n


def behind(
    leader: Mapping[str, float], other: Mapping[str, float], confidence: float
) -> bool:
    """Whether ``other`` is significantly worse than ``leader`` on their shared examples."""
    shared = leader.keys() & other.keys()
    wins = sum(leader[k] > other[k] for k in shared)
    losses = sum(leader[k] < other[k] for k in shared)
    return sign_test_p(wins, losses) < 1.0 - confidence


def survivors(
    scores: Mapping[str, Mapping[str, float]],
    alive: Sequence[str],
    confidence: float,
    incumbent: Mapping[str, float] | None = None,
) -> list[str]:
    """The candidates of ``alive`` not significantly behind the leader.

    The leader is the best mean among ``alive`` and the ``incumbent`` (the best candidate scored
    earlier on the same examples, given as its per-example scores).
    """
    pool = {cid: scores[cid] for cid in alive}
    if incumbent:
        pool["__incumbent__"] = incumbent

    def mean_on(cid: str) -> float:
        own = pool[cid]
        return sum(own.values()) / max(1, len(own))

    leader = max(pool, key=mean_on)
    return [c for c in alive if c == leader or not behind(pool[leader], pool[c], confidence)]
