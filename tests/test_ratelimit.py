"""Rate limits shared by processes through Redis (a real server), and the in-process limiter.

Timings are kept short (rpm=600: a request every 0.1 s). Each Redis test uses a random key prefix
and deletes its keys; an unreachable server fails them unless EVO_TEST_SKIP_REDIS=1.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis

from evo.app.settings import Settings
from workers.ratelimit import (
    Limiter,
    LocalRateLimiter,
    RateLimiter,
    endpoint_key,
    make_rate_limiter,
)

# How far a measured time may stray from the schedule: event-loop wake-ups on a busy machine.
SLACK_S = 0.06


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"evotest:{uuid.uuid4().hex[:12]}:"
    yield name
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{name}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
async def limiters(redis_url: str, prefix: str) -> AsyncIterator[Callable[..., RateLimiter]]:
    """Builds Redis limiters (each with its own connection, like separate processes)."""
    made: list[RateLimiter] = []

    def make(rpm: int | None = None, tpm: int | None = None, key: str = "api|m") -> RateLimiter:
        limiter = RateLimiter(redis_url, key, rpm=rpm, tpm=tpm, prefix=prefix)
        made.append(limiter)
        return limiter

    yield make
    for limiter in made:
        await limiter.aclose()


async def admit_all(group: list[Limiter], n: int, tokens: int = 1) -> list[float]:
    """``n`` concurrent acquires spread over ``group``: the times they were let through."""
    times: list[float] = []

    async def one(limiter: Limiter) -> None:
        await limiter.acquire(tokens)
        times.append(time.monotonic())

    await asyncio.gather(*(one(group[i % len(group)]) for i in range(n)))
    return sorted(times)


def assert_paced(times: list[float], interval_s: float) -> None:
    """No window admitted more than the limit: k+1 admissions span at least k intervals."""
    for i in range(len(times)):
        for j in range(i + 1, len(times)):
            assert times[j] - times[i] >= (j - i) * interval_s - SLACK_S, (i, j, times)


async def test_processes_share_one_request_limit(limiters: Callable[..., RateLimiter]) -> None:
    group: list[Limiter] = [limiters(rpm=600) for _ in range(3)]
    start = time.monotonic()
    times = await admit_all(group, 20)
    elapsed = time.monotonic() - start
    assert 1.9 - SLACK_S <= elapsed < 3.0
    assert times[0] - start < 0.2  # the first call does not wait
    assert_paced(times, 0.1)
    # a one-second window never holds more than rpm/60 = 10 admissions (+1 for its edge)
    assert max(sum(t <= s < t + 1.0 for s in times) for t in times) <= 11


async def test_local_limiter_paces_the_same_way() -> None:
    shared = LocalRateLimiter(rpm=600)
    start = time.monotonic()
    times = await admit_all([shared, shared, shared], 20)
    assert 1.9 - SLACK_S <= time.monotonic() - start < 3.0
    assert_paced(times, 0.1)


async def test_separate_keys_have_separate_limits(limiters: Callable[..., RateLimiter]) -> None:
    a, b = limiters(rpm=60, key="one"), limiters(rpm=60, key="two")
    start = time.monotonic()
    await a.acquire(1)
    await b.acquire(1)
    assert time.monotonic() - start < 0.3  # a second call on "one" would wait a full second


async def check_tokens_settle(limiter: Limiter) -> None:
    """tpm=6000: 100 tokens a second, so each token of debt delays the next call by 10 ms."""
    start = time.monotonic()
    await limiter.acquire(100)  # nothing owed: at once, then 1 s of debt
    assert time.monotonic() - start < 0.1
    await limiter.settle(100, 20)  # it used 20: the debt shrinks to 0.2 s
    await limiter.acquire(1)
    assert 0.2 - SLACK_S <= time.monotonic() - start < 0.2 + 0.25
    await limiter.settle(1, 51)  # it used 51: 0.5 s more to pay
    await limiter.acquire(1)
    assert 0.71 - SLACK_S <= time.monotonic() - start < 0.71 + 0.25


async def test_token_limit_with_settle(limiters: Callable[..., RateLimiter]) -> None:
    await check_tokens_settle(limiters(tpm=6_000))


async def test_local_token_limit_with_settle() -> None:
    await check_tokens_settle(LocalRateLimiter(tpm=6_000))


async def test_token_budget_is_shared(limiters: Callable[..., RateLimiter]) -> None:
    a, b = limiters(tpm=6_000), limiters(tpm=6_000)
    start = time.monotonic()
    await a.acquire(30)
    await b.acquire(30)  # waits for a's 0.3 s of debt
    assert 0.3 - SLACK_S <= time.monotonic() - start < 0.3 + 0.25


async def check_cancel_gives_back(limiter: Limiter) -> None:
    """rpm=120: a slot every 0.5 s. A waiter cancelled before its slot frees it."""
    start = time.monotonic()
    await limiter.acquire(0)
    waiter = asyncio.create_task(limiter.acquire(0))
    await asyncio.sleep(0.05)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    await limiter.acquire(0)  # takes the freed slot at 0.5 s, not the next one at 1.0 s
    assert 0.5 - SLACK_S <= time.monotonic() - start < 0.8


async def test_cancelled_waiter_gives_its_slot_back(limiters: Callable[..., RateLimiter]) -> None:
    await check_cancel_gives_back(limiters(rpm=120))


async def test_local_cancelled_waiter_gives_its_slot_back() -> None:
    await check_cancel_gives_back(LocalRateLimiter(rpm=120))


async def test_redis_outage_falls_back_to_local_pacing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    limiter = RateLimiter(f"redis://127.0.0.1:{port}/0", "api|m", rpm=600, tpm=60_000)
    caplog.set_level(logging.INFO, logger="workers.ratelimit")
    start = time.monotonic()
    times = await admit_all([limiter], 6, tokens=10)
    await limiter.settle(10, 20)
    assert 0.5 - SLACK_S <= time.monotonic() - start < 2.0
    assert_paced(times, 0.1)
    warnings = [x for x in caplog.records if x.levelno == logging.WARNING]
    assert len(warnings) == 1 and "rate limits" in warnings[0].getMessage()
    await limiter.aclose()


def test_factory_and_keys(redis_url: str) -> None:
    local = Settings(redis_url=None)
    assert make_rate_limiter(local, "k", None, None) is None
    one = make_rate_limiter(local, "k", 60, None)
    assert isinstance(one, LocalRateLimiter)
    assert make_rate_limiter(local, "k", 60, None) is one  # the clients of a pool share it
    assert make_rate_limiter(local, "other", 60, None) is not one
    shared = make_rate_limiter(Settings(redis_url=redis_url), "k", None, 10_000)
    assert isinstance(shared, RateLimiter) and shared.tpm == 10_000 and shared.rpm is None
    with pytest.raises(ValueError, match="rpm"):
        LocalRateLimiter(rpm=0)
    key = endpoint_key("https://api.example.com/v1/", "gpt-x", "sk-secret-value")
    assert key.startswith("https://api.example.com/v1|gpt-x|") and "secret" not in key
    assert key != endpoint_key("https://api.example.com/v1", "gpt-x", "sk-other")
    assert endpoint_key("http://h/v1", "m") == "http://h/v1|m"
