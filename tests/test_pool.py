"""The pool keeps one prompt's requests on one worker, and lets idle workers steal work."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from evo.llm import LLMRequest, LLMResponse, Message
from workers.pool import Pool


class RecordingWorker:
    def __init__(self, name: str, delay: float = 0.0) -> None:
        self.name = name
        self.delay = delay
        self.batches: list[list[LLMRequest]] = []

    async def call_batch(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        self.batches.append(requests)
        await asyncio.sleep(self.delay)
        return [LLMResponse(f"{self.name}:{r.messages[-1].content}", "m") for r in requests]


def req(prompt: str, example: int) -> LLMRequest:
    """An evaluation request, grouped by its candidate prompt as tasks make them."""
    return LLMRequest((Message("user", f"{prompt}\n\nInput: example {example}"),), group=prompt)


def meta(prompt: str, sample: int) -> LLMRequest:
    """A meta-prompt sample: no group, no labels."""
    return LLMRequest((Message("user", prompt),), temperature=0.8, sample=sample)


async def test_answers_come_back_in_request_order() -> None:
    workers = [RecordingWorker("a"), RecordingWorker("b")]
    pool = Pool(workers, model="m", batch_size=3)
    requests = [req(f"prompt {p}", e) for p in range(4) for e in range(5)]
    answers = await pool.call_many(requests)
    assert [a.text.split(":", 1)[1] for a in answers] == [r.messages[-1].content for r in requests]


async def test_one_prompt_stays_on_one_worker_when_balanced() -> None:
    workers = [RecordingWorker("a", 0.01), RecordingWorker("b", 0.01)]
    pool = Pool(workers, model="m", batch_size=100)
    requests = [req(f"prompt {p}", e) for p in range(6) for e in range(4)]
    await pool.call_many(requests)
    for w in workers:
        for batch in w.batches:  # a batch never mixes prompts, so the prefix is reused within it
            assert len({r.affinity_key() for r in batch}) == 1


async def test_meta_prompt_samples_are_shared_evenly_whatever_their_prompts() -> None:
    # a local model samples a batch side by side, so samples of many meta-prompts go out in one
    # even share per worker instead of one batch per prompt on its home worker
    workers = [RecordingWorker("a", 0.01), RecordingWorker("b", 0.01)]
    pool = Pool(workers, model="m", batch_size=16)
    requests = [meta(f"write a prompt like {p}", 0) for p in range(10)]
    requests += [req("the candidate", e) for e in range(4)]
    answers = await pool.call_many(requests)
    assert [a.text.split(":", 1)[1] for a in answers] == [r.messages[-1].content for r in requests]
    drawn = [[r for r in b if r.group is None] for w in workers for b in w.batches]
    assert sorted(len(b) for b in drawn if b) == [5, 5]
    assert all(not b or len(b) == len(batch) for b, batch in
               zip(drawn, [b for w in workers for b in w.batches], strict=True))  # never mixed


async def test_idle_worker_steals_from_a_busy_one() -> None:
    workers = [RecordingWorker("a", 0.02), RecordingWorker("b", 0.02)]
    pool = Pool(workers, model="m", batch_size=2)
    requests = [req("the only prompt", e) for e in range(12)]  # one key: one home worker
    await pool.call_many(requests)
    assert all(w.batches for w in workers)  # both worked
    assert sum(len(b) for w in workers for b in w.batches) == 12


class FailingWorker(RecordingWorker):
    async def call_batch(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        self.batches.append(requests)
        raise ConnectionError("actor died")


async def test_a_failed_worker_leaves_and_its_work_is_redone() -> None:
    workers = [FailingWorker("a"), RecordingWorker("b", 0.001)]
    pool = Pool(workers, model="m", batch_size=2, labels=["node-a", "node-b"])
    requests = [req(f"prompt {p}", e) for p in range(5) for e in range(4)]
    answers = await pool.call_many(requests)
    assert all(a.text.startswith("b:") for a in answers)
    assert pool.dead == {0} and "actor died" in pool.last_error
    assert pool.served == {"node-b": 20}
    again = await pool.call_many(requests[:3])  # the dead worker gets no more work
    assert len(workers[0].batches) == 1 and len(again) == 3


async def test_no_worker_left_is_an_error() -> None:
    import pytest

    from workers.pool import PoolExhausted

    pool = Pool([FailingWorker("a"), FailingWorker("b")], model="m")
    with pytest.raises(PoolExhausted, match="actor died"):
        await pool.call_many([req("p", 1)])


async def test_a_remote_pool_fills_its_batches_whatever_the_prompts() -> None:
    workers = [RecordingWorker("a"), RecordingWorker("b")]
    pool = Pool(workers, model="m", batch_size=4, affinity=False)
    requests = [req(f"prompt {p}", e) for p in range(10) for e in range(1)]  # all different
    answers = await pool.call_many(requests)
    assert [a.text.split(":", 1)[1] for a in answers] == [r.messages[-1].content for r in requests]
    sizes = sorted(len(b) for w in workers for b in w.batches)
    assert sizes == [2, 4, 4] and all(w.batches for w in workers)


def test_one_prompts_evaluation_requests_share_an_affinity_key_not_a_cache_key() -> None:
    from evo.task import load_task

    task = load_task("topic")
    dev = task.split("dev")
    a = [task.request("Classify it.", ex, label_scoring=True) for ex in dev[:5]]
    b = task.request("Name the topic.", dev[0], label_scoring=True)
    assert len({r.affinity_key() for r in a}) == 1  # short prompt: inputs differ early on
    assert b.affinity_key() != a[0].affinity_key()
    assert len({r.cache_key("m") for r in a}) == 5
    # the scheduling hint is no part of what was asked
    assert replace(a[0], group=None).cache_key("m") == a[0].cache_key("m")


def test_cache_keys_are_stable_across_versions() -> None:
    """Stored responses and shared caches are found by these keys: they must never drift."""
    a = LLMRequest(
        (Message("system", "Be brief."), Message("user", 'Review: fine — "ok"\nLabel:')),
        labels=("positive", "negative"), group="g", seed=5,
    )
    b = LLMRequest((Message("user", "Rewrite <p>x</p>"),), max_tokens=64, temperature=0.7,
                   stop=("</p>",), prefill="<p>", sample=3)
    assert a.cache_key("m1") == "98914a039b53f7460edf4530aa37d25c6dfd88fd24b4f966e38a841aa24d2e25"
    assert b.cache_key("scripted") == (
        "a41f91308e43781625cb738a57f3c8709791e6d41c6e71ab57a57b7ef50c867c"
    )
    assert a.cache_key("m1") == replace(a, seed=9).cache_key("m1")  # asked again: same key
    assert a.cache_key("m2") != a.cache_key("m1")  # the model is part of it
    assert replace(a, sample=1).cache_key("m1") != a.cache_key("m1")
