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
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import math
import random
import re
import ssl
import time
import urllib.request
from typing import Any

import aiohttp
import certifi
import httpx
import openai
import yarl
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from evo.llm import LLMRequest, LLMResponse, LLMUnavailable, Message

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
TOP_LOGPROBS = 20
# Score of a label that never appeared (below every listed token, or this when nothing is listed).
LABEL_FLOOR = -100.0
_RETRY_STATUS = {408, 409, 429}
_FATAL_STATUS = {401, 403, 404}
# A prefill found later than this in an answer is taken as part of the content, not its start.
_MAX_PREAMBLE = 80


class MalformedReply(Exception):
    """A 200 reply without the fields a chat completion has."""


class _Reply:
    """Attribute access over a decoded JSON reply, ``None`` for a missing field (as the SDK's
    models give): building the SDK's typed models costs more CPU than the call itself."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return _wrap(self._data.get(name))


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return _Reply(value)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


_STATUS_ERRORS: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def _status_error(response: httpx.Response) -> openai.APIStatusError:
    """The SDK's exception for an error reply, so retries and messages read one error type."""
    try:
        body: Any = response.json()
    except ValueError:
        body = response.text
    data = body.get("error", body) if isinstance(body, dict) else body
    code = response.status_code
    cls = _STATUS_ERRORS.get(code) or (
        openai.InternalServerError if code >= 500 else openai.APIStatusError)
    return cls(f"Error code: {code} - {body}", response=response, body=data)  # type: ignore[arg-type]


def _retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
    return False


def _norm(text: str) -> str:
    return text.strip().strip(".,:;!?\"'`*()[]").lower()


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def labels_from_top_logprobs(
    labels: tuple[str, ...], top: list[tuple[str, float]]
) -> dict[str, float]:
    """Map the first generated token's alternatives onto labels.

    A token counts for a label when, stripped and lower-cased, it is the label or a start of it
    ("Pos" for "positive"); the label's score is the log of the summed probabilities of its tokens
    (" positive" and "Positive" are different tokens for the same answer). Labels with no token in
    the list get a floor just below the least likely token listed.
    """
    floor = min((lp for _, lp in top), default=LABEL_FLOOR + 1.0) - 1.0
    scores: dict[str, float] = {}
    for label in labels:
        want = _norm(label)
        hits = [lp for tok, lp in top if _norm(tok) and want.startswith(_norm(tok))]
        scores[label] = _logsumexp(hits) if hits else floor
    return scores


def first_label_in(text: str, labels: tuple[str, ...]) -> str | None:
    """The label whose first whole-word occurrence comes earliest in ``text`` (case-insensitive)."""
    best: tuple[int, int, str] | None = None
    for label in labels:
        match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, flags=re.IGNORECASE)
        if match:
            key = (match.start(), -len(label), label)  # earliest, then longest ("New York City")
            best = key if best is None or key < best else best
    return best[2] if best else None


def strip_prefill(text: str, prefill: str) -> tuple[str, bool]:
    """Drop the prefill and anything before it (a preamble) if the model wrote it."""
    at = text.find(prefill) if prefill else -1
    if at != -1 and len(text[:at].strip()) <= _MAX_PREAMBLE:
        return text[at + len(prefill) :], True
    return text, False


class OpenAIClient:
    """One model behind an OpenAI-compatible ``/chat/completions`` endpoint.

    Prefill: a chat API cannot be made to continue a partial assistant turn in general (OpenAI
    rejects or ignores it; servers that apply a chat template open a fresh assistant turn after
    it). So the last user message gets an instruction to begin the answer with the prefill text,
    and the answer is cut after the prefill if the model wrote it (a short preamble before it
    goes too). Either way ``text`` is what follows the prefill, as with a local model.

    Label scoring: one token is requested with ``logprobs`` and ``top_logprobs=20``, after an
    instruction to answer with one of the labels, and the listed tokens are mapped onto labels
    (see ``labels_from_top_logprobs``); the prefill is not used since its tokens would come first.
    If the endpoint returns no log-probabilities (or rejects the parameter) the client falls back,
    now and for later calls, to a short generation and takes the first label it finds: that label
    scores 0 and the others ``LABEL_FLOOR``. ``supports_label_scoring`` starts True and turns False
    when that happens. ``meta["label_scoring"]`` says which path ran.
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
        self.model = model
        # shared with every client of the same endpoint (across processes when Redis is set)
        self._limiter = rate_limiter
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.supports_label_scoring = True
        self.max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._secret = api_key or ""
        # Plain HTTP with JSON, not the openai SDK's request and model machinery: that took
        # ~5 ms of CPU a call, more than a model actor can spare at hundreds of calls a second.
        # aiohttp rather than httpx: on the same calls it spends ~0.2 ms of CPU a call against
        # httpx's ~1.3 (`evo bench client_cpu`). Errors still become the SDK's exception types
        # (see _status_error).
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._url = yarl.URL(self.base_url + "/chat/completions")  # parsed once, not per call
        self._request = httpx.Request("POST", str(self._url))  # what the SDK's errors carry
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._proxy = _env_proxy(self._url)
        self._concurrency = concurrency
        # a session is bound to the event loop it was made in: made on first use, in that loop
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._sem = asyncio.Semaphore(concurrency)
        self._ever_succeeded = False
        self._token_param = "max_tokens"
        self._closing: asyncio.Task[None] | None = None
        self._jitter = random.Random()  # retry timing only; never affects results

    # -- public API --------------------------------------------------------------------------

    async def call(self, request: LLMRequest) -> LLMResponse:
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

    async def aclose(self) -> None:
        session, self._session, self._session_loop = self._session, None, None
        if session is not None:
            await session.close()

    def close(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._closing = loop.create_task(self.aclose())  # keep a reference until done
            return
        # The HTTP pool may belong to a loop that is gone; then there is nothing left to free.
        with contextlib.suppress(RuntimeError):
            asyncio.run(self.aclose())

    # -- requests ----------------------------------------------------------------------------

    async def _generate(self, request: LLMRequest) -> LLMResponse:
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

    async def _score_labels(self, request: LLMRequest) -> LLMResponse:
        options = ", ".join(request.labels)
        messages = _with_instruction(
            request.messages, f"Answer with exactly one of: {options}. Reply with that word only."
        )
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

    # -- transport ---------------------------------------------------------------------------

    async def _create(self, messages: list[dict[str, str]], **params: Any) -> Any:
        """One chat completion, retried; fatal failures become ``LLMUnavailable``."""
        params = {k: v for k, v in params.items() if v is not None}
        async with self._sem:
            try:
                out = await self._with_retries(messages, params)
            except openai.APIStatusError as exc:
                if exc.status_code in _FATAL_STATUS:
                    raise self._unavailable(exc) from None
                raise
            except openai.APIConnectionError as exc:
                refused = not isinstance(exc, openai.APITimeoutError)
                if refused and not self._ever_succeeded:
                    raise self._unavailable(exc) from None
                raise
        self._ever_succeeded = True
        if not getattr(out, "choices", None):
            raise MalformedReply("the reply has no choices")
        return out

    async def _with_retries(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Any:
        """Up to ``max_retries`` + 1 attempts. The first is made directly: most calls succeed at
        once, and a tenacity loop costs more CPU per call than the request; tenacity takes over
        from the first retryable failure, its attempts numbered from 2."""
        try:
            return await self._limited_send(messages, params)
        except Exception as exc:
            if not self.max_retries or not _retryable(exc):
                raise
            first = exc
        self._log_retry(1, first)
        await asyncio.sleep(self._backoff(1, first))
        retrying = AsyncRetrying(
            retry=retry_if_exception(_retryable),
            stop=stop_after_attempt(self.max_retries),
            wait=lambda state: self._backoff(state.attempt_number + 1, _failure(state)),
            before_sleep=lambda state: self._log_retry(state.attempt_number + 1, _failure(state)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._limited_send(messages, params)
        raise AssertionError("unreachable: the last failed attempt re-raises")

    async def _limited_send(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Any:
        """One attempt under the endpoint's rate limits: every retry is a request too."""
        if self._limiter is None:
            return await self._send(messages, params)
        est = sum(len(m["content"]) for m in messages) // 4 + int(
            params.get("max_tokens") or params.get("max_completion_tokens") or 0
        )
        await self._limiter.acquire(est)
        used = 0
        try:
            out = await self._send(messages, params)
            usage = getattr(out, "usage", None)
            used = usage.total_tokens if usage is not None else est
            return out
        finally:
            await self._limiter.settle(est, used)

    async def _send(self, messages: list[dict[str, str]], params: dict[str, Any]) -> Any:
        tokens = params.pop("max_tokens", None)
        if tokens is not None:
            params[self._token_param] = tokens
        try:
            return await self._post({"model": self.model, "messages": messages, **params})
        except openai.BadRequestError as exc:
            # Newer OpenAI models accept only max_completion_tokens; switch once and resend.
            if self._token_param == "max_tokens" and "max_completion_tokens" in str(exc):
                self._token_param = "max_completion_tokens"
                params["max_completion_tokens"] = params.pop("max_tokens")
                return await self._post({"model": self.model, "messages": messages, **params})
            raise

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            # one pool for all calls: the semaphore already caps what is in flight
            connector = aiohttp.TCPConnector(limit=self._concurrency, ssl=_tls_context())
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=self._timeout,
                # the proxy is read from the environment once (see _env_proxy); aiohttp's own
                # trust_env looks it and ~/.netrc up in a thread for every request
                trust_env=False,
            )
            self._session_loop = loop
        return self._session

    async def _post(self, body: dict[str, Any]) -> Any:
        try:
            session = self._session_here()
            async with session.post(self._url, json=body, proxy=self._proxy) as response:
                status, raw = response.status, await response.read()
                headers = response.headers
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors
            raise openai.APITimeoutError(request=self._request) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(
                message=f"{type(exc).__name__}: {exc}", request=self._request
            ) from exc
        if status >= 400:
            raise _status_error(httpx.Response(
                status, headers=list(headers.items()), content=raw, request=self._request))
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MalformedReply(f"the reply is not JSON: {raw[:200]!r}") from exc
        if not isinstance(data, dict):
            raise MalformedReply("the reply is not a JSON object")
        return _Reply(data)

    def _backoff(self, attempt: int, exc: BaseException | None) -> float:
        """Seconds to wait after failed attempt number ``attempt``."""
        # Full jitter: uniform in [0, backoff * 2^n], so many workers do not retry in step.
        ceiling = min(self._max_backoff_s, self._backoff_s * 2 ** (attempt - 1))
        delay = self._jitter.uniform(0, ceiling)
        if isinstance(exc, openai.APIStatusError):
            after = exc.response.headers.get("retry-after", "")
            if after.replace(".", "", 1).isdigit():
                delay = max(delay, min(float(after), self._max_backoff_s))
        return delay

    def _log_retry(self, attempt: int, exc: BaseException | None) -> None:
        log.info(
            "%s: attempt %d failed (%s); retrying",
            self.base_url,
            attempt,
            self._describe(exc) if exc else "?",
        )

    # -- messages that never carry the key ---------------------------------------------------

    def _redact(self, text: str) -> str:
        if len(self._secret) >= 4:
            text = text.replace(self._secret, "***")
        return text

    def _describe(self, exc: BaseException) -> str:
        if isinstance(exc, openai.APIStatusError):
            return self._redact(f"HTTP {exc.status_code}: {exc.message}"[:500])
        if isinstance(exc, openai.APITimeoutError):
            return "timed out"
        if isinstance(exc, openai.APIConnectionError):
            cause = exc.__cause__ or exc
            return self._redact(f"connection failed: {type(cause).__name__}: {cause}"[:500])
        return self._redact(f"{type(exc).__name__}: {exc}"[:500])

    def _unavailable(self, exc: BaseException) -> LLMUnavailable:
        what = {
            401: "the API key was refused",
            403: "access denied",
            404: f"model {self.model!r} or the URL path does not exist",
        }
        status = getattr(exc, "status_code", None)
        reason = what.get(status, "cannot connect") if status else "cannot connect"
        return LLMUnavailable(f"{self.base_url}: {reason} ({self._describe(exc)})")


def _env_proxy(url: yarl.URL) -> str | None:
    """The proxy that HTTP(S)_PROXY / NO_PROXY name for ``url``, as httpx and the SDK honour
    them; None when there is none."""
    if url.host and urllib.request.proxy_bypass(url.host):
        return None
    return urllib.request.getproxies().get(url.scheme)


def _failure(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The certifi trust store (what httpx and the SDK use), loaded once per process."""
    return ssl.create_default_context(cafile=certifi.where())


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
