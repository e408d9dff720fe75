"""Decoding many sequences of one local model together: a shared prefix decoded once and copied,
examples scored side by side in one ``llama_decode``, samples drawn in parallel.

A llama.cpp context with one KV stream per sequence (not a unified cache): stream 0 holds the
prefix the sequences share, streams ``1..parallel`` each hold a copy of it and one sequence (an
example to score, a sample to draw).

Every sequence computes exactly what it would compute alone, so a batch changes speed, never
results. llama.cpp's numbers are exact only under these conditions, each measured on the bundled
model, where breaking one moves a label's log-probability by up to ~0.5:

- every stream holds its prompt in the same cells, prefix first (separate streams, not one
  unified cache where sequences interleave);
- a stream never decodes a prompt token on its own: a piece of one token is computed by other
  kernels than a piece of two or more, while pieces of two or more give the same numbers however
  a prompt is cut. Prompts are fed in rounds in which each stream takes the same number of
  tokens and none is left with one (``rounds``), so llama.cpp never re-cuts a decode. Sampled
  tokens go one at a time in every stream, alone or beside others, which is exact too (other
  streams' rows do not change a row).

A shared prefix may hold a soft part (``score_soft``): vectors decoded in place of token
embeddings, in a batch of their own, under the same rules. Fed the embedding-matrix rows of a
prompt's own tokens, it gives bit-identical logits to the tokens (measured on the bundled model,
whose Q8_0 token embeddings llama.cpp and ``gguf`` dequantize alike).

Memory: the KV cache holds ``(parallel + 1) * n_ctx`` tokens (23 KB a token for the bundled
SmolLM2-135M: 0.42 GB at the defaults, parallel 8 and n_ctx 2048).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import llama_cpp
import numpy as np

from workers.sampling import Sampler

# stands in ``Streams._prefix`` for a cell of stream 0 that holds a soft vector: no token equals
# it, so a text prompt never reuses a soft cell
SOFT = -1

# tokens one stream takes in one round of prompt decoding (times the streams: the decode's size)
ROUND_TOKENS = 64


def rounds(lengths: Sequence[int], cap: int = ROUND_TOKENS) -> list[list[int]]:
    """How many tokens each stream decodes in each round: every stream that takes part takes
    the same count, and none is ever left with exactly one token to go. ``lengths`` are each 0
    or at least 2; ``cap`` (at least 3) bounds a round."""
    rem = list(lengths)
    if any(r == 1 for r in rem) or cap < 3:
        raise ValueError("every piece must be empty or at least 2 tokens, and cap at least 3")
    plan: list[list[int]] = []
    while any(rem):
        c = min(min(r for r in rem if r), cap)
        take = [c if r and (r == c or r - c >= 2) else 0 for r in rem]
        if not any(take):  # every stream left has c + 1: take one less, leaving two
            take = [c - 1 if r else 0 for r in rem]
        plan.append(take)
        rem = [r - t for r, t in zip(rem, take, strict=True)]
    return plan


def shared_prefix(prompts: Sequence[Sequence[int]]) -> int:
    """Tokens at the start of every prompt, leaving each at least two of its own."""
    first = prompts[0]
    n = min(len(p) for p in prompts) - 2
    for p in prompts[1:]:
        n = min(n, _common(first, p))
    return n if n >= 2 else 0


def _common(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    x, y = np.asarray(a[:n]), np.asarray(b[:n])
    diff = np.nonzero(x != y)[0]
    return int(diff[0]) if diff.size else n


@dataclass
class Draw:
    """One sample to draw: the prompt's tokens, then tokens sampled until ``done`` says stop (it
    gets the tokens so far and returns a finish reason, or None to go on)."""

    tokens: list[int]
    sampler: Sampler
    max_tokens: int
    done: Callable[[list[int]], str | None]
    out: list[int] = field(default_factory=list)
    finish: str = "length"


class Streams:
    """Sequences of one model decoded side by side (see the module's docstring)."""

    def __init__(self, llm: llama_cpp.Llama, *, parallel: int, n_ctx: int, threads: int,
                 reuse_prefix: bool = True, n_batch: int | None = None) -> None:
        self.parallel = parallel
        self.n_ctx = n_ctx
        self.reuse = reuse_prefix
        self.n_batch = n_batch or max(ROUND_TOKENS * parallel, 512)
        if self.n_batch < 3 * parallel:
            raise ValueError(f"n_batch={self.n_batch} is too small for {parallel} sequences")
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = n_ctx * (parallel + 1)
        params.n_batch = params.n_ubatch = self.n_batch
        params.n_seq_max = parallel + 1
        params.kv_unified = False
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
        params.n_threads = params.n_threads_batch = threads
        self._ctx = llama_cpp.llama_init_from_model(llm.model, params)
        if not self._ctx:
            raise RuntimeError(f"cannot make a context of {parallel} + 1 sequences of {n_ctx}")
        self._mem = llama_cpp.llama_get_memory(self._ctx)
        self._batch = llama_cpp.llama_batch_init(self.n_batch, 0, parallel + 1)
        self._n_vocab = llm.n_vocab()
        self._n_embd = llama_cpp.llama_model_n_embd(llm.model)
        self._embd_batch: llama_cpp.llama_batch | None = None  # made on the first soft prefix
        # what stream 0 holds: its tokens, SOFT for a cell that holds a soft vector
        self._prefix: list[int] = []

    def close(self) -> None:
        if self._ctx:
            llama_cpp.llama_batch_free(self._batch)
            if self._embd_batch is not None:
                llama_cpp.llama_batch_free(self._embd_batch)
                self._embd_batch = None
            llama_cpp.llama_free(self._ctx)
            self._ctx = None

    # -- scoring -----------------------------------------------------------------------------

    def score(self, prompts: Sequence[list[int]]) -> list[tuple[int, np.ndarray]]:
        """The next token's logits after each prompt, with how many of its tokens came from the
        shared prefix; ``parallel`` prompts at a time."""
        out: list[tuple[int, np.ndarray]] = []
        for start in range(0, len(prompts), self.parallel):
            chunk = prompts[start : start + self.parallel]
            n, kept = self._load_prefix(chunk)
            ends = self._feed([p[n:] for p in chunk])
            # the first prompt reused what stream 0 held; the others, the prefix it decoded
            out += [(kept if j == 0 else n, logits) for j, logits in enumerate(ends)]
        return out

    def score_soft(self, head: list[int], soft: np.ndarray,
                   tails: Sequence[list[int]]) -> list[np.ndarray]:
        """The next token's logits after each prompt ``head + soft + tail``, where ``soft`` is a
        soft prefix: ``k`` vectors (k, n_embd) fed in place of token embeddings. Stream 0 decodes
        the head (keeping what it already holds of it) and then the soft vectors, once for all
        tails; each tail is decoded in its own stream after a copy, ``parallel`` at a time.

        The exactness rules hold for the soft part too: the head is empty or at least 2 tokens,
        ``soft`` at least 2 vectors, every tail at least 2 tokens."""
        soft = np.ascontiguousarray(soft, dtype=np.float32)
        if soft.ndim != 2 or soft.shape[1] != self._n_embd or len(soft) < 2:
            raise ValueError(f"soft prefix of shape {soft.shape}: needs (k >= 2, {self._n_embd})")
        if len(head) == 1:
            raise ValueError("a head of one token would be decoded on its own")
        start = len(head) + len(soft)
        for t in tails:
            if len(t) < 2 or start + len(t) >= self.n_ctx:
                raise ValueError(f"tail of {len(t)} tokens after {start} does not fit "
                                 f"n_ctx={self.n_ctx} (or is under 2 tokens)")
        out: list[np.ndarray] = []
        if not tails:
            return out
        keep = _common(self._prefix, head) if self.reuse else 0
        if len(head) - keep == 1:
            keep -= 1  # never a single token on its own
        llama_cpp.llama_memory_seq_rm(self._mem, 0, keep, -1)
        self._prefix = self._prefix[:keep]
        for piece in _pieces(head[keep:], self.n_batch):
            at = len(self._prefix)
            self._decode([(t, at + i, 0, False) for i, t in enumerate(piece)])
            self._prefix += piece
        for piece in _pieces(list(range(len(soft))), self.n_batch):
            self._decode_embd(soft[piece[0] : piece[-1] + 1], len(self._prefix))
            self._prefix += [SOFT] * len(piece)
        for begin in range(0, len(tails), self.parallel):
            chunk = tails[begin : begin + self.parallel]
            for s in range(1, len(chunk) + 1):
                llama_cpp.llama_memory_seq_rm(self._mem, s, -1, -1)
                llama_cpp.llama_memory_seq_cp(self._mem, 0, s, -1, -1)
            out += self._feed(chunk)
        return out

    # -- sampling ----------------------------------------------------------------------------

    def sample(self, draws: Sequence[Draw]) -> list[int]:
        """Draw every sample (filling ``out`` and ``finish``), ``parallel`` at a time: the
        prompts' shared prefix decoded once, then one token of every live sample per decode.
        Returns how many prompt tokens of each were not decoded for it."""
        reused: list[int] = []
        for start in range(0, len(draws), self.parallel):
            chunk = draws[start : start + self.parallel]
            n, kept = self._load_prefix([d.tokens for d in chunk])
            reused += [kept if j == 0 else n for j in range(len(chunk))]
            logits = self._feed([d.tokens[n:] for d in chunk])
            live = {s: d for s, d in enumerate(chunk, 1)}
            pos = {s: len(d.tokens) for s, d in live.items()}
            while live:
                step: list[tuple[int, int, int, bool]] = []
                for (s, d), row in zip(list(live.items()), logits, strict=True):
                    token = d.sampler(row)
                    d.out.append(token)
                    reason = d.done(d.out)
                    if reason is None and len(d.out) >= d.max_tokens:
                        reason = "length"
                    if reason is None and pos[s] + 1 >= self.n_ctx:
                        reason = "length"  # the stream is full
                    if reason is not None:
                        d.finish = reason
                        del live[s]
                        continue
                    step.append((token, pos[s], s, True))
                    pos[s] += 1
                if not step:
                    break
                logits = self._decode(step)
        return reused

    # -- internals ---------------------------------------------------------------------------

    def _load_prefix(self, prompts: Sequence[list[int]]) -> tuple[int, int]:
        """Put the prompts' shared prefix in stream 0 (keeping what it already holds of it) and
        copy it to one stream per prompt; returns its length and how much of it was kept."""
        for p in prompts:
            if len(p) < 2 or len(p) >= self.n_ctx:
                raise ValueError(f"prompt of {len(p)} tokens does not fit n_ctx={self.n_ctx}")
        prefix = list(prompts[0][: shared_prefix(prompts)]) if self.reuse else []
        keep = _common(self._prefix, prefix)
        if len(prefix) - keep == 1:
            keep -= 1  # never a single token on its own
        if keep < len(self._prefix):
            llama_cpp.llama_memory_seq_rm(self._mem, 0, keep, -1)
            self._prefix = self._prefix[:keep]
        if len(prefix) > keep:
            rest = prefix[keep:]
            for piece in _pieces(rest, self.n_batch):
                at = len(self._prefix)
                self._decode([(t, at + i, 0, False) for i, t in enumerate(piece)])
                self._prefix += piece
        for s in range(1, len(prompts) + 1):
            llama_cpp.llama_memory_seq_rm(self._mem, s, -1, -1)
            if self._prefix:
                llama_cpp.llama_memory_seq_cp(self._mem, 0, s, -1, -1)
        return len(prefix), keep

    def _feed(self, pieces: Sequence[list[int]]) -> list[np.ndarray]:
        """Decode each piece in its own stream (1, 2, ...) after the prefix, in rounds; the
        logits after each piece's last token."""
        start = len(self._prefix)
        done = [0] * len(pieces)
        last: dict[int, np.ndarray] = {}
        for take in rounds([len(p) for p in pieces], max(3, self.n_batch // len(pieces))):
            items = []
            for i, (piece, t) in enumerate(zip(pieces, take, strict=True)):
                for j in range(done[i], done[i] + t):
                    items.append((piece[j], start + j, i + 1, j == len(piece) - 1))
                done[i] += t
            rows = self._decode(items)
            finished = [i for i, p in enumerate(pieces) if take[i] and done[i] == len(p)]
            last.update(zip(finished, rows, strict=True))
        return [last[i] for i in range(len(pieces))]

    def _decode(self, items: list[tuple[int, int, int, bool]]) -> list[np.ndarray]:
        """One llama_decode of (token, position, stream, wants logits) items; the logits of the
        items that want them, in order."""
        b = self._batch
        b.n_tokens = len(items)
        for i, (token, pos, seq, wants) in enumerate(items):
            b.token[i], b.pos[i], b.n_seq_id[i], b.logits[i] = token, pos, 1, wants
            b.seq_id[i][0] = seq
        code = llama_cpp.llama_decode(self._ctx, b)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")
        return [
            np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(self._ctx, i),
                                  shape=(self._n_vocab,)).copy()
            for i, item in enumerate(items) if item[3]
        ]

    def _decode_embd(self, vectors: np.ndarray, pos: int) -> None:
        """One llama_decode of soft vectors into stream 0 at positions ``pos, pos + 1, ...``
        (llama.cpp takes a batch of either tokens or embeddings; no logits are wanted)."""
        if self._embd_batch is None:
            self._embd_batch = llama_cpp.llama_batch_init(self.n_batch, self._n_embd,
                                                          self.parallel + 1)
        b = self._embd_batch
        n = len(vectors)
        b.n_tokens = n
        embd = np.ctypeslib.as_array(b.embd, shape=(self.n_batch * self._n_embd,))
        embd[: n * self._n_embd] = vectors.reshape(-1)
        for i in range(n):
            b.pos[i], b.n_seq_id[i], b.logits[i] = pos + i, 1, False
            b.seq_id[i][0] = 0
        code = llama_cpp.llama_decode(self._ctx, b)
        if code != 0:
            raise RuntimeError(f"llama_decode returned {code}")


def _pieces(tokens: list[int], size: int) -> list[list[int]]:
    """Split into pieces of at most ``size``, none of exactly one token."""
    out = [tokens[i : i + size] for i in range(0, len(tokens), size)]
    if len(out) > 1 and len(out[-1]) == 1:
        out[-1].insert(0, out[-2].pop())
    return out
