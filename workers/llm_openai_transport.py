"""The HTTP side of an OpenAI-compatible client: one aiohttp session per event loop, retries with
backoff, the endpoint's rate limits, fatal failures as ``LLMUnavailable``, and error messages
with the API key redacted (see ``workers.llm_openai`` for the failure handling by kind)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from typing import Any

import aiohttp
import httpx
import openai
import yarl
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from evo.llm import LLMUnavailable
from workers.llm_openai_wire import (
    FATAL_STATUS,
    MalformedReply,
    Reply,
    env_proxy,
    retryable,
    status_error,
    tls_context,
)

log = logging.getLogger("workers.llm_openai")  # the client's logger, as before the split

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class ChatTransport:
    """Sends chat completions to one endpoint for ``OpenAIClient``, which builds the requests
    and reads the replies."""

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None,
        api_key: str | None,
        timeout_s: float,
        max_retries: int,
        concurrency: int,
        backoff_s: float,
        max_backoff_s: float,
        rate_limiter: Any | None,
    ) -> None:
        self.model = model
        # shared with every client of the same endpoint (across processes when Redis is set)
        self._limiter = rate_limiter
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.max_retries = max_retries
        self._backoff_s = backoff_s
        self._max_backoff_s = max_backoff_s
        self._secret = api_key or ""
        # Plain HTTP with JSON, not the openai SDK's request and model machinery: that took
        # ~5 ms of CPU a call, more than a model actor can spare at hundreds of calls a second.
        # aiohttp rather than httpx: on the same calls it spends ~0.2 ms of CPU a call against
        # httpx's ~1.3 (`evo bench client_cpu`). Errors still become the SDK's exception types
        # (see status_error).
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._url = yarl.URL(self.base_url + "/chat/completions")  # parsed once, not per call
        self._completions_url = yarl.URL(self.base_url + "/completions")  # a plain prompt
        self._request = httpx.Request("POST", str(self._url))  # what the SDK's errors carry
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._proxy = env_proxy(self._url)
        self._concurrency = concurrency
        # a session is bound to the event loop it was made in: made on first use, in that loop
        self._session: aiohttp.ClientSession | None = None
        self._session_loop: asyncio.AbstractEventLoop | None = None
        self._sem = asyncio.Semaphore(concurrency)
        self._ever_succeeded = False
        self._token_param = "max_tokens"
        self._closing: asyncio.Task[None] | None = None
        self._jitter = random.Random()  # retry timing only; never affects results

    # -- closing -----------------------------------------------------------------------------

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

    # -- transport ---------------------------------------------------------------------------

    async def _create(self, messages: list[dict[str, str]] | str, **params: Any) -> Any:
        """One chat completion (or, for a plain prompt, one text completion), retried; fatal
        failures become ``LLMUnavailable``."""
        params = {k: v for k, v in params.items() if v is not None}
        async with self._sem:
            try:
                out = await self._with_retries(messages, params)
            except openai.APIStatusError as exc:
                if exc.status_code in FATAL_STATUS:
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

    async def _with_retries(self, messages: list[dict[str, str]] | str,
                            params: dict[str, Any]) -> Any:
        """Up to ``max_retries`` + 1 attempts. The first is made directly: most calls succeed at
        once, and a tenacity loop costs more CPU per call than the request; tenacity takes over
        from the first retryable failure, its attempts numbered from 2."""
        try:
            return await self._limited_send(messages, params)
        except Exception as exc:
            if not self.max_retries or not retryable(exc):
                raise
            first = exc
        self._log_retry(1, first)
        await asyncio.sleep(self._backoff(1, first))
        retrying = AsyncRetrying(
            retry=retry_if_exception(retryable),
            stop=stop_after_attempt(self.max_retries),
            wait=lambda state: self._backoff(state.attempt_number + 1, _failure(state)),
            before_sleep=lambda state: self._log_retry(state.attempt_number + 1, _failure(state)),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._limited_send(messages, params)
        raise AssertionError("unreachable: the last failed attempt re-raises")

    async def _limited_send(self, messages: list[dict[str, str]] | str,
                            params: dict[str, Any]) -> Any:
        """One attempt under the endpoint's rate limits: every retry is a request too."""
        if self._limiter is None:
            return await self._send(messages, params)
        chars = (len(messages) if isinstance(messages, str)
                 else sum(len(m["content"]) for m in messages))
        est = chars // 4 + int(
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

    async def _send(self, messages: list[dict[str, str]] | str, params: dict[str, Any]) -> Any:
        if isinstance(messages, str):  # /completions: a plain prompt, always max_tokens
            return await self._post({"model": self.model, "prompt": messages, **params},
                                    self._completions_url)
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
            connector = aiohttp.TCPConnector(limit=self._concurrency, ssl=tls_context())
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers=self._headers,
                timeout=self._timeout,
                # the proxy is read from the environment once (see env_proxy); aiohttp's own
                # trust_env looks it and ~/.netrc up in a thread for every request
                trust_env=False,
            )
            self._session_loop = loop
        return self._session

    async def _post(self, body: dict[str, Any], url: yarl.URL | None = None) -> Any:
        try:
            session = self._session_here()
            async with session.post(url or self._url, json=body, proxy=self._proxy) as response:
                status, raw = response.status, await response.read()
                headers = response.headers
        except TimeoutError as exc:  # aiohttp's timeouts are TimeoutErrors
            raise openai.APITimeoutError(request=self._request) from exc
        except aiohttp.ClientError as exc:
            raise openai.APIConnectionError(
                message=f"{type(exc).__name__}: {exc}", request=self._request
            ) from exc
        if status >= 400:
            raise status_error(httpx.Response(
                status, headers=list(headers.items()), content=raw, request=self._request))
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise MalformedReply(f"the reply is not JSON: {raw[:200]!r}") from exc
        if not isinstance(data, dict):
            raise MalformedReply("the reply is not a JSON object")
        return Reply(data)

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


def _failure(state: RetryCallState) -> BaseException | None:
    return state.outcome.exception() if state.outcome else None
