"""Parent selection, drawn from the job's own ``random.Random``.

DEAP's selection operators draw from the process-global ``random`` module; jobs here must be
reproducible from their own seed even when several share a process, so these take an ``rng``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def roulette(rng: random.Random, items: Sequence[T], fitness: Sequence[float], k: int) -> list[T]:
    """``k`` distinct items, each drawn with probability proportional to its fitness.

    A small floor keeps zero-fitness items selectable, as a wheel with no area would stall.
    """
    if k > len(items):
        raise ValueError(f"cannot draw {k} distinct items from {len(items)}")
    pool = list(range(len(items)))
    weights = [max(f, 0.0) + 1e-6 for f in fitness]
    chosen: list[T] = []
    for _ in range(k):
        total = sum(weights[i] for i in pool)
        pick = rng.random() * total
        acc = 0.0
        for pos, i in enumerate(pool):
            acc += weights[i]
            if pick <= acc or pos == len(pool) - 1:
                chosen.append(items[i])
                pool.pop(pos)
                break
    return chosen


def top_k(items: Sequence[T], fitness: Sequence[float], k: int) -> list[T]:
    """The ``k`` fittest, best first; ties keep the earlier item (stable)."""
    order = sorted(range(len(items)), key=lambda i: -fitness[i])
    return [items[i] for i in order[:k]]


def rank_based(rng: random.Random, items: Sequence[T], fitness: Sequence[float], k: int) -> list[T]:
    """``k`` distinct items drawn with probability ∝ 1 / (rank + n), rank 0 being the fittest.

    The weights fall off gently with rank, so weak members still get picked now and then (the
    parent choice of EoH).
    """
    if k > len(items):
        raise ValueError(f"cannot draw {k} distinct items from {len(items)}")
    order = sorted(range(len(items)), key=lambda i: -fitness[i])
    weight = {i: 1.0 / (rank + len(items)) for rank, i in enumerate(order)}
    return roulette(rng, items, [weight[i] for i in range(len(items))], k)
