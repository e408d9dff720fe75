"""TSP by construction: a tour grows one city at a time, the evolved rule picks the next city.

Instances are uniform random points in the unit square (fixed seed). The objective is the tour
length over the Beardwood-Halton-Hammersley estimate 0.7124 * sqrt(n * area) of the optimal tour
length; lower is better (nearest neighbour scores about 1.25 at these sizes).
"""

from __future__ import annotations

import numpy as np

from evo.programs import ProgramTask, SeedProgram

SIGNATURE = '''import numpy as np

def select_next_node(current: int, start: int, unvisited: np.ndarray,
                     distances: np.ndarray) -> int:
    """Pick the next city of the tour from ``unvisited`` (indices into ``distances``, the full
    distance matrix); the tour returns to ``start`` at the end. Return one of ``unvisited``."""'''

HARNESS = '''def evo_harness(instances):
    import math
    import numpy as np

    ratios = []
    for points in instances:
        pts = np.asarray(points, dtype=float)
        n = len(pts)
        distances = np.sqrt(((pts[:, None, :] - pts[None, :, :]) ** 2).sum(-1))
        truth = distances.copy()  # what the tour is measured by: the candidate cannot reach it
        distances.flags.writeable = False
        tour, unvisited = [0], np.arange(1, n)
        while unvisited.size:
            nxt = int(select_next_node(tour[-1], 0, unvisited.copy(), distances))
            if nxt not in unvisited:
                raise ValueError("select_next_node must return an unvisited city")
            tour.append(nxt)
            unvisited = unvisited[unvisited != nxt]
        length = sum(truth[a, b] for a, b in zip(tour, tour[1:] + tour[:1]))
        ratios.append(length / (0.7124 * math.sqrt(n)))
    return ratios'''

NEAREST = SeedProgram(
    "Always go to the closest city not yet visited.",
    "import numpy as np\n\n\ndef select_next_node(current, start, unvisited, distances):\n"
    "    return int(unvisited[np.argmin(distances[current, unvisited])])\n",
)


def points(count: int, n: int, seed: int) -> tuple[tuple[tuple[float, float], ...], ...]:
    rng = np.random.default_rng(seed)
    return tuple(tuple((float(x), float(y)) for x, y in rng.random((n, 2))) for _ in range(count))


def tsp_construction(n: int = 50) -> ProgramTask:
    return ProgramTask(
        name="tsp",
        description="Build a short travelling-salesman tour over random cities one step at a "
        "time: choose which unvisited city comes next.",
        entry="select_next_node",
        signature=SIGNATURE,
        seeds=(NEAREST,),
        harness=HARNESS,
        splits={
            "train": points(3, n, seed=11),
            "dev": points(5, n, seed=12),
            "test": points(5, 2 * n, seed=13),
        },
        params={},
        objective="tour length over the BHH estimate of the optimum",
    )
