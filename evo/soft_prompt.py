"""Soft prompts: continuous vectors that take the place of a prompt's token embeddings (BBT).

A soft prompt here is ``A·z + p0`` (Sun et al., ICML 2022). ``z`` is the low-dimensional point the
optimizer moves; ``A`` is a fixed random projection into the model's embedding space, drawn from
a seed, so that a candidate is stored as ``z`` and a few numbers, never as its vectors; ``p0`` is
zero or the embeddings of a seed prompt's tokens. ``A``'s entries are normal with a spread set by
the model's own embeddings (per dimension ``j``: ``spread · std_j / (sqrt(d) · sigma)``), so that
a ``z`` drawn by CMA-ES with step size ``sigma`` moves each vector by ``spread`` times the spread
of the model's token embeddings: the paper's scaling at ``spread = 1``, which suits a start from
zeros; from a seed prompt's own embeddings a smaller move keeps the start's meaning.

This module is plain data and numpy: where the vectors are decoded (the local runtime) and where
the embeddings come from (the GGUF file) live in ``workers/``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Init = Literal["zeros", "seed_prompt"]

# Stands in the rendered template where the soft vectors go: the runtime splits the formatted
# prompt here. Private-use characters, so no task text contains it and no tokenizer merges it
# with its neighbours before the split.
MARKER = "\ue000soft-prompt\ue001"


@dataclass(frozen=True)
class SoftPrompt:
    """What a request carries to have a soft prompt applied: everything that rebuilds the
    vectors on the model that holds the embeddings (``init_text``'s tokens set the length when
    ``init`` is ``seed_prompt``, ``n_tokens`` when it is ``zeros``)."""

    z: tuple[float, ...]
    seed: int
    n_tokens: int
    sigma: float
    init: Init = "zeros"
    init_text: str = ""
    spread: float = 1.0

    def __post_init__(self) -> None:
        if not self.z or not all(math.isfinite(v) for v in self.z):
            raise ValueError("a soft prompt's z must be a non-empty vector of finite numbers")
        if self.init == "seed_prompt" and not self.init_text.strip():
            raise ValueError("a soft prompt initialized from a seed prompt needs its text")

    @property
    def dim(self) -> int:
        return len(self.z)

    def key(self) -> str:
        """Identity for caches: the projection's settings and ``z``'s exact bits."""
        memo = self.__dict__.get("_key")
        if memo is not None:
            return memo
        head = json.dumps([self.seed, self.n_tokens, self.sigma, self.init, self.init_text,
                           self.spread], ensure_ascii=False)
        digest = hashlib.sha256(head.encode())
        digest.update(np.asarray(self.z, dtype=np.float64).tobytes())
        key = digest.hexdigest()
        object.__setattr__(self, "_key", key)
        return key

    def to_meta(self) -> dict[str, Any]:
        """As a candidate's ``meta`` keeps it (plain JSON; floats round-trip exactly)."""
        return {"z": list(self.z), "projection": {
            "seed": self.seed, "dim": self.dim, "n_tokens": self.n_tokens,
            "sigma": self.sigma, "spread": self.spread, "init": self.init,
            "init_text": self.init_text}}

    @classmethod
    def from_meta(cls, meta: dict[str, Any]) -> SoftPrompt:
        p = meta["projection"]
        z = tuple(float(v) for v in meta["z"])
        if len(z) != p["dim"]:
            raise ValueError(f"soft prompt: z has {len(z)} dimensions, its projection {p['dim']}")
        return cls(z=z, seed=int(p["seed"]), n_tokens=int(p["n_tokens"]),
                   sigma=float(p["sigma"]), init=p["init"], init_text=p.get("init_text", ""),
                   spread=float(p.get("spread", 1.0)))


def projection(seed: int, dim: int, n_tokens: int, std: np.ndarray, sigma: float,
               spread: float = 1.0) -> np.ndarray:
    """``A``, shape (n_tokens · n_embd, dim), float32: row ``r`` is normal with spread
    ``spread · std[r mod n_embd] / (sqrt(dim) · sigma)``, so ``A·z`` for ``z ~ N(0, sigma² I)``
    has ``spread`` times the spread of the model's embeddings in every dimension."""
    n_embd = len(std)
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((n_tokens * n_embd, dim), dtype=np.float32)
    scale = np.tile(std.astype(np.float64), n_tokens) * spread / (math.sqrt(dim) * sigma)
    a *= scale.astype(np.float32)[:, None]
    return a


def vectors(soft: SoftPrompt, a: np.ndarray, p0: np.ndarray) -> np.ndarray:
    """The soft prompt's vectors, (n_tokens, n_embd) float32: ``A·z + p0``."""
    z = np.asarray(soft.z, dtype=np.float32)
    return (a @ z).reshape(p0.shape) + p0
