"""The OpenAI wire format as the client reads it: JSON replies as attribute objects, error
replies as the openai SDK's exceptions (and which of them are worth a retry), and the proxy and
TLS settings a connection uses."""

from __future__ import annotations

import functools
import ssl
import urllib.request
from typing import Any

import certifi
import httpx
import openai
import yarl

RETRY_STATUS = {408, 409, 429}
FATAL_STATUS = {401, 403, 404}


class MalformedReply(Exception):
    """A 200 reply without the fields a chat completion has."""


class Reply:
    """Attribute access over a decoded JSON reply, ``None`` for a missing field (as the SDK's
    models give): building the SDK's typed models costs more CPU than the call itself."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return _wrap(self._data.get(name))


def _wrap(value: Any) -> Any:
    if isinstance(value, dict):
        return Reply(value)
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


def status_error(response: httpx.Response) -> openai.APIStatusError:
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


def retryable(exc: BaseException) -> bool:
    if isinstance(exc, openai.APIConnectionError):  # includes timeouts
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRY_STATUS or exc.status_code >= 500
    return False


def env_proxy(url: yarl.URL) -> str | None:
    """The proxy that HTTP(S)_PROXY / NO_PROXY name for ``url``, as httpx and the SDK honour
    them; None when there is none."""
    if url.host and urllib.request.proxy_bypass(url.host):
        return None
    return urllib.request.getproxies().get(url.scheme)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The certifi trust store (what httpx and the SDK use), loaded once per process."""
    return ssl.create_default_context(cafile=certifi.where())
