"""Soft prompts on a GGUF model file: their vectors, and what they read as.

``SoftVectors`` rebuilds a soft prompt's vectors (``evo.soft_prompt``) from the model's token
embeddings (read from the file with ``gguf``) and its tokenizer, keeping the last random
projections it drew: a job scores many soft prompts of one projection. It also gives a soft
prompt's nearest vocabulary tokens, which is how the store, the CLI and the dashboard show one: a
readable approximation, not what the model reads.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import hashlib
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np

from evo.candidate import Candidate
from evo.soft_prompt import SoftPrompt, projection, vectors
from evo.spec import ModelSpec
from workers.gguf_embeddings import embedding_stats, token_embeddings

PROJECTIONS_KEPT = 2  # one projection (58 MB at 50 x 576 x 500) per job; a second for a neighbour


@functools.lru_cache(maxsize=8)
def model_sha256(path: str) -> str:
    """The SHA-256 of a model file: what a soft prompt is bound to."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class SoftVectors:
    """Vectors of soft prompts for one model file. ``tokenize`` turns a seed prompt's text into
    the token ids whose embeddings are ``p0`` (plain text: no BOS, no special tokens);
    ``detokenize`` gives a token's text."""

    def __init__(self, model_path: str, tokenize: Callable[[str], list[int]],
                 detokenize: Callable[[int], str]) -> None:
        self.path = model_path
        self._tokenize = tokenize
        self._detokenize = detokenize
        # (seed, d, tokens, sigma, spread) -> A
        self._projections: OrderedDict[tuple, np.ndarray] = OrderedDict()

    @property
    def n_embd(self) -> int:
        return token_embeddings(self.path).shape[1]

    def start(self, soft: SoftPrompt) -> np.ndarray:
        """``p0``: the seed prompt's token embeddings, or zeros."""
        if soft.init == "seed_prompt":
            ids = self._tokenize(soft.init_text)
            if len(ids) < 2:
                raise ValueError(f"seed prompt {soft.init_text!r} is under 2 tokens")
            return np.array(token_embeddings(self.path)[ids], dtype=np.float32)
        return np.zeros((soft.n_tokens, self.n_embd), dtype=np.float32)

    def vectors(self, soft: SoftPrompt) -> np.ndarray:
        """The soft prompt's vectors, (tokens, n_embd) float32."""
        p0 = self.start(soft)
        return vectors(soft, self._projection(soft, len(p0)), p0)

    def nearest(self, vecs: np.ndarray) -> list[int]:
        """Each vector's nearest token embedding (Euclidean), as token ids."""
        emb = token_embeddings(self.path)
        sq = np.einsum("ij,ij->i", emb, emb)
        # |e - v|^2 = |e|^2 - 2 e.v + |v|^2; the last term does not change the argmin
        return [int(i) for i in np.argmin(sq[:, None] - 2.0 * (emb @ vecs.T), axis=0)]

    def describe(self, soft: SoftPrompt) -> tuple[str, float, list[int]]:
        """(nearest tokens as text, the vectors' norm, the token ids)."""
        vecs = self.vectors(soft)
        ids = self.nearest(vecs)
        return "".join(self._detokenize(i) for i in ids), float(np.linalg.norm(vecs)), ids

    def _projection(self, soft: SoftPrompt, n_tokens: int) -> np.ndarray:
        key = (soft.seed, soft.dim, n_tokens, soft.sigma, soft.spread)
        a = self._projections.get(key)
        if a is None:
            _, std = embedding_stats(self.path)
            a = projection(soft.seed, soft.dim, n_tokens, std, soft.sigma, soft.spread)
            self._projections[key] = a
            while len(self._projections) > PROJECTIONS_KEPT:
                self._projections.popitem(last=False)
        self._projections.move_to_end(key)
        return a


@functools.lru_cache(maxsize=2)
def soft_vectors_for(path: str) -> SoftVectors:
    """A ``SoftVectors`` for a model file with its tokenizer alone (no weights loaded): what the
    driver uses to describe soft prompts."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    with suppress_stdout_stderr(disable=False):
        vocab = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    # freed before the interpreter tears llama_cpp down (else its finalizer fails at exit)
    atexit.register(vocab.close)
    return SoftVectors(
        path,
        lambda text: vocab.tokenize(text.encode("utf-8"), add_bos=False, special=False),
        lambda token: vocab.detokenize([token], special=True).decode("utf-8", errors="replace"),
    )


def described(model: ModelSpec, cand: Candidate) -> Candidate:
    """A soft-prompt candidate as the store and every view show it: its text the nearest
    vocabulary tokens of its vectors (said to be an approximation), its meta the token ids, the
    vectors' norm and the model file it is bound to. Unchanged where no model file holds it."""
    if model.provider != "local":
        return cand
    from workers.llm_local import bundled_model_path

    path = model.model or bundled_model_path()
    sv = soft_vectors_for(path)
    text, norm, ids = sv.describe(SoftPrompt.from_meta(cand.meta))
    meta = {**cand.meta, "nearest_tokens": ids, "norm": norm,
            "model_file": Path(path).name, "model_sha256": model_sha256(path)}
    shown = (f"soft prompt ≈ “{text.strip()}” ({len(ids)} vectors, norm {norm:.3g}; "
             "nearest vocabulary tokens, an approximation)")
    return dataclasses.replace(cand, text=shown, meta=meta)
