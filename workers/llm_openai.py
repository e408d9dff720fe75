"""A client for any OpenAI-compatible chat-completions endpoint.

Failure handling, by kind:

- 429, 5xx, 408, timeouts and dropped connections are retried with exponential backoff and
  jitter (``Retry-After`` is honoured when the server sends it); when the retries run out the call
  returns an ``LLMResponse`` with ``error`` set.
- 401/403 (bad key), 404 (no such model or wrong URL), and a connection refused before any call
  has succeeded raise ``LLMUnavailable``: every later call would fail the same way.
- Other 4xx fail the single call without retrying.

The API key goes only into the ``Authorization`` header; any text that could carry it (an error body
echoing it) is redacted before it reaches a response, an exception or a log line.

A request is sent as the core built it (``evo.llm``, ``evo.task``): the client adds nothing to a
label request, so a task's request is the same text here as on a local model (docs/requests.md).
The request side (prompts, prefill, label scoring) is here; the HTTP side (session, retries,
rate limits, redaction) is ``workers.llm_openai_transport``, the wire format
``workers.llm_openai_wire`` and the reading of answers ``workers.llm_openai_labels``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import openai

from evo.llm import LABEL_FLOOR, LABEL_TOP_K, LLMRequest, LLMResponse, LLMUnavailable, Message
from workers.llm_openai_labels import first_label_in, labels_from_top_logprobs, strip_prefill
from workers.llm_openai_transport import DEFAULT_BASE_URL, ChatTransport
from workers.llm_openai_wire import MalformedReply

# Names importers take from here, whichever module now defines them.
__all__ = [
    "DEFAULT_BASE_URL",
    "LABEL_FLOOR",
    "TOP_LOGPROBS",
    "MalformedReply",
    "OpenAIClient",
    "first_label_in",
    "labels_from_top_logprobs",
    "strip_prefill",
]

log = logging.getLogger(__name__)

TOP_LOGPROBS = LABEL_TOP_K  # the most alternatives the OpenAI API lists per token


class OpenAIClient(ChatTransport):
    """One model behind an OpenAI-compatible ``/chat/completions`` endpoint (``/completions``
    for a request in ``completion`` mode: its plain prompt, for base models).

    Prefill: a chat API cannot be made to continue a partial assistant turn in general (OpenAI
    rejects or ignores it; servers that apply a chat template open a fresh assistant turn after
    it). So the last user message gets an instruction to begin the answer with the prefill text,
    and the answer is cut after the prefill if the model wrote it (a short preamble before it
    goes too). Either way ``text`` is what follows the prefill, as with a local model.

    Label scoring: the request's messages, as they are, are sent for one token with ``logprobs``
    and ``top_logprobs=20``, and the listed tokens are mapped onto labels by the core's rule
    (``evo.llm.label_scores``, which the local runtime applies to its own top 20). No instruction
    is added: the task's prompt is what asks for a label (a fixed "answer with one of" sentence
    made the bundled model answer one label for every input). If the endpoint returns no
    log-probabilities (or rejects the parameter) the client falls back, now and for later calls,
    to a short generation and takes the first label it finds: that label scores 0 and the others
    ``LABEL_FLOOR``. ``supports_label_scoring`` starts True and turns False when that happens.
    ``meta["label_scoring"]`` says which path ran.
    """

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        concurrency: int = 8,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        rate_limiter: Any | None = None,
    ) -> None:
        super().__init__(
            model,
            base_url=base_url,
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            concurrency=concurrency,
            backoff_s=backoff_s,
            max_backoff_s=max_backoff_s,
            rate_limiter=rate_limiter,
        )
        self.supports_label_scoring = True

    # -- public API --------------------------------------------------------------------------

    async def call(self, request: LLMRequest) -> LLMResponse:
        if request.soft is not None:  # the spec reader refuses such a job; never sent as text
            return LLMResponse(text="", model=self.model, error="an OpenAI-compatible endpoint "
                               "takes text only: a soft prompt needs the local runtime")
        start = time.perf_counter()
        try:
            if request.labels:
                response = await self._score_labels(request)
            else:
                response = await self._generate(request)
        except LLMUnavailable:
            raise
        except (openai.OpenAIError, MalformedReply) as exc:
            response = LLMResponse(text="", model=self.model, error=self._describe(exc))
        response.latency_s = time.perf_counter() - start
        return response

    # -- requests ----------------------------------------------------------------------------

    async def _generate(self, request: LLMRequest) -> LLMResponse:
        if request.mode == "completion":
            return await self._complete(request)
        messages = _with_instruction(
            request.messages,
            f"Begin your answer with {request.prefill}" if request.prefill else "",
        )
        out = await self._create(
            messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=list(request.stop[:4]) or None,  # the OpenAI API takes at most four
            seed=_seed_for(request, self.model),
        )
        text = out.choices[0].message.content or ""
        text, echoed = strip_prefill(text, request.prefill)
        for stop in request.stop:  # the ones beyond four, and servers that leave stops in
            cut = text.find(stop)
            text = text[:cut] if cut != -1 else text
        meta: dict[str, Any] = {"finish_reason": out.choices[0].finish_reason}
        if request.prefill:
            meta["prefill_echoed"] = echoed
        return self._response(text, out, meta)

    async def _complete(self, request: LLMRequest) -> LLMResponse:
        """A ``completion`` request on ``/completions``: the plain prompt ends with the prefill,
        so the model continues it and the text needs no cutting at the front."""
        out = await self._create(
            request.completion_prompt(),
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=list(request.stop[:4]) or None,
            seed=_seed_for(request, self.model),
        )
        text = out.choices[0].text or ""
        for stop in request.stop:
            cut = text.find(stop)
            text = text[:cut] if cut != -1 else text
        return self._response(text, out, {"finish_reason": out.choices[0].finish_reason})

    async def _score_completion_labels(self, request: LLMRequest) -> LLMResponse:
        """Label scores of a ``completion`` request from ``/completions``' own log-probability
        list (``top_logprobs``: one dict of token to log-probability per generated token)."""
        out = await self._create(request.completion_prompt(), max_tokens=1, temperature=0.0,
                                 logprobs=TOP_LOGPROBS)
        lp = out.choices[0].logprobs
        listed = (lp.top_logprobs or [None])[0] if lp is not None else None
        if not listed:
            raise MalformedReply("a /completions reply without log-probabilities")
        scores = labels_from_top_logprobs(request.labels, list(listed._data.items()))
        best = max(scores, key=scores.__getitem__)
        return self._response(best, out, {"label_scoring": "logprobs"}, scores)

    async def _score_labels(self, request: LLMRequest) -> LLMResponse:
        if request.mode == "completion":
            return await self._score_completion_labels(request)
        messages = _with_instruction(request.messages, "")  # the task's request, nothing added
        if self.supports_label_scoring:
            try:
                out = await self._create(
                    messages,
                    max_tokens=1,
                    temperature=0.0,
                    logprobs=True,
                    top_logprobs=TOP_LOGPROBS,
                )
            except openai.BadRequestError as exc:
                log.warning(
                    "%s rejected logprobs (%s); parsing labels from text",
                    self.base_url,
                    self._describe(exc),
                )
                self.supports_label_scoring = False
            else:
                lp = out.choices[0].logprobs
                if lp is not None and lp.content:
                    top = [(t.token, t.logprob) for t in lp.content[0].top_logprobs]
                    if not top:
                        top = [(lp.content[0].token, lp.content[0].logprob)]
                    scores = labels_from_top_logprobs(request.labels, top)
                    best = max(scores, key=scores.__getitem__)
                    return self._response(best, out, {"label_scoring": "logprobs"}, scores)
                log.warning("%s returned no logprobs; parsing labels from text", self.base_url)
                self.supports_label_scoring = False
        out = await self._create(
            messages,
            max_tokens=max(8, *(len(lb) for lb in request.labels)),
            temperature=0.0,
            seed=_seed_for(request, self.model),
        )
        text = out.choices[0].message.content or ""
        found = first_label_in(text, request.labels)
        scores = {lb: (0.0 if lb == found else LABEL_FLOOR) for lb in request.labels}
        meta = {"label_scoring": "generation", "label_found": found is not None}
        return self._response(found or text.strip(), out, meta, scores)

    def _response(
        self, text: str, out: Any, meta: dict[str, Any], scores: dict[str, float] | None = None
    ) -> LLMResponse:
        usage = out.usage
        return LLMResponse(
            text=text,
            model=self.model,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            label_logprobs=scores,
            meta=meta,
        )


def _with_instruction(messages: tuple[Message, ...], instruction: str) -> list[dict[str, str]]:
    out = [{"role": m.role, "content": m.content} for m in messages]
    if instruction:
        if out and out[-1]["role"] == "user":
            out[-1] = {"role": "user", "content": f"{out[-1]['content']}\n\n{instruction}"}
        else:
            out.append({"role": "user", "content": instruction})
    return out


def _seed_for(request: LLMRequest, model: str) -> int:
    if request.seed is not None:
        return request.seed
    return int(request.cache_key(model)[:8], 16) & 0x7FFFFFFF
