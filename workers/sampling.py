"""Choosing the next token from a model's logits: greedy at temperature 0, else top-k, top-p and
min-p filtering, then a draw at the request's temperature from the request's own random stream.

Each sequence has its own ``Sampler`` seeded from its request, so a sample depends on its request
alone, not on which other sequences were decoded beside it.
"""

from __future__ import annotations

import numpy as np

# llama.cpp's own defaults for these filters, so sampled text reads the same as before
TOP_K = 40
TOP_P = 0.95
MIN_P = 0.05


class Sampler:
    def __init__(self, temperature: float, seed: int) -> None:
        self.temperature = temperature
        self.rng = np.random.default_rng(seed)

    def __call__(self, logits: np.ndarray) -> int:
        if self.temperature <= 0:
            return int(np.argmax(logits))
        return int(self._draw(logits.astype(np.float64)))

    def _draw(self, logits: np.ndarray) -> int:
        k = min(TOP_K, logits.size)
        top = np.argpartition(-logits, k - 1)[:k]
        # most likely first; ties broken by token id so the order never depends on the partition
        top = top[np.lexsort((top, -logits[top]))]
        x = logits[top]
        p = np.exp(x - x[0])
        p /= p.sum()
        keep = int(np.searchsorted(np.cumsum(p), TOP_P)) + 1  # the smallest set reaching top-p
        keep = max(1, min(keep, int((p >= MIN_P * p[0]).sum())))
        x = x[:keep] / self.temperature
        q = np.exp(x - x[0])
        q /= q.sum()
        u = self.rng.random()
        return int(top[min(int(np.searchsorted(np.cumsum(q), u, side="right")), keep - 1)])
