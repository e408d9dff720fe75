"""Online bin packing: items arrive one by one and go into the open bin with the highest priority.

Instances are Weibull(shape 3, scale 45) item sizes clipped to the capacity 100, the distribution
common in the heuristic-evolution literature, generated here from a fixed seed. The objective is
the average excess of bins used over the L1 lower bound ceil(sum of sizes / capacity); lower is
better.
"""

from __future__ import annotations

import numpy as np

from evo.programs import ProgramTask, SeedProgram

CAPACITY = 100

SIGNATURE = '''import numpy as np

def priority(item: float, bins: np.ndarray) -> np.ndarray:
    """Score each open bin that can take the item (``bins``: their remaining capacities, all
    >= item). The item goes into the bin with the highest score; a new bin is opened only when
    no open bin fits. Return one finite score per bin."""'''

HARNESS = '''def evo_harness(instances, capacity):
    import math
    import numpy as np

    excess = []
    for items in instances:
        bins = np.zeros(0)
        for item in items:
            fits = np.nonzero(bins >= item)[0]
            if fits.size:
                scores = np.asarray(priority(item, bins[fits].copy()), dtype=float)
                if scores.shape != (fits.size,) or not np.all(np.isfinite(scores)):
                    raise ValueError("priority must return one finite score per fitting bin")
                bins[fits[int(np.argmax(scores))]] -= item
            else:
                bins = np.append(bins, capacity - item)
        bound = math.ceil(sum(items) / capacity)
        excess.append((bins.size - bound) / bound)
    return excess'''

BEST_FIT = SeedProgram(
    "Put the item where it leaves the least room: the tightest bin that fits.",
    "import numpy as np\n\n\ndef priority(item, bins):\n    return -(bins - item)\n",
)
FIRST_FIT = SeedProgram(
    "Put the item into the oldest open bin that fits.",
    "import numpy as np\n\n\ndef priority(item, bins):\n"
    "    return -np.arange(len(bins), dtype=float)\n",
)


def weibull_instances(count: int, items: int, seed: int) -> tuple[tuple[float, ...], ...]:
    rng = np.random.default_rng(seed)
    sizes = np.clip(np.round(45 * rng.weibull(3.0, size=(count, items))), 1, CAPACITY)
    return tuple(tuple(float(x) for x in row) for row in sizes)


def bin_packing(items: int = 500) -> ProgramTask:
    return ProgramTask(
        name="binpacking",
        description="Online bin packing of Weibull-distributed items into bins of capacity 100: "
        "choose the bin for each arriving item so that as few bins as possible are used.",
        entry="priority",
        signature=SIGNATURE,
        seeds=(BEST_FIT, FIRST_FIT),
        harness=HARNESS,
        splits={
            "train": weibull_instances(3, items, seed=1),
            "dev": weibull_instances(5, items, seed=2),
            "test": weibull_instances(5, 2 * items, seed=3),
        },
        params={"capacity": CAPACITY},
        objective="average excess bins over the L1 lower bound",
    )
