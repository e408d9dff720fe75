"""The response cache in Redis: one cache shared by every job, process and machine.

Layout under a prefix (default ``evo:``):

- ``{prefix}cache:{key}``: the ``LLMResponse`` as JSON (``LLMResponse.as_dict``), with a TTL
  (default 7 days) that each hit renews, so an entry lives ``ttl_s`` after its last use.
- ``{prefix}cache:lru``: a sorted set of keys scored by last use (Redis server time, µs). It bounds
  the entry count: each put drops members unused for a TTL (their entries have expired) and then
  evicts the least recently used beyond ``max_entries``. Eviction happens on put, at most
  ``MAX_EVICT_PER_PUT`` at a time, so after the bound is lowered the cache shrinks over the next
  puts: the bound is approximate, never a reason for a slow call.

Lookups are one ``MGET`` for a whole round, then one Lua script that renews the hits (TTL and
last use); answers go in one Lua script per thousand, which stores them, takes their last use in
the order given and evicts (each script atomic across processes). The scripts touch entry keys
they compute themselves, which a single Redis server allows; on Redis Cluster give the prefix a
hash tag (``{evo}:``) so all keys share a slot.

A Redis outage turns gets into misses and puts into no-ops, with one warning (see ``RedisGuard``):
a job pays for calls again but does not stop.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import fields, replace
from typing import Any

import redis

from evo.app.settings import Settings
from evo.llm import LLMResponse
from workers.cache import MemoryCache, ResponseCache
from workers.redis_bus import DEFAULT_PREFIX, RedisGuard, sync_client

log = logging.getLogger(__name__)

CACHE_TTL_S = 7 * 24 * 3600
MAX_EVICT_PER_PUT = 1_000
_FIELDS = frozenset(f.name for f in fields(LLMResponse))

# Last use in µs of Redis server time (exact in a double; '%.0f' keeps Lua from rounding it).
_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

# KEYS: lru index, then the entries found. ARGV: ttl_s, then their members. Renews each entry's
# TTL and last use (one µs apart, in the order given); one that expired meanwhile is left out.
_TOUCH = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local z = {}
for i = 2, #KEYS do
  if redis.call('EXPIRE', KEYS[i], ttl) == 1 then
    z[#z + 1] = string.format('%.0f', now + i)
    z[#z + 1] = ARGV[i]
  end
end
if #z > 0 then redis.call('ZADD', KEYS[1], unpack(z)) end
return #z / 2
"""
)

# KEYS: lru index, then one entry per answer. ARGV: ttl_s, max_entries, entry key prefix, max
# evictions beyond the answers' own number, then member, value of each answer. Stores them (last
# use one µs apart, in the order given), drops index members unused for a TTL, then evicts the
# least recently used beyond max_entries. Returns how many entries were evicted for the bound.
_PUT = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local n = #KEYS - 1
local z = {}
for i = 1, n do
  redis.call('SET', KEYS[i + 1], ARGV[4 + 2 * i], 'EX', ttl)
  z[2 * i - 1] = string.format('%.0f', now + i)
  z[2 * i] = ARGV[3 + 2 * i]
end
redis.call('ZADD', KEYS[1], unpack(z))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('(%.0f', now - ttl * 1000000))
local over = math.min(redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2]), tonumber(ARGV[4]) + n)
if over > 0 then
  local old = redis.call('ZPOPMIN', KEYS[1], over)
  for i = 1, #old, 2 do redis.call('DEL', ARGV[3] .. old[i]) end
else
  over = 0
end
redis.call('EXPIRE', KEYS[1], ttl)
return over
"""
)

# answers per script call: a Lua stack holds a few thousand values (unpack), and one script
# blocks the server while it runs
_CHUNK = 1_000


class RedisCache:
    """A ``ResponseCache`` in Redis. Failed responses (``error`` set) are never stored."""

    def __init__(
        self,
        url: str,
        *,
        max_entries: int = 200_000,
        ttl_s: int = CACHE_TTL_S,
        prefix: str = DEFAULT_PREFIX,
    ) -> None:
        self.url = url
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.entry_prefix = f"{prefix}cache:"
        self.lru_key = f"{prefix}cache:lru"
        self._redis = sync_client(url)
        self._touch = self._redis.register_script(_TOUCH)
        self._put = self._redis.register_script(_PUT)
        self.guard = RedisGuard("the response cache", log)
        self.hits = 0
        self.misses = 0
        self.evicted = 0

    def get(self, key: str) -> LLMResponse | None:
        return self.get_many([key])[0]

    def get_many(self, keys: Sequence[str]) -> list[LLMResponse | None]:
        """Look many keys up at once: one ``MGET``, then the hits renewed in one pipeline (a
        script per key held a round of 2,000 lookups for 60–90 ms, misses included)."""
        raw: list[Any] = [None] * len(keys)
        if keys and self.guard.ready():
            try:
                raw = self._redis.mget([self.entry_prefix + k for k in keys])
                hit_keys = [k for k, v in zip(keys, raw, strict=True) if v]
                if hit_keys:
                    pipe = self._redis.pipeline(transaction=False)
                    for start in range(0, len(hit_keys), _CHUNK):
                        chunk = hit_keys[start : start + _CHUNK]
                        self._touch(
                            keys=[self.lru_key, *(self.entry_prefix + k for k in chunk)],
                            args=[self.ttl_s, *chunk],
                            client=pipe,
                        )
                    pipe.execute()
            except redis.RedisError as exc:
                self.guard.failed(exc)
            else:
                self.guard.succeeded()
        out = [_decode(value) if value else None for value in raw]
        found = sum(r is not None for r in out)
        self.hits += found
        self.misses += len(out) - found
        return out

    def put(self, key: str, response: LLMResponse) -> None:
        self.put_many([(key, response)])

    def put_many(self, items: Sequence[tuple[str, LLMResponse]]) -> None:
        """Store many answers at once (one script per thousand, in one pipeline: a round of a
        thousand put one by one held the job's event loop for a round trip each, 0.25 s a round
        on loopback)."""
        if self.max_entries <= 0 or not self.guard.ready():
            return
        values = []
        for key, response in items:
            if response.error is not None:
                continue  # a retry of a failed call may succeed; never replay the failure
            try:
                values.append((key, json.dumps(response.as_dict(), ensure_ascii=False)))
            except (TypeError, ValueError):
                # meta that JSON cannot hold: skip caching rather than fail the call
                log.debug("response not cacheable as JSON", exc_info=True)
        if not values:
            return
        try:
            pipe = self._redis.pipeline(transaction=False)
            for start in range(0, len(values), _CHUNK):
                chunk = values[start : start + _CHUNK]
                self._put(
                    keys=[self.lru_key, *(self.entry_prefix + k for k, _ in chunk)],
                    args=[self.ttl_s, self.max_entries, self.entry_prefix, MAX_EVICT_PER_PUT,
                          *(x for pair in chunk for x in pair)],
                    client=pipe,
                )
            evicted = pipe.execute()
        except redis.RedisError as exc:
            self.guard.failed(exc)
        else:
            self.guard.succeeded()
            self.evicted += sum(int(n) for n in evicted)

    def stats(self) -> dict[str, int]:
        """Counts of this instance (not of the shared cache)."""
        return {"hits": self.hits, "misses": self.misses, "evicted": self.evicted}

    def __len__(self) -> int:
        """Entries in the shared cache (those indexed for the size bound)."""
        return int(self._redis.zcard(self.lru_key))

    def close(self) -> None:
        self._redis.close()


def _decode(value: str) -> LLMResponse | None:
    try:
        data = json.loads(value)
        # Unknown fields (written by a newer version) are dropped rather than failing the hit.
        response = LLMResponse(**{k: v for k, v in data.items() if k in _FIELDS})
    except (ValueError, TypeError):
        log.debug("unreadable cache entry ignored", exc_info=True)
        return None
    return replace(response, cached=True, latency_s=0.0)


def make_cache(settings: Settings, max_entries: int | None = None, **options: Any) -> ResponseCache:
    """A ``RedisCache`` when ``EVO_REDIS_URL`` is set, else a ``MemoryCache`` (same bound)."""
    bound = settings.cache_entries if max_entries is None else max_entries
    if settings.redis_url:
        options = {"prefix": settings.redis_prefix, **options}
        return RedisCache(settings.redis_url, max_entries=bound, **options)
    return MemoryCache(bound)
