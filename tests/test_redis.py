"""The Redis event bus and response cache, against a real Redis server.

Each test works under a random key prefix and deletes its keys afterwards. An unreachable server
fails these tests with the reason, unless EVO_TEST_SKIP_REDIS=1 says to skip them.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace

import pytest
import redis

from evo.app.settings import Settings
from evo.events import (
    CallsMade,
    CandidateScored,
    Event,
    GenerationDone,
    InProcessBus,
    JobEnded,
    JobStarted,
)
from evo.llm import LLMResponse
from workers.cache import MemoryCache
from workers.redis_bus import RedisBus, make_bus
from workers.redis_cache import RedisCache, make_cache


@pytest.fixture
def r(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def prefix(r: redis.Redis) -> Iterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards."""
    name = f"evotest:{uuid.uuid4().hex[:12]}:"
    yield name
    keys = list(r.scan_iter(match=f"{name}*", count=1000))
    if keys:
        r.delete(*keys)


@pytest.fixture
def dead_url() -> str:
    """A Redis URL on a local port where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"redis://127.0.0.1:{port}/0"


def job_events(job: str) -> list[Event]:
    return [
        JobStarted(job, "opro", "sentiment", 100, 12),
        CandidateScored(job, "c1", 0, "seed", "dev", 0.5, 10),
        CallsMade(job, 10, 1234, 2),
        GenerationDone(job, 0, 0.5, 0.25, 4, 10, 1234),
        JobEnded(job, "done", None, "c1", {"calls": 10, "best": 0.5, "by_op": {"seed": 2}}),
    ]


def warnings_from(caplog: pytest.LogCaptureFixture, logger: str) -> list[logging.LogRecord]:
    return [x for x in caplog.records if x.name == logger and x.levelno == logging.WARNING]


# ---- event bus --------------------------------------------------------------------------------


def test_events_published_by_one_process_are_read_by_another(redis_url: str, prefix: str) -> None:
    driver = RedisBus(redis_url, prefix=prefix)
    api = RedisBus(redis_url, prefix=prefix)
    local: list[Event] = []
    driver.subscribe(local.append)
    events = job_events("job1")
    for e in events:
        driver.publish(e)
    driver.publish(CallsMade("job2", 1, 1, 0))  # another job's stream

    got = api.read("job1")
    assert local == [*events, CallsMade("job2", 1, 1, 0)]  # local delivery as InProcessBus
    assert [p for _, p in got] == [e.payload() for e in events]
    ids = [i for i, _ in got]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert len(set(ids)) == len(ids)
    assert [p["kind"] for _, p in api.read("job2")] == ["CallsMade"]
    assert api.read("no-such-job") == []
    driver.close()
    api.close()


def test_read_resumes_exactly_after_an_id(redis_url: str, prefix: str) -> None:
    bus = RedisBus(redis_url, prefix=prefix)
    events = job_events("j")
    for e in events:
        bus.publish(e)
    everything = bus.read("j")
    after_second = bus.read("j", last_id=everything[1][0])
    assert after_second == everything[2:]
    assert bus.read("j", last_id=everything[-1][0]) == []
    assert bus.read("j", count=2) == everything[:2]
    # paging by count and last id walks the whole stream once
    pages, last = [], "0"
    while page := bus.read("j", last_id=last, count=2):
        pages += page
        last = page[-1][0]
    assert pages == everything
    bus.close()


def test_blocking_read_waits_for_the_next_event(redis_url: str, prefix: str) -> None:
    reader = RedisBus(redis_url, prefix=prefix)
    writer = RedisBus(redis_url, prefix=prefix)
    writer.publish(JobStarted("j", "opro", "t", None, 0))
    last = reader.read("j")[-1][0]

    start = time.monotonic()
    assert reader.read("j", last_id=last, block_ms=100) == []
    assert time.monotonic() - start >= 0.09

    later = CallsMade("j", 3, 30, 0)
    timer = threading.Timer(0.2, writer.publish, [later])
    timer.start()
    got = reader.read("j", last_id=last, block_ms=5_000)
    timer.join()
    assert [p for _, p in got] == [later.payload()]
    reader.close()
    writer.close()


async def test_follow_yields_live_events_and_stops_after_job_ended(
    redis_url: str, prefix: str
) -> None:
    driver = RedisBus(redis_url, prefix=prefix)
    api = RedisBus(redis_url, prefix=prefix)
    old = CallsMade("j", 1, 1, 0)
    driver.publish(old)  # before the follower starts: "$" must not replay it

    stream = api.follow("j", block_ms=100)

    async def next_item() -> tuple[str, dict]:
        return await anext(stream)

    first = asyncio.create_task(next_item())
    await asyncio.sleep(0.3)  # the follower is waiting (several empty blocking reads)
    events = job_events("j")
    for e in events:
        driver.publish(e)
    driver.publish(CallsMade("j", 99, 99, 0))  # after the end: not part of this run

    async def rest() -> list[tuple[str, dict]]:
        return [item async for item in stream]

    got = [await asyncio.wait_for(first, 5), *await asyncio.wait_for(rest(), 5)]
    assert [p for _, p in got] == [e.payload() for e in events]
    stored_ids = [i for i, _ in api.read("j")]
    assert [i for i, _ in got] == stored_ids[1 : 1 + len(events)]

    # From "0" it replays the history and ends at JobEnded; from an id, it resumes after it.
    replay = [p async for _, p in api.follow("j", last_id="0")]
    assert replay == [old.payload()] + [e.payload() for e in events]
    resumed = [p async for _, p in api.follow("j", last_id=got[2][0])]
    assert resumed == [e.payload() for e in events[3:]]
    driver.close()
    api.close()


def test_stream_is_capped_and_expires(redis_url: str, prefix: str, r: redis.Redis) -> None:
    bus = RedisBus(redis_url, prefix=prefix, maxlen=50, ttl_s=3_600)
    for i in range(1_000):
        bus.publish(CallsMade("j", i, i, 0))
    key = bus.stream_key("j")
    assert key == f"{prefix}events:j"
    # approximate trimming drops whole stream nodes (100 entries by default): within one node
    assert 50 <= r.xlen(key) <= 50 + 100
    newest = bus.read("j", last_id=r.xrevrange(key, count=2)[1][0])
    assert [p["calls"] for _, p in newest] == [999]
    assert 3_500 <= r.ttl(key) <= 3_600
    bus.close()


def test_publish_survives_a_redis_outage(
    dead_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisBus(dead_url)
    local: list[Event] = []
    bus.subscribe(local.append)
    caplog.set_level(logging.INFO, logger="workers.redis_bus")
    events = job_events("j")
    start = time.monotonic()
    for e in events:
        bus.publish(e)  # must not raise
    assert time.monotonic() - start < 2
    assert local == events
    assert len(warnings_from(caplog, "workers.redis_bus")) == 1
    assert bus.guard.down
    # the cool-down elapsed: Redis is tried again, still down, and no second warning is logged
    bus.guard._retry_at = 0.0
    bus.publish(CallsMade("j", 1, 1, 0))
    assert bus.guard.failures == 2
    assert len(warnings_from(caplog, "workers.redis_bus")) == 1
    with pytest.raises(redis.ConnectionError):
        bus.read("j")  # readers are told (an API answers 503)
    bus.close()


def test_a_bus_recovers_when_redis_comes_back(
    redis_url: str, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    bus = RedisBus(redis_url, prefix=prefix)
    bus.guard.failed(redis.ConnectionError("simulated"))
    bus.publish(CallsMade("j", 1, 1, 0))  # inside the cool-down: not sent
    bus.guard._retry_at = 0.0
    bus.publish(CallsMade("j", 2, 2, 0))
    assert not bus.guard.down
    assert [p["calls"] for _, p in bus.read("j")] == [2]
    bus.close()


def test_make_bus_follows_the_settings(redis_url: str) -> None:
    plain = make_bus(Settings(redis_url=None))
    assert type(plain) is InProcessBus
    shared = make_bus(Settings(redis_url=redis_url))
    assert isinstance(shared, RedisBus)
    shared.close()


# ---- response cache ---------------------------------------------------------------------------


def response(text: str = "positive", **kw: object) -> LLMResponse:
    base = LLMResponse(
        text=text,
        model="gpt-test",
        prompt_tokens=123,
        completion_tokens=4,
        latency_s=1.25,
        label_logprobs={"positive": -0.105360515657826, "negative": -2.3025850929940455},
        meta={"finish_reason": "stop", "label_scoring": "logprobs", "nested": {"a": [1, 2.5]}},
    )
    return replace(base, **kw)


def test_cache_round_trip_is_exact(redis_url: str, prefix: str) -> None:
    cache = RedisCache(redis_url, prefix=prefix)
    original = response()
    assert cache.get("k1") is None
    cache.put("k1", original)
    hit = cache.get("k1")
    assert hit == replace(original, cached=True, latency_s=0.0)
    assert hit is not None and hit.label_logprobs == original.label_logprobs
    plain = LLMResponse(text="hello", model="m")  # no logprobs, empty meta
    cache.put("k2", plain)
    assert cache.get("k2") == replace(plain, cached=True)
    assert cache.stats() == {"hits": 2, "misses": 1, "evicted": 0}
    cache.put("k3", LLMResponse(text="x", model="m", meta={"obj": object()}))  # not JSON: skipped
    assert cache.get("k3") is None
    cache.close()


def test_many_answers_go_in_one_round_trip_and_evict_in_order(
    redis_url: str, prefix: str, r: redis.Redis
) -> None:
    cache = RedisCache(redis_url, prefix=prefix, max_entries=4)
    sent: list[object] = []  # commands the client sends on its own, outside a pipeline
    one_by_one = cache._redis.execute_command
    cache._redis.execute_command = lambda *a, **kw: sent.append(a[0]) or one_by_one(*a, **kw)
    cache.put_many([
        ("k0", response("a0")),
        ("bad", response(text="", error="HTTP 500")),  # never stored
        ("odd", LLMResponse(text="x", model="m", meta={"obj": object()})),  # not JSON: skipped
        *((f"k{i}", response(f"a{i}")) for i in range(1, 6)),
    ])
    assert sent == []  # all of it in one pipeline, not a round trip per answer
    assert cache.stats()["evicted"] == 2  # five stored on a bound of four: k0, then k1, went
    assert [cache.get(f"k{i}") is not None for i in range(6)] == [False, False, True, True, True,
                                                                  True]
    assert cache.get("bad") is None and cache.get("odd") is None
    assert cache.get("k5") == replace(response("a5"), cached=True, latency_s=0.0)
    # a round's lookups: hits renewed (TTL and last use), so k3, not k2, is next to go
    r.expire(f"{prefix}cache:k2", 10)
    assert cache.get_many(["k2", "nope", "k4"]) == [
        replace(response(f"a{i}"), cached=True, latency_s=0.0) if i else None for i in (2, 0, 4)]
    assert r.ttl(f"{prefix}cache:k2") > 10
    cache.put_many([("k6", response("a6"))])
    assert {f"k{i}" for i in range(7) if r.exists(f"{prefix}cache:k{i}")} == {"k2", "k4", "k5",
                                                                               "k6"}
    cache.close()


def test_error_responses_are_not_cached(redis_url: str, prefix: str, r: redis.Redis) -> None:
    cache = RedisCache(redis_url, prefix=prefix)
    cache.put("k", response(text="", error="timeout after 4 retries"))
    assert cache.get("k") is None
    assert list(r.scan_iter(match=f"{prefix}*")) == []
    cache.close()


def test_entries_have_a_ttl_renewed_on_use(redis_url: str, prefix: str, r: redis.Redis) -> None:
    cache = RedisCache(redis_url, prefix=prefix, ttl_s=1_000)
    cache.put("k", response())
    key = f"{prefix}cache:k"
    assert 990 <= r.ttl(key) <= 1_000
    assert RedisCache(redis_url, prefix=prefix).ttl_s == 7 * 24 * 3600  # the default
    r.expire(key, 10)
    assert cache.get("k") is not None
    assert 990 <= r.ttl(key) <= 1_000
    cache.close()


def test_size_bound_evicts_the_least_recently_used(
    redis_url: str, prefix: str, r: redis.Redis
) -> None:
    cache = RedisCache(redis_url, prefix=prefix, max_entries=5)
    for i in range(5):
        cache.put(f"k{i}", response(f"a{i}"))
    assert cache.get("k0") is not None  # used again: now the most recent
    cache.put("k5", response("a5"))
    cache.put("k6", response("a6"))
    assert len(cache) == 5
    assert cache.stats()["evicted"] == 2
    present = {k for k in (f"k{i}" for i in range(7)) if r.exists(f"{prefix}cache:{k}")}
    assert present == {"k0", "k3", "k4", "k5", "k6"}
    assert len(list(r.scan_iter(match=f"{prefix}cache:*"))) == 5 + 1  # entries + the index
    cache.close()


def test_expired_entries_leave_the_index(redis_url: str, prefix: str) -> None:
    cache = RedisCache(redis_url, prefix=prefix, ttl_s=1, max_entries=10)
    cache.put("old", response())
    time.sleep(1.1)
    assert cache.get("old") is None
    cache.put("new", response())
    assert len(cache) == 1  # an expired entry does not hold a place under the bound
    cache.close()


def test_cache_is_shared_between_processes(redis_url: str, prefix: str) -> None:
    first = RedisCache(redis_url, prefix=prefix)
    second = RedisCache(redis_url, prefix=prefix)
    other_prefix = RedisCache(redis_url, prefix=prefix + "other:")
    first.put("k", response())
    assert second.get("k") == replace(response(), cached=True, latency_s=0.0)
    assert other_prefix.get("k") is None
    assert second.get_many(["k", "missing", "k"]) == [second.get("k"), None, second.get("k")]
    assert first.stats() == {"hits": 0, "misses": 0, "evicted": 0}  # counted per instance
    assert second.stats()["hits"] == 5 and second.stats()["misses"] == 1
    for c in (first, second, other_prefix):
        c.close()


def test_cache_survives_a_redis_outage(dead_url: str, caplog: pytest.LogCaptureFixture) -> None:
    cache = RedisCache(dead_url)
    caplog.set_level(logging.INFO, logger="workers.redis_cache")
    cache.put("k", response())  # no-op, no exception
    assert cache.get("k") is None
    assert cache.get_many(["a", "b"]) == [None, None]
    cache.guard._retry_at = 0.0  # after the cool-down Redis is tried again: still one warning
    assert cache.get("k") is None
    assert len(warnings_from(caplog, "workers.redis_cache")) == 1
    assert cache.stats() == {"hits": 0, "misses": 4, "evicted": 0}
    cache.close()


def test_make_cache_follows_the_settings(redis_url: str) -> None:
    memory = make_cache(Settings(redis_url=None), 10)
    assert isinstance(memory, MemoryCache) and memory.max_entries == 10
    shared = make_cache(Settings(redis_url=redis_url), 10)
    assert isinstance(shared, RedisCache) and shared.max_entries == 10
    assert make_cache(Settings(redis_url=None, cache_entries=7)).max_entries == 7
    shared.close()
