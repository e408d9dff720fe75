"""Rate limits per endpoint (requests and tokens per minute), honoured by every LLM actor.

Algorithm: GCRA (the "virtual scheduling" form of a leaky bucket), one per limit. Each limit keeps
a theoretical arrival time (TAT): the moment its budget is paid up. ``acquire(estimate)``
*reserves* the next slot in one atomic step: the call may start at ``start = max(now, TAT_req,
TAT_tok)``, and the TATs advance to ``max(TAT, start) + cost × interval`` (``60 / rpm`` s per
request, ``60 / tpm`` s per token). The caller then sleeps until ``start``, with no further
round trip: waiting callers never poll, and they are served in arrival order across processes.

- Requests are paced evenly (no burst): providers enforce per-minute limits over much shorter
  windows, and an even pace is what keeps ten jobs on one key clear of 429s.
- Tokens are charged *after* admission: a call starts when the token budget is out of debt, then
  pushes the debt forward by its estimate, so a call larger than a second's worth of tokens is
  not blocked on an idle endpoint. ``settle(estimate, actual)`` corrects the debt once the real
  count is known (a refund only shortens outstanding debt; it never banks credit).
- A waiter cancelled before its slot gives the reservation back.

``RateLimiter`` keeps the TATs in Redis (one Lua script, Redis server time, so the hosts' clocks
do not matter); ``LocalRateLimiter`` is the same algorithm in this process. If Redis fails, the
Redis limiter falls back to a local one with the same limits (one warning): pacing per process
only, which the client's 429 back-off covers, instead of a stalled or crashed job.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
import weakref
from typing import Protocol

import redis
import redis.asyncio as aioredis

from evo.app.settings import Settings
from workers.redis_bus import DEFAULT_PREFIX, RedisGuard, async_client

log = logging.getLogger(__name__)

_US = 1_000_000

# Shared head of the scripts. TATs are µs of Redis server time, stored as integers ('%.0f':
# Lua's default number format would round them).
_STORE = """
local function store(key, tat, now)
  -- kept a minute past the debt so that an idle limiter leaves nothing behind
  redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 60000)
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: request TAT, token TAT. ARGV: µs per request (0: no limit), µs per token (0: no limit),
# tokens reserved. Returns the µs to wait before the reserved slot.
_ACQUIRE = (
    _STORE
    + """
local per_req = tonumber(ARGV[1])
local per_tok = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local req_tat = tonumber(redis.call('GET', KEYS[1]) or 0)
local tok_tat = tonumber(redis.call('GET', KEYS[2]) or 0)
local start = now
if per_req > 0 then start = math.max(start, req_tat) end
if per_tok > 0 then start = math.max(start, tok_tat) end
if per_req > 0 then store(KEYS[1], math.max(req_tat, start) + per_req, now) end
if per_tok > 0 and cost > 0 then store(KEYS[2], math.max(tok_tat, start) + cost * per_tok, now) end
return math.ceil(start - now)
"""
)

# KEYS: a TAT. ARGV: µs to add (negative: a refund). Debt is charged from now at the earliest;
# a refund only shortens debt that is still outstanding.
_ADJUST = (
    _STORE
    + """
local delta = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or 0)
if delta > 0 then
  store(KEYS[1], math.max(tat, now) + delta, now)
elseif tat > now then
  store(KEYS[1], math.max(tat + delta, now), now)
end
return 0
"""
)


class Limiter(Protocol):
    rpm: int | None
    tpm: int | None

    async def acquire(self, tokens_estimate: int) -> None: ...

    async def settle(self, estimate: int, actual: int) -> None: ...


def _interval_us(per_minute: int | None) -> float:
    return 60 * _US / per_minute if per_minute else 0.0


def _check(rpm: int | None, tpm: int | None) -> None:
    for name, value in (("rpm", rpm), ("tpm", tpm)):
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be positive, got {value}")


class LocalRateLimiter:
    """The GCRA of ``RateLimiter`` for one process (no Redis configured, or Redis down)."""

    def __init__(self, rpm: int | None = None, tpm: int | None = None) -> None:
        _check(rpm, tpm)
        self.rpm = rpm
        self.tpm = tpm
        self._per_req = _interval_us(rpm)
        self._per_tok = _interval_us(tpm)
        self._req_tat = 0.0  # µs on the monotonic clock
        self._tok_tat = 0.0
        self._lock = threading.Lock()  # a Ray actor may run calls on several threads

    async def acquire(self, tokens_estimate: int) -> None:
        wait_us = self._reserve(max(0, tokens_estimate))
        try:
            await asyncio.sleep(wait_us / _US)
        except asyncio.CancelledError:
            self._give_back(max(0, tokens_estimate))
            raise

    async def settle(self, estimate: int, actual: int) -> None:
        if self._per_tok and actual != estimate:
            self._adjust_tokens((actual - estimate) * self._per_tok)

    def _reserve(self, cost: int) -> float:
        with self._lock:
            now = time.monotonic() * _US
            start = now
            if self._per_req:
                start = max(start, self._req_tat)
            if self._per_tok:
                start = max(start, self._tok_tat)
            if self._per_req:
                self._req_tat = max(self._req_tat, start) + self._per_req
            if self._per_tok and cost:
                self._tok_tat = max(self._tok_tat, start) + cost * self._per_tok
            return start - now

    def _give_back(self, cost: int) -> None:
        with self._lock:
            now = time.monotonic() * _US
            if self._per_req:
                self._req_tat = _shift(self._req_tat, -self._per_req, now)
            if self._per_tok and cost:
                self._tok_tat = _shift(self._tok_tat, -cost * self._per_tok, now)

    def _adjust_tokens(self, delta_us: float) -> None:
        with self._lock:
            self._tok_tat = _shift(self._tok_tat, delta_us, time.monotonic() * _US)


def _shift(tat: float, delta_us: float, now: float) -> float:
    """``_ADJUST`` in Python: charge debt from now at the earliest, refund only what is owed."""
    if delta_us > 0:
        return max(tat, now) + delta_us
    return max(tat + delta_us, now) if tat > now else tat


class RateLimiter:
    """Limits shared by every process through Redis, for one endpoint ``key``.

    Safe to use from several event loops (each gets its own connection); a Redis failure falls
    back to an in-process ``LocalRateLimiter`` until Redis answers again.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        rpm: int | None = None,
        tpm: int | None = None,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        _check(rpm, tpm)
        self.url = url
        self.key = key
        self.rpm = rpm
        self.tpm = tpm
        self._per_req = _interval_us(rpm)
        self._per_tok = _interval_us(tpm)
        self._req_key = f"{prefix}rl:{key}:req"
        self._tok_key = f"{prefix}rl:{key}:tok"
        # One client per event loop: asyncio connections belong to the loop that opened them.
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
            weakref.WeakKeyDictionary()
        )
        self._local = LocalRateLimiter(rpm, tpm)
        self.guard = RedisGuard(f"the rate limits of {key}", log)

    async def acquire(self, tokens_estimate: int) -> None:
        cost = max(0, tokens_estimate)
        if not self.guard.ready():
            await self._local.acquire(cost)
            return
        try:
            wait_us = await self._client().eval(
                _ACQUIRE, 2, self._req_key, self._tok_key, self._per_req, self._per_tok, cost
            )
        except redis.RedisError as exc:
            self.guard.failed(exc)
            await self._local.acquire(cost)
            return
        self.guard.succeeded()
        try:
            await asyncio.sleep(int(wait_us) / _US)
        except asyncio.CancelledError:
            await self._give_back(cost)
            raise

    async def settle(self, estimate: int, actual: int) -> None:
        if not self._per_tok or actual == estimate:
            return
        await self._adjust(self._tok_key, (actual - estimate) * self._per_tok)
        if self.guard.down:
            await self._local.settle(estimate, actual)

    async def _give_back(self, cost: int) -> None:
        # Shielded: runs while the caller is being cancelled.
        async def undo() -> None:
            if self._per_req:
                await self._adjust(self._req_key, -self._per_req)
            if self._per_tok and cost:
                await self._adjust(self._tok_key, -cost * self._per_tok)

        await asyncio.shield(undo())

    async def _adjust(self, key: str, delta_us: float) -> None:
        if not self.guard.ready():
            return
        try:
            await self._client().eval(_ADJUST, 1, key, delta_us)
        except redis.RedisError as exc:
            self.guard.failed(exc)
        else:
            self.guard.succeeded()

    def _client(self) -> aioredis.Redis:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            client = self._clients[loop] = async_client(self.url)
        return client

    async def aclose(self) -> None:
        """Close this loop's connection (others die with their loops)."""
        client = self._clients.pop(asyncio.get_running_loop(), None)
        if client is not None:
            await client.aclose()


def endpoint_key(base_url: str, model: str, api_key: str | None = None) -> str:
    """The limiter key of an endpoint: limits belong to an API key, which must not appear in
    Redis, so it enters only as a short hash."""
    key = f"{base_url.rstrip('/')}|{model}"
    if api_key:
        key += "|" + hashlib.sha256(api_key.encode()).hexdigest()[:16]
    return key


_made: dict[tuple[str | None, str, int | None, int | None], RateLimiter | LocalRateLimiter] = {}
_made_lock = threading.Lock()


def make_rate_limiter(
    settings: Settings, key: str, rpm: int | None, tpm: int | None
) -> RateLimiter | LocalRateLimiter | None:
    """Shared limits through Redis when ``EVO_REDIS_URL`` is set, else this process's; ``None``
    when there is no limit to keep.

    One limiter per endpoint and process: every client of an endpoint in this process gets the
    same instance, so that without Redis the clients of one pool still share one budget.
    """
    if rpm is None and tpm is None:
        return None
    ident = (settings.redis_url, settings.redis_prefix, key, rpm, tpm)
    with _made_lock:
        limiter = _made.get(ident)
        if limiter is None:
            if settings.redis_url:
                limiter = RateLimiter(
                    settings.redis_url, key, rpm=rpm, tpm=tpm, prefix=settings.redis_prefix
                )
            else:
                limiter = LocalRateLimiter(rpm, tpm)
            _made[ident] = limiter
        return limiter
