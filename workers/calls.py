"""Paying for a job's LLM calls: the cache first, then what the job paid before a crash, then the
pool; the budget is taken before a call goes out and every call gets a ledger row.

A request asked twice in one round is paid once (the others are cache hits). A call answered by
the pool is recorded with its response as the round returns; a call replayed from a response paid
before a crash already has its ledger row and is not paid again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Protocol

from evo.events import CallsMade, InProcessBus
from evo.llm import LLMRequest, LLMResponse
from evo.spec import Price
from storage import LLMCallRecord
from workers.budget import Budget
from workers.cache import ResponseCache
from workers.cost import cost, costs_bound
from workers.pool import Pool
from workers.recorder import Recorder

_RESPONSE_FIELDS = frozenset(LLMResponse.__dataclass_fields__)


class PriceOf(Protocol):
    """The price of the model a pool serves (None: its calls are not counted in money)."""

    def __call__(self, pool: Pool) -> Price | None: ...


class Calls:
    def __init__(self, job_id: str, cache: ResponseCache, budget: Budget, recorder: Recorder,
                 bus: InProcessBus, price_of: PriceOf = lambda pool: None) -> None:
        self.job_id = job_id
        self.price_of = price_of
        self.cache = cache
        self.budget = budget
        self.recorder = recorder
        self.bus = bus
        self.paid = 0  # responses paid so far, in order
        self.abandoned = 0  # calls in flight when the job was stopped, never answered
        self.replay: dict[str, dict] = {}  # paid before a crash, not yet asked again
        self.hits_stored = 0  # cache hits a crashed run stored after its checkpoint

    async def call(
        self,
        pool: Pool,
        requests: Sequence[LLMRequest],
        purpose: str,
        owners: Sequence[str | None],
    ) -> list[LLMResponse]:
        """The answers to ``requests``, in order; ``owners`` are the candidates they are for."""
        keys = [r.cache_key(pool.model) for r in requests]
        out: list[LLMResponse | None] = self.lookup(keys)
        misses: dict[str, list[int]] = {}
        for i, hit in enumerate(out):
            if hit is None:
                misses.setdefault(keys[i], []).append(i)
        uniq = [requests[idx[0]] for idx in misses.values()]
        est = sum(len(m.content) // 3 for r in uniq for m in r.messages) + sum(
            r.max_tokens for r in uniq
        )
        price = self.price_of(pool)
        bound = costs_bound(uniq, price)
        self.budget.take(len(uniq), est, bound)
        fresh = [k for k in misses if k not in self.replay]
        try:
            answered = (
                await pool.call_many([requests[misses[k][0]] for k in fresh]) if fresh else []
            )
        except asyncio.CancelledError:
            # stopped mid-flight: only answered calls count, so the ledger and stats agree
            self.budget.calls -= len(uniq)
            self.budget.settle(bound, 0.0)
            self.abandoned += len(fresh)
            raise
        answers = dict(zip(fresh, answered, strict=True))
        ledger, paid, answered_now = [], [], []
        spent = 0.0
        for key, idx in misses.items():
            replayed = self.replay.pop(key, None)
            answer = response_of(replayed) if replayed is not None else answers[key]
            usd = cost(answer, price)
            spent += usd  # a replayed call was paid before the checkpoint's spend was taken
            if replayed is None:  # a replayed call already has its ledger row
                ledger.append(self.ledger_row(owners[idx[0]], purpose, answer, usd))
                if answer.error is None:  # a failed call is asked again, not replayed
                    record = answer.as_dict()
                    if purpose != "evaluate":  # meta-prompts are few: keep them, for lineage
                        record["request"] = request_record(requests[idx[0]])
                    paid.append((self.paid, key, record))
            self.paid += 1
            answered_now.append((key, answer))
            self.budget.spend_tokens(answer.tokens)
            for j, i in enumerate(idx):
                out[i] = answer if j == 0 else replace(answer, cached=True, latency_s=0.0)
        self.budget.settle(bound, spent)
        self.remember(answered_now)
        if ledger:  # stored in the background, in order, while the next round goes out
            self.recorder.paid(ledger, paid)
        firsts = {idx[0] for idx in misses.values()}
        hits = [i for i in range(len(out)) if i not in firsts]
        # a resumed job meets again, in the same order, the hits its crashed run stored
        skip = min(self.hits_stored, len(hits))
        self.hits_stored -= skip
        self.recorder.cached([self.ledger_row(owners[i], purpose, out[i]) for i in hits[skip:]])
        self.budget.cached += len(hits)
        self.bus.publish(CallsMade(self.job_id, self.budget.calls, self.budget.tokens, len(hits)))
        return out  # type: ignore[return-value]  # every slot is filled by now

    def unanswered(self, keys: Sequence[str]) -> set[str]:
        """Those of ``keys`` the cache does not hold: each costs a call (a replayed one too)."""
        return {k for k, hit in zip(keys, self.lookup(keys), strict=True) if hit is None}

    def lookup(self, keys: Sequence[str]) -> list[LLMResponse | None]:
        many = getattr(self.cache, "get_many", None)  # one round trip to a shared cache
        return list(many(keys)) if many else [self.cache.get(k) for k in keys]

    def remember(self, answers: list[tuple[str, LLMResponse]]) -> None:
        many = getattr(self.cache, "put_many", None)  # one round trip to a shared cache
        if many is not None:
            many(answers)
            return
        for key, answer in answers:
            self.cache.put(key, answer)

    def restore(self, paid: list[tuple[str, dict[str, Any]]], upto: int, hits: int = 0) -> None:
        """After a crash: responses paid before the checkpoint (the first ``upto``) fill the cache
        as they did the first time; those paid after it are replayed when asked again. ``hits``
        cache hits were stored after the checkpoint: their ledger rows are not written twice."""
        self.paid = upto
        self.hits_stored = hits
        self.remember([(key, response_of(response)) for key, response in paid[:upto]])
        self.replay = dict(paid[upto:])

    def bound(self, pool: Pool, requests: Sequence[LLMRequest]) -> float:
        """The most ``requests`` can cost on ``pool`` (see ``workers/cost.py``)."""
        return costs_bound(requests, self.price_of(pool))

    def ledger_row(
        self, owner: str | None, purpose: str, resp: LLMResponse | None, usd: float = 0.0
    ) -> LLMCallRecord:
        assert resp is not None
        return LLMCallRecord(
            job_id=self.job_id,
            candidate_id=owner,
            purpose=purpose,
            model=resp.model,
            prompt_tokens=resp.prompt_tokens,
            completion_tokens=resp.completion_tokens,
            latency_s=resp.latency_s,
            cached=resp.cached,
            error=resp.error,
            usd=usd,
        )


def request_record(request: LLMRequest) -> dict[str, Any]:
    return {
        "messages": [{"role": m.role, "content": m.content} for m in request.messages],
        "prefill": request.prefill,
        "temperature": request.temperature,
        "max_tokens": request.max_tokens,
    }


def response_of(stored: dict[str, Any]) -> LLMResponse:
    """A stored paid response back as an LLMResponse (its recorded request left aside)."""
    return LLMResponse(**{k: v for k, v in stored.items() if k in _RESPONSE_FIELDS})
