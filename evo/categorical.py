"""Independent categorical distributions, one per prompt position, learned by the
variance-reduced policy-gradient estimate (VR-PGE) of BDPL (Diao et al., TMLR 2023).

Position k holds logits α_k over the V entries of a vocabulary; p_k = softmax(α_k). A prompt
j = (j_1..j_n) has probability Π_k p_k[j_k], and ∇_{α_k} log P(j) = onehot(j_k) − p_k. For I
prompts sampled with losses L_1..L_I and their mean L̄ as the baseline, the estimate of the
gradient of the expected loss is

    g_k = 1/(I−1) · Σ_i (L_i − L̄) · (onehot(j_{i,k}) − p_k)
        = 1/(I−1) · Σ_i (L_i − L̄) · onehot(j_{i,k})

(the p_k terms cancel, since the advantages sum to zero). The logits descend it with Adam, as the
paper's optimizer is Adam-type; its moments are part of the state, so that a restored state
continues exactly. The state is stored as plain JSON, each array as the base64 of its float64
bytes: exact, and half the size of the numbers written out.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

BETA1, BETA2, EPS = 0.9, 0.999, 1e-8  # Adam's usual constants


def _encode(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str, shape: tuple[int, int]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").reshape(shape).copy()


@dataclass
class Categorical:
    """n_tokens × vocab logits with Adam's moments and step count."""

    logits: np.ndarray
    m: np.ndarray
    v: np.ndarray
    t: int = 0

    @classmethod
    def uniform(cls, n_tokens: int, vocab: int) -> Categorical:
        zeros = np.zeros((n_tokens, vocab))
        return cls(zeros.copy(), zeros.copy(), zeros.copy())

    @property
    def shape(self) -> tuple[int, int]:
        return self.logits.shape  # type: ignore[return-value]

    def probs(self) -> np.ndarray:
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    def sample(self, rng: np.random.Generator, count: int) -> np.ndarray:
        """``count`` prompts (count × n_tokens entry indices), by inverse transform sampling."""
        cdf = np.cumsum(self.probs(), axis=1)
        u = rng.random((count, self.shape[0]))
        idx = (u[:, :, None] >= cdf[None, :, :]).sum(axis=2)  # entries whose cdf u has passed
        return np.minimum(idx, self.shape[1] - 1)  # u within rounding of 1 at the end

    def mode(self) -> list[int]:
        """The most likely entry at each position. Ties (the uniform start, entries never sampled)
        go to the entry nearest after the position's own index, so that the untrained mode reads
        as the vocabulary's leading entries rather than one entry repeated."""
        n, vocab = self.shape
        out = []
        for k in range(n):
            row = self.logits[k]
            best = np.flatnonzero(row == row.max())
            out.append(int(best[np.argmin((best - k) % vocab)]))
        return out

    def gradient(self, samples: np.ndarray, losses: Sequence[float]) -> np.ndarray:
        """VR-PGE of the expected loss's gradient w.r.t. the logits (module docstring)."""
        losses_a = np.asarray(losses, dtype=float)
        if len(losses_a) < 2:
            raise ValueError("the variance-reduced estimate needs at least two samples")
        advantage = (losses_a - losses_a.mean()) / (len(losses_a) - 1)
        grad = np.zeros(self.shape)
        rows = np.arange(self.shape[0])
        for a, sample in zip(advantage, samples, strict=True):
            grad[rows, sample] += a
        return grad

    def step(self, grad: np.ndarray, lr: float) -> None:
        """One Adam step down ``grad``."""
        self.t += 1
        self.m = BETA1 * self.m + (1 - BETA1) * grad
        self.v = BETA2 * self.v + (1 - BETA2) * grad * grad
        m_hat = self.m / (1 - BETA1 ** self.t)
        v_hat = self.v / (1 - BETA2 ** self.t)
        self.logits = self.logits - lr * m_hat / (np.sqrt(v_hat) + EPS)

    def to_json(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "t": self.t, "logits": _encode(self.logits),
                "m": _encode(self.m), "v": _encode(self.v)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Categorical:
        shape = (int(data["shape"][0]), int(data["shape"][1]))
        return cls(_decode(data["logits"], shape), _decode(data["m"], shape),
                   _decode(data["v"], shape), int(data["t"]))
