"""Loopback HTTP servers for tests: a real llama.cpp OpenAI-compatible server, and a scripted one
that replays canned replies and records what it received."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from bench.common import free_port, start_llama_server

__all__ = ["free_port", "start_llama_server"]  # tests import them from here


def chat_reply(
    text: str, *, logprobs: list[tuple[str, float]] | None = None, model: str = "scripted"
) -> dict[str, Any]:
    """A chat-completion body; ``logprobs`` lists the top alternatives of the first token."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": "stop",
        "logprobs": None,
    }
    if logprobs is not None:
        first = [{"token": t, "logprob": lp, "bytes": None} for t, lp in logprobs]
        choice["logprobs"] = {"content": [{**first[0], "top_logprobs": first}], "refusal": None}
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
    }


def _lower(items: Any) -> dict[str, str]:
    return {name.lower(): value for name, value in items}


@dataclass
class Reply:
    status: int = 200
    body: Any = field(default_factory=lambda: chat_reply("ok"))
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # time to wait before answering


@dataclass
class Received:
    """One request as the server saw it (header names lower-cased)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


class ScriptedOpenAIServer:
    """Answers requests with ``replies`` in order (the last one repeats) and records each request
    in ``received``; ``max_in_flight`` is the most requests it was answering at once.

    Use as a context manager; ``base_url`` ends in ``/v1`` like an OpenAI endpoint.
    """

    def __init__(self, replies: list[Reply]) -> None:
        if not replies:
            raise ValueError("at least one reply")
        self.replies = list(replies)
        self.received: list[Received] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        # A short poll interval makes shutdown prompt.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> ScriptedOpenAIServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _next(self, received: Received) -> Reply:
        with self._lock:
            index = len(self.received)
            self.received.append(received)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            return self.replies[min(index, len(self.replies) - 1)]

    def _done(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                reply = server._next(
                    Received(
                        self.command,
                        self.path,
                        {k.lower(): v for k, v in self.headers.items()},
                        body,
                    )
                )
                try:
                    time.sleep(reply.delay_s)
                    payload = json.dumps(reply.body).encode()
                    self.send_response(reply.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    # One request per connection, so a stopped server is really gone.
                    self.send_header("connection", "close")
                    self.close_connection = True
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(payload)
                finally:
                    server._done()

            do_GET = do_POST

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler
