"""The token-embedding matrix of a GGUF model, as float32: the space a soft prompt lives in.

A soft prefix is a sequence of vectors fed to the model in place of token embeddings
(``Streams.score_soft``); the rows of this matrix are what the model's own tokens look like there,
and its per-dimension spread sets the scale of random soft prompts (BBT scales its random
projection from it).
"""

from __future__ import annotations

import functools

import numpy as np

TOKEN_EMBEDDINGS = "token_embd.weight"


@functools.lru_cache(maxsize=4)
def token_embeddings(path: str) -> np.ndarray:
    """The model's token-embedding matrix, dequantized to float32, shape (n_vocab, n_embd); read
    once per path (read-only: copy it to change it)."""
    import gguf  # only the soft-prompt code needs it

    reader = gguf.GGUFReader(path)
    for tensor in reader.tensors:
        if tensor.name == TOKEN_EMBEDDINGS:
            matrix = gguf.quants.dequantize(tensor.data, tensor.tensor_type)
            n_embd, n_vocab = (int(x) for x in tensor.shape[:2])  # GGUF lists ne0 first
            matrix = np.ascontiguousarray(matrix, dtype=np.float32).reshape(n_vocab, n_embd)
            matrix.setflags(write=False)
            return matrix
    raise ValueError(f"{path} has no tensor {TOKEN_EMBEDDINGS}")


@functools.lru_cache(maxsize=4)
def embedding_stats(path: str) -> tuple[np.ndarray, np.ndarray]:
    """The per-dimension mean and standard deviation of the token embeddings, each (n_embd,)."""
    matrix = token_embeddings(path)
    mean = matrix.mean(axis=0, dtype=np.float64).astype(np.float32)
    std = matrix.std(axis=0, dtype=np.float64).astype(np.float32)
    mean.setflags(write=False)
    std.setflags(write=False)
    return mean, std
