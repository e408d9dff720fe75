"""FunSearch's program database: islands of programs, clustered by their score signature.

Each island evolves on its own. Within an island, programs with the same *signature* (their score
on every instance) form one cluster. A prompt is built from one island: ``k`` clusters are drawn
by a Boltzmann distribution over the clusters' scores, whose temperature falls as the island
registers programs (and starts again after ``period`` of them), then one program per cluster,
shorter programs being likelier. Now and then the weaker half of the islands is wiped and each
is founded again with the best program of a random island of the stronger half.

Scores are min-max normalized within the island before the softmax, so that the temperature means
the same on every problem (bin-packing excess differs by thousandths, TSP ratios by tenths).
The database is plain data: ``to_json`` / ``from_json`` are its checkpoint; randomness comes
from the caller's generator.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Signature = tuple[float, ...]


def signature_of(values: Sequence[float]) -> Signature:
    """The per-instance scores as a cluster key (rounded: the same run can differ in the last
    bits of a float across machines)."""
    return tuple(round(float(v), 9) for v in values)


def softmax(values: Sequence[float], temperature: float) -> list[float]:
    top = max(values)
    weights = [math.exp((v - top) / temperature) for v in values]
    total = sum(weights)
    return [w / total for w in weights]


def draw(rng: random.Random, weights: Sequence[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


@dataclass
class Cluster:
    signature: Signature
    score: float  # the same for every program in the cluster: their mean over the instances
    programs: list[str] = field(default_factory=list)  # candidate ids, in arrival order


@dataclass
class Island:
    clusters: dict[Signature, Cluster] = field(default_factory=dict)
    registered: int = 0  # programs registered since the island was founded: the temperature step

    def best(self) -> Cluster | None:
        return max(self.clusters.values(), key=lambda c: c.score, default=None)

    def program_ids(self) -> list[str]:
        return [p for c in self.clusters.values() for p in c.programs]


class ProgramDatabase:
    """Islands of clustered programs. ``length`` gives a program's length by id (its code's
    characters), for the preference for shorter programs within a cluster."""

    def __init__(self, islands: int, *, temperature: float, period: int,
                 length: Callable[[str], int]) -> None:
        self.islands = [Island() for _ in range(islands)]
        self.temperature, self.period, self.length = temperature, period, length

    # ---- registering ------------------------------------------------------------------------

    def register(self, island: int, program: str, signature: Signature, score: float) -> None:
        isle = self.islands[island]
        cluster = isle.clusters.get(signature)
        if cluster is None:
            cluster = isle.clusters[signature] = Cluster(signature, score)
        if program not in cluster.programs:
            cluster.programs.append(program)
        isle.registered += 1

    # ---- sampling ---------------------------------------------------------------------------

    def cluster_temperature(self, island: int) -> float:
        """Falls linearly from ``temperature`` to almost 0 over ``period`` registrations, then
        starts again."""
        step = self.islands[island].registered % self.period
        return self.temperature * (1 - step / self.period)

    def cluster_probabilities(self, island: int) -> list[tuple[Cluster, float]]:
        clusters = list(self.islands[island].clusters.values())
        if not clusters:
            return []
        scores = [c.score for c in clusters]
        low, high = min(scores), max(scores)
        norm = [(s - low) / (high - low) if high > low else 0.0 for s in scores]
        probs = softmax(norm, self.cluster_temperature(island))
        return list(zip(clusters, probs, strict=True))

    def program_probabilities(self, cluster: Cluster) -> list[tuple[str, float]]:
        """Shorter programs likelier: a softmax over minus their lengths scaled to [0, 1)."""
        lengths = [self.length(p) for p in cluster.programs]
        low, high = min(lengths), max(lengths)
        scaled = [(n - low) / (high + 1e-6) for n in lengths]
        probs = softmax([-s for s in scaled], 1.0)
        return list(zip(cluster.programs, probs, strict=True))

    def sample(self, rng: random.Random, island: int, k: int) -> list[tuple[str, float]]:
        """(program id, score) of up to ``k`` programs from distinct clusters of ``island``,
        weakest first: the versions v0, v1, … of a prompt."""
        chosen: list[Cluster] = []
        pool = self.cluster_probabilities(island)
        while pool and len(chosen) < k:
            i = draw(rng, [p for _, p in pool])
            chosen.append(pool.pop(i)[0])
        picked = []
        for cluster in chosen:
            programs = self.program_probabilities(cluster)
            picked.append((programs[draw(rng, [p for _, p in programs])][0], cluster.score))
        return sorted(picked, key=lambda pick: pick[1])

    # ---- resetting --------------------------------------------------------------------------

    def reset_weaker_half(self, rng: random.Random) -> list[tuple[int, int]]:
        """Wipe the weaker half of the islands (ranked by their best score; ties broken at
        random) and found each again with the best program of a random stronger island:
        (reset island, its founder's island) pairs."""
        def best(i: int) -> float:
            top = self.islands[i].best()
            return -math.inf if top is None else top.score

        noise = [rng.random() for _ in self.islands]  # drawn for every island: replays the same
        order = sorted(range(len(self.islands)), key=lambda i: (best(i), noise[i]))
        weaker, stronger = order[: len(order) // 2], order[len(order) // 2 :]
        done = []
        for i in weaker:
            source = stronger[rng.randrange(len(stronger))]
            top = self.islands[source].best()
            self.islands[i] = Island()
            if top is not None:
                founder = min(top.programs, key=self.length)
                self.register(i, founder, top.signature, top.score)
            done.append((i, source))
        return done

    # ---- reading ----------------------------------------------------------------------------

    def best(self) -> tuple[str, float] | None:
        """The best program anywhere (the shortest of its cluster) and its score."""
        tops = [c for isle in self.islands if (c := isle.best()) is not None]
        if not tops:
            return None
        top = max(tops, key=lambda c: c.score)
        return min(top.programs, key=self.length), top.score

    def program_ids(self) -> list[str]:
        """Every program held, once each, in island order."""
        return list(dict.fromkeys(p for isle in self.islands for p in isle.program_ids()))

    # ---- the checkpoint ---------------------------------------------------------------------

    def to_json(self) -> list[dict[str, Any]]:
        return [
            {"registered": isle.registered,
             "clusters": [{"signature": list(c.signature), "score": c.score,
                           "programs": list(c.programs)} for c in isle.clusters.values()]}
            for isle in self.islands
        ]

    def restore(self, islands: list[dict[str, Any]]) -> None:
        self.islands = []
        for data in islands:
            isle = Island(registered=data["registered"])
            for c in data["clusters"]:
                sig = tuple(c["signature"])
                isle.clusters[sig] = Cluster(sig, c["score"], list(c["programs"]))
            self.islands.append(isle)
