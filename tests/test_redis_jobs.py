"""Jobs with Redis configured: the cache is shared across jobs and processes, events can be read
by another process, and rate limits hold across clients of one endpoint."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from servers import Reply, ScriptedOpenAIServer, chat_reply

from evo.app.settings import Settings
from evo.events import JobEnded
from evo.spec import ModelSpec
from storage import Store
from workers.llm import make_client
from workers.redis_bus import RedisBus
from workers.runner import optimize

pytestmark = pytest.mark.usefixtures("redis_url")

SPEC = {"task": "topic", "models": {"task": {"provider": "scripted"}},
        "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1,
                      "dev_subset": 8},
        "evaluation": {"top_k": 1}, "budget": {"calls": 5000}}


@pytest.fixture
def settings(tmp_path, redis_url: str):
    prefix = f"evotest:{uuid.uuid4().hex[:8]}:"
    yield Settings(database_url=f"sqlite:///{tmp_path / 'r.db'}", executor="inprocess",
                   redis_url=redis_url, redis_prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)


def test_second_identical_job_is_answered_from_the_shared_cache(settings: Settings) -> None:
    first = optimize(SPEC, settings=settings)
    second = optimize(SPEC, settings=settings)
    assert first.stats["calls"] > 0
    assert second.stats["calls"] == 0  # every request was paid by the first job
    assert second.best.dev == first.best.dev and second.best.test == first.best.test
    with Store(settings.database_url) as store:
        calls = store.llm_calls(second.job_id)
    assert calls and all(c.cached for c in calls)


def test_events_can_be_read_by_another_process(settings: Settings) -> None:
    result = optimize(SPEC, settings=settings)
    reader = RedisBus(settings.redis_url, prefix=settings.redis_prefix)
    events = reader.read(result.job_id, "0", count=10_000)
    kinds = [payload["kind"] for _, payload in events]
    assert kinds[0] == "JobStarted" and kinds[-1] == JobEnded.__name__
    assert kinds.count("GenerationDone") == 2
    reader.close()


def test_rate_limit_holds_across_clients_of_one_endpoint(settings: Settings) -> None:
    """Two clients (as in two actors) of one endpoint at 600 requests/min: 10 calls ≥ 0.9 s."""
    import asyncio

    from evo.llm import LLMRequest, Message

    with ScriptedOpenAIServer([Reply(body=chat_reply("ok"))]) as server:
        spec = ModelSpec(provider="openai", model="m", base_url=server.base_url, rpm=600)
        clients = [make_client(spec, settings) for _ in range(2)]
        request = LLMRequest((Message("user", "hi"),), max_tokens=4)

        async def burst() -> None:
            await asyncio.gather(*(clients[i % 2].call(request) for i in range(10)))

        start = time.monotonic()
        asyncio.run(burst())
        elapsed = time.monotonic() - start
        assert len(server.received) == 10
    assert elapsed >= 0.85  # 10 requests paced at one per 0.1 s
