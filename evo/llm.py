"""LLM request/response types, the client protocol, and the one rule that turns a model's
first-token log-probabilities into label scores.

These are plain data: the core builds requests, workers/ sends them. A request is the whole of
what is asked: every client sends its messages as they are, adding no instruction of its own, so
a task scores the same whichever runtime serves the model (docs/requests.md). Label scores are
read by ``label_scores`` from the ``LABEL_TOP_K`` most likely first tokens, whatever the runtime:
a local model lists them from its logits, an OpenAI-compatible endpoint returns them.

A client never raises for a failed *call* that the job can survive (a timeout after retries, a
refused request): it returns an ``LLMResponse`` whose ``error`` says why. It raises
``LLMUnavailable`` when the endpoint cannot be reached at all, which ends the job with a clear
message.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from evo.soft_prompt import SoftPrompt


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

    A label request carries no prefill: a chat endpoint cannot continue a partial answer, so the
    labels are always scored as the first words of the answer (``label_scores``).
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
    # a soft prompt decoded where ``evo.soft_prompt.MARKER`` stands in the messages (a runtime
    # that takes input embeddings only: the local one); label requests only
    soft: SoftPrompt | None = None
    # "chat": the messages through the model's chat template; "completion": their text as a
    # plain prompt, then the prefill, for base models that continue text (docs/requests.md)
    mode: str = "chat"

    def __post_init__(self) -> None:
        if self.mode not in ("chat", "completion"):
            raise ValueError(f"mode must be 'chat' or 'completion', not {self.mode!r}")
        if self.labels and self.prefill:
            raise ValueError("a label request cannot have a prefill: labels are scored as the "
                             "first words of the answer on every runtime")
        if self.soft is not None and not self.labels:
            raise ValueError("a soft prompt is applied to label requests only")

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
        if self.soft is not None:  # likewise
            payload["soft"] = self.soft.key()
        if self.mode != "chat":  # likewise: keys stored before modes existed still match
            payload["mode"] = self.mode
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False)
        key = hashlib.sha256(blob.encode()).hexdigest()
        object.__setattr__(self, "_key", (model, key))  # not a field: eq, hash, repr ignore it
        return key

    def completion_prompt(self) -> str:
        """The plain prompt of a ``completion`` request, the same on every runtime: the
        messages' texts one after another (a blank line between two), then the prefill, so
        the model's answer continues the prefill directly."""
        return "\n\n".join(m.content for m in self.messages) + self.prefill

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


# --- label scoring ------------------------------------------------------------------------------

# How many alternatives of the first answer token label scoring reads: the most an OpenAI-compatible
# endpoint returns (``top_logprobs``), so a local model reads no more than a server can.
LABEL_TOP_K = 20
# Score of a label that never appeared (below every listed token, or this when nothing is listed).
LABEL_FLOOR = -100.0


def _norm(text: str) -> str:
    return text.strip().strip(".,:;!?\"'`*()[]").lower()


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def label_scores(labels: tuple[str, ...], top: list[tuple[str, float]]) -> dict[str, float]:
    """Label scores from the first answer token's most likely alternatives (text, log-probability),
    the same on every runtime.

    A listed token counts for a label when, stripped of spaces and punctuation and lower-cased, it
    is the label (" Positive" and "positive" for "positive"), or a start of the label that starts
    no other label ("Pos" for "positive"; not "S" when the labels are "Sports" and "Science": such
    a token does not say which). A label's score is the log of the summed probabilities of its
    tokens. Labels with no token in the list get a floor just below the least likely token listed
    (they are less likely than any listed token, by how much the list does not say).
    """
    floor = min((lp for _, lp in top), default=LABEL_FLOOR + 1.0) - 1.0
    wanted = [_norm(label) for label in labels]
    hits: list[list[float]] = [[] for _ in labels]
    for token, logprob in top:
        norm = _norm(token)
        if not norm:
            continue
        exact = [i for i, want in enumerate(wanted) if want == norm]
        starts = [i for i, want in enumerate(wanted) if want.startswith(norm)]
        for i in exact or (starts if len(starts) == 1 else ()):
            hits[i].append(logprob)
    return {label: (_logsumexp(h) if h else floor) for label, h in zip(labels, hits, strict=True)}


class LLMClient(Protocol):
    """One model endpoint. ``call`` may be awaited concurrently; clients serialize as needed."""

    model: str
    supports_label_scoring: bool

    async def call(self, request: LLMRequest) -> LLMResponse: ...

    def close(self) -> None: ...
