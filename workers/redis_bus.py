"""Job events on Redis streams, so that a process other than the driver can serve them live.

``RedisBus`` is an ``InProcessBus`` that also appends every event to the job's stream
``{prefix}events:{job_id}`` (default prefix ``evo:``). The stream is capped (``XADD MAXLEN ~``) and
expires ``ttl_s`` after its last event, so finished jobs do not pile up in Redis. Any process can
then ``read`` the events after an id (resumable like SSE's ``Last-Event-ID``) or ``follow`` them as
they arrive until the job ends.

Publishing never raises into the driver: when Redis is down the event still reaches the local
subscribers, one warning is logged, and Redis is tried again after a short cool-down.

Also here: ``RedisGuard`` (that outage policy, shared with the cache and the rate limiter) and
``make_bus``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import redis
import redis.asyncio as aioredis

from evo.app.settings import Settings
from evo.events import Event, InProcessBus, JobEnded

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "evo:"
STREAM_MAXLEN = 10_000
STREAM_TTL_S = 7 * 24 * 3600
# Short network timeouts: a dead Redis must cost the driver milliseconds, not a hung job.
CONNECT_TIMEOUT_S = 2.0
SOCKET_TIMEOUT_S = 5.0


def sync_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=SOCKET_TIMEOUT_S,
    )


def async_client(url: str, *, socket_timeout: float | None = SOCKET_TIMEOUT_S) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=socket_timeout,
    )


class RedisGuard:
    """Tells whether to try Redis now, and logs an outage once rather than on every call.

    After a failure Redis is skipped for ``cooldown_s`` (doubling up to ``max_cooldown_s`` while
    it stays down), so a job keeps its pace instead of paying a connect timeout per call.
    """

    def __init__(
        self,
        what: str,
        logger: logging.Logger,
        cooldown_s: float = 1.0,
        max_cooldown_s: float = 30.0,
    ) -> None:
        self.what = what
        self.log = logger
        self.base_cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self.cooldown_s = cooldown_s
        self.down = False
        self.failures = 0
        self._retry_at = 0.0
        self._lock = threading.Lock()  # Ray async actors may call from more than one thread

    def ready(self) -> bool:
        return not self.down or time.monotonic() >= self._retry_at

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self.failures += 1
            if not self.down:
                self.log.warning(
                    "Redis unavailable for %s (%s: %s); carrying on without it",
                    self.what,
                    type(exc).__name__,
                    exc,
                )
                self.cooldown_s = self.base_cooldown_s
            else:
                self.cooldown_s = min(self.cooldown_s * 2, self.max_cooldown_s)
            self.down = True
            self._retry_at = time.monotonic() + self.cooldown_s

    def succeeded(self) -> None:
        if self.down:
            with self._lock:
                self.down = False
                self.log.info("Redis reachable again for %s", self.what)


class RedisBus(InProcessBus):
    """Local delivery as ``InProcessBus``, plus a per-job Redis stream readable by any process."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        maxlen: int = STREAM_MAXLEN,
        ttl_s: int = STREAM_TTL_S,
    ) -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self.maxlen = maxlen
        self.ttl_s = ttl_s
        self._redis = sync_client(url)
        self._reader: redis.Redis | None = None
        self.guard = RedisGuard("job events", log)

    def stream_key(self, job_id: str) -> str:
        return f"{self.prefix}events:{job_id}"

    # -- writing (the driver) ---------------------------------------------------------------

    def publish(self, event: Event) -> None:
        super().publish(event)  # local subscribers (store writer, progress) first, whatever happens
        if not self.guard.ready():
            return
        key = self.stream_key(event.job_id)
        fields = {"kind": event.kind, "data": json.dumps(event.payload(), default=str)}
        try:
            pipe = self._redis.pipeline(transaction=False)  # one round trip for both commands
            pipe.xadd(key, fields, maxlen=self.maxlen, approximate=True)
            pipe.expire(key, self.ttl_s)
            pipe.execute()
        except redis.RedisError as exc:
            self.guard.failed(exc)
        else:
            self.guard.succeeded()

    # -- reading (any process) --------------------------------------------------------------

    def read(
        self, job_id: str, last_id: str = "0", block_ms: int | None = None, count: int = 100
    ) -> list[tuple[str, dict[str, Any]]]:
        """Up to ``count`` events after ``last_id`` ("0": from the start), oldest first.

        With ``block_ms`` it waits that long for the first one when none is there yet (0: for
        ever). Redis errors propagate (``redis.RedisError``): a reader can answer 503 and the
        client retry.
        """
        client = self._redis if block_ms is None else self._blocking_client()
        reply = client.xread({self.stream_key(job_id): last_id}, count=count, block=block_ms)
        return _entries(reply)

    async def follow(
        self, job_id: str, last_id: str = "$", block_ms: int = 5_000
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """Yield ``(id, payload)`` as events arrive after ``last_id`` ("$": only new ones), ending
        after the job's ``JobEnded`` event."""
        client = async_client(self.url, socket_timeout=block_ms / 1000 + SOCKET_TIMEOUT_S)
        key = self.stream_key(job_id)
        try:
            if last_id == "$":
                # Pin "$" to a concrete id once: re-sending "$" after an empty wait would skip
                # whatever was added between two reads.
                last = await client.xrevrange(key, count=1)
                last_id = last[0][0] if last else "0-0"
            while True:
                reply = await client.xread({key: last_id}, count=100, block=block_ms)
                for entry_id, payload in _entries(reply):
                    last_id = entry_id
                    yield entry_id, payload
                    if payload.get("kind") == JobEnded.__name__:
                        return
        finally:
            await client.aclose()

    def _blocking_client(self) -> redis.Redis:
        # The main client's socket timeout would cut a long block short; the server ends a
        # blocking read by itself after block_ms, so this one has none.
        if self._reader is None:
            self._reader = redis.Redis.from_url(
                self.url, decode_responses=True, socket_connect_timeout=CONNECT_TIMEOUT_S
            )
        return self._reader

    def close(self) -> None:
        self._redis.close()
        if self._reader is not None:
            self._reader.close()


def _entries(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    # RESP2 answers [[stream, entries]]; RESP3 (a "?protocol=3" URL) {stream: [entries]}.
    streams = reply.items() if isinstance(reply, dict) else (reply or [])
    for _stream, entries in streams:
        if entries and isinstance(entries[0], list):
            entries = entries[0]
        for entry_id, fields in entries:
            out.append((entry_id, json.loads(fields["data"])))
    return out


def make_bus(settings: Settings, **options: Any) -> InProcessBus:
    """A ``RedisBus`` when ``EVO_REDIS_URL`` is set, else an ``InProcessBus``."""
    if settings.redis_url:
        return RedisBus(settings.redis_url, **{"prefix": settings.redis_prefix, **options})
    return InProcessBus()
