"""Fan LLM requests out to workers, keeping requests that share a prompt on the same worker.

A worker is anything with ``async call_batch(requests) -> responses``: an in-process client wrapper
or a Ray actor handle (see ``workers/actors.py``). Requests are grouped by their affinity key (the
candidate prompt), cut into batches, and queued on the key's home worker, so llama.cpp reuses the
shared prefix; an idle worker steals batches from the longest queue so no core sits idle.
"""

from __future__ import annotations

import logging
import zlib
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from evo.gather import fan_out
from evo.llm import LLMClient, LLMRequest, LLMResponse, LLMUnavailable
from workers import faults

log = logging.getLogger(__name__)


class Worker(Protocol):
    async def call_batch(self, requests: list[LLMRequest]) -> list[LLMResponse]: ...


class LocalWorker:
    """A client in this process (tests, the scripted model, ``executor: inprocess``)."""

    def __init__(self, client: LLMClient) -> None:
        self.client = client

    async def call_batch(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        together = getattr(self.client, "call_batch", None)
        if together is not None:  # a local model decodes a batch side by side
            for _ in requests:
                faults.point("call")
            return list(await together(requests))
        return list(await fan_out(*(self._call(r) for r in requests)))

    async def _call(self, request: LLMRequest) -> LLMResponse:
        faults.point("call")
        return await self.client.call(request)


class PoolExhausted(RuntimeError):
    """No worker of the pool is left to answer."""


class Pool:
    def __init__(
        self,
        workers: Sequence[Worker],
        *,
        model: str,
        batch_size: int = 16,
        inflight_per_worker: int = 1,
        close: Callable[[], None] | None = None,
        labels: Sequence[str] | None = None,
        affinity: bool = True,
    ) -> None:
        if not workers:
            raise ValueError("a pool needs at least one worker")
        self.workers = list(workers)
        self.model = model
        self.batch_size = batch_size
        self.inflight = inflight_per_worker
        # group requests that share a prompt prefix on one worker (a local model reuses its
        # cache); a remote endpoint gains nothing from it, and full batches cost fewer calls
        self.affinity = affinity
        self._close = close
        # where each worker runs (a Ray node id, or "local"); requests served per place
        self.labels = list(labels) if labels else [f"worker-{i}" for i in range(len(workers))]
        self.served: Counter[str] = Counter()
        self.dead: set[int] = set()
        self.last_error = ""

    async def call_many(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        """Answers in request order. A worker that fails (a dead actor, a lost node) is taken
        out of the pool and its batches go to the others; only when none is left does this
        raise ``PoolExhausted``."""
        queues = self._plan(requests)
        results: list[LLMResponse | None] = [None] * len(requests)

        async def drain(home: int) -> None:
            while home not in self.dead and (batch := _next_batch(queues, home)):
                try:
                    answers = await self.workers[home].call_batch([requests[i] for i in batch])
                except LLMUnavailable:
                    raise  # the endpoint itself is gone: no other worker can do better
                except Exception as exc:  # any other worker fault: the batch goes elsewhere
                    self._retire(home, exc)
                    queues[home].appendleft(batch)
                    return
                for i, answer in zip(batch, answers, strict=True):
                    results[i] = answer
                self.served[self.labels[home]] += len(batch)

        while any(queues):
            alive = [w for w in range(len(self.workers)) if w not in self.dead]
            if not alive:
                raise PoolExhausted(f"every LLM worker failed; last error: {self.last_error}")
            lanes: list[Awaitable[None]] = [drain(w) for w in alive for _ in range(self.inflight)]
            await fan_out(*lanes)
        if any(r is None for r in results):  # every batch answers all of its requests (strict zip)
            raise RuntimeError("a worker left requests unanswered")
        return results  # type: ignore[return-value]

    def _retire(self, index: int, exc: Exception) -> None:
        self.dead.add(index)
        self.last_error = f"{type(exc).__name__}: {exc}"[:500]
        log.warning("LLM worker %s failed and left the pool: %s", self.labels[index],
                    self.last_error)

    def _plan(self, requests: Sequence[LLMRequest]) -> list[deque[list[int]]]:
        queues: list[deque[list[int]]] = [deque() for _ in self.workers]
        if not self.affinity:
            for n, start in enumerate(range(0, len(requests), self.batch_size)):
                chunk = list(range(start, min(start + self.batch_size, len(requests))))
                queues[n % len(self.workers)].append(chunk)
            return queues
        groups: dict[str, list[int]] = {}
        drawn: list[int] = []
        for i, req in enumerate(requests):
            if req.labels or req.group is not None:
                groups.setdefault(req.affinity_key(), []).append(i)
            else:  # a meta-prompt sample
                drawn.append(i)
        for key, members in groups.items():
            home = zlib.crc32(key.encode()) % len(self.workers)
            for start in range(0, len(members), self.batch_size):
                queues[home].append(members[start : start + self.batch_size])
        if drawn:
            # a local model samples a batch's requests side by side whatever their prompts:
            # one even share per worker, so every core samples
            size = min(self.batch_size, -(-len(drawn) // len(self.workers)))
            for n, start in enumerate(range(0, len(drawn), size)):
                queues[n % len(self.workers)].append(drawn[start : start + size])
        return queues

    def close(self) -> None:
        if self._close is not None:
            self._close()


def _next_batch(queues: list[deque[list[int]]], home: int) -> list[int] | None:
    if queues[home]:
        return queues[home].popleft()
    victim = max(range(len(queues)), key=lambda q: len(queues[q]))
    if queues[victim]:
        return queues[victim].pop()  # steal from the tail: the head keeps its warm prefix
    return None
