"""LLM request/response types and the client protocol.

These are plain data: the core builds requests, workers/ sends them. A client never raises for a
failed *call* that the job can survive (a timeout after retries, a refused request): it returns an
``LLMResponse`` whose ``error`` says why. It raises ``LLMUnavailable`` when the endpoint cannot be
reached at all, which ends the job with a clear message.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any, Protocol


class LLMUnavailable(RuntimeError):
    """The endpoint cannot be reached or refuses every request (bad URL, bad key, no such model)."""


@dataclass(frozen=True)
class Message:
    role: str  # "system" | "user" | "assistant"
    content: str


@dataclass(frozen=True)
class LLMRequest:
    """One call to a model.

    ``prefill`` is text the assistant's answer starts with (the opening tag of a format); the
    returned ``text`` does not repeat it. With ``labels`` set the client scores those options as the
    next words of the answer (log-probabilities) instead of generating; ``text`` is the best one.
    ``sample`` (with ``strand``) tells apart repeated samples of one request (cache key), and
    ``seed`` is passed on to endpoints that support seeded sampling.
    """

    messages: tuple[Message, ...]
    max_tokens: int = 256
    temperature: float = 0.0
    stop: tuple[str, ...] = ()
    prefill: str = ""
    labels: tuple[str, ...] = ()
    seed: int | None = None
    sample: int = 0
    # which strand of the search asked (see ``evo/gather.py``): with ``sample``, what tells
    # apart the same request asked again; empty for the search's main line
    strand: tuple[int, ...] = ()
    # what requests sharing a prompt prefix have in common (the candidate prompt of an
    # evaluation): a scheduling hint, not part of the request
    group: str | None = None

    def cache_key(self, model: str) -> str:
        """The request's identity for caches and stored responses: every field but ``seed``
        (the sample index, not the per-call seed, identifies a sample) and ``group``. Stored
        keys depend on these exact bytes. Kept on the instance: the driver asks twice."""
        memo = self.__dict__.get("_key")
        if memo is not None and memo[0] == model:
            return memo[1]
        payload = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in self.messages],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
            "stop": self.stop,
            "prefill": self.prefill,
            "labels": self.labels,
            "sample": self.sample,
        }
        if self.strand:  # absent otherwise, so keys stored before strands existed still match
            payload["strand"] = list(self.strand)
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(blob.encode()).hexdigest()
        object.__setattr__(self, "_key", (model, key))  # not a field: eq, hash, repr ignore it
        return key

    def affinity_key(self) -> str:
        """Requests sharing a key share a long prefix: the same ``group`` (the candidate prompt
        of an evaluation), else the same system message and start of the user message."""
        if self.group is not None:
            return hashlib.blake2b(self.group.encode(), digest_size=8).hexdigest()
        head = "\n".join(m.content for m in self.messages[:-1])
        last = self.messages[-1].content if self.messages else ""
        return hashlib.blake2b((head + "\x00" + last[:256]).encode(), digest_size=8).hexdigest()


@dataclass
class LLMResponse:
    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    label_logprobs: dict[str, float] | None = None
    cached: bool = False
    error: str | None = None
    meta: dict = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain, JSON-ready dict. Shallow: ``dataclasses.asdict`` deep-copies
        every value, which cost more than all the rest of recording a paid call."""
        return {name: getattr(self, name) for name in _RESPONSE_FIELDS}


_RESPONSE_FIELDS = tuple(f.name for f in fields(LLMResponse))


class LLMClient(Protocol):
    """One model endpoint. ``call`` may be awaited concurrently; clients serialize as needed."""

    model: str
    supports_label_scoring: bool

    async def call(self, request: LLMRequest) -> LLMResponse: ...

    def close(self) -> None: ...
