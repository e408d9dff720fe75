"""Batched decoding on the real bundled model: a request gets the same answer alone or in a
batch (label scores, parallel samples), and the rules that keep it so."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from evo.llm import LLMRequest, Message
from evo.task import load_task
from workers.llm_local import LocalLlamaClient
from workers.llm_local_streams import _pieces, rounds, shared_prefix
from workers.sampling import Sampler

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def alone() -> Iterator[LocalLlamaClient]:
    c = LocalLlamaClient(threads=1, parallel=1)
    yield c
    c.close()


@pytest.fixture(scope="module")
def batched() -> Iterator[LocalLlamaClient]:
    c = LocalLlamaClient(threads=1, parallel=8)
    yield c
    c.close()


def topic_requests() -> list[LLMRequest]:
    task = load_task("topic")
    dev = task.split("dev")
    short = [task.request(p, ex, label_scoring=True)
             for p in task.seed_prompts[:2] for ex in dev[:9]]
    # one prompt long enough to cross the KV cache's 256-cell blocks, beside short ones
    story = " ".join(f"Paragraph {i}: the council met again about the budget." for i in range(30))
    long = [task.request(task.seed_prompts[0], replace(ex, input=story + " " + ex.input),
                         label_scoring=True) for ex in dev[9:11]]
    return short[:5] + long + short[5:]


def test_label_scores_in_a_batch_equal_scores_alone(
    alone: LocalLlamaClient, batched: LocalLlamaClient
) -> None:
    requests = topic_requests()
    one_by_one = [alone.call_sync(r) for r in reversed(requests)][::-1]  # other cache history
    together = batched.call_batch_sync(requests)
    assert any(r.prompt_tokens > 300 for r in together)
    assert [r.text for r in together] == [r.text for r in one_by_one]
    for a, b in zip(one_by_one, together, strict=True):
        assert a.error is None and b.error is None
        assert a.label_logprobs is not None and b.label_logprobs is not None
        for label, value in a.label_logprobs.items():
            assert b.label_logprobs[label] == pytest.approx(value, abs=1e-3)
    # the prompts' shared start was decoded once per batch of 8 and reused by the others
    assert sum(r.meta["prefix_reused"] > 20 for r in together) >= len(requests) - 3


def samples(n: int, temperature: float = 0.8) -> list[LLMRequest]:
    ask = Message("user", "Write one instruction that tells a reader how to sort news by topic.")
    return [LLMRequest(messages=(ask,), max_tokens=24, temperature=temperature, sample=i,
                       prefill="Instruction:", stop=("\n\n",)) for i in range(n)]


def test_parallel_samples_equal_samples_drawn_one_by_one(
    alone: LocalLlamaClient, batched: LocalLlamaClient
) -> None:
    requests = samples(8)
    one_by_one = [alone.call_sync(r) for r in requests]
    together = batched.call_batch_sync(requests)
    assert [r.text for r in together] == [r.text for r in one_by_one]
    assert [r.completion_tokens for r in together] == [r.completion_tokens for r in one_by_one]
    assert [r.meta["finish_reason"] for r in together] == [
        r.meta["finish_reason"] for r in one_by_one]
    assert len({r.text for r in together}) > 4  # seeded per sample: the samples differ
    # in any other company, too: a different batch, mixed with label requests
    mixed = batched.call_batch_sync([*topic_requests()[:3], requests[5], requests[2]])
    assert [mixed[3].text, mixed[4].text] == [one_by_one[5].text, one_by_one[2].text]


def test_greedy_generation_is_the_same_alone_and_together(
    alone: LocalLlamaClient, batched: LocalLlamaClient
) -> None:
    requests = samples(3, temperature=0.0)
    texts = [r.text for r in batched.call_batch_sync(requests)]
    assert len(set(texts)) == 1 and texts[0].strip()
    assert alone.call_sync(requests[0]).text == texts[0]


def test_a_prompt_too_long_fails_alone_not_its_batch(batched: LocalLlamaClient) -> None:
    long = LLMRequest(messages=(Message("user", "word " * 3000),), labels=("a", "b"))
    out = batched.call_batch_sync([*topic_requests()[:2], long])
    assert out[2].error is not None and "n_ctx" in out[2].error
    assert out[0].error is None and out[1].error is None


def test_rounds_give_equal_pieces_and_never_leave_one_token() -> None:
    for lengths in ([27, 31, 21, 25, 23, 21, 24, 28], [3, 2], [5, 6], [2, 3, 4, 0, 9],
                    [130, 2, 7], [4, 4, 4]):
        plan = rounds(lengths, cap=5)
        assert [sum(col) for col in zip(*plan, strict=True)] == lengths
        for step in plan:
            assert len({t for t in step if t}) == 1  # one count per round
            assert all(t == 0 or t >= 2 for t in step) and max(step) <= 5
        for i, n in enumerate(lengths):  # what is left is never a single token
            left = n
            for step in plan:
                left -= step[i]
                assert left != 1
    with pytest.raises(ValueError):
        rounds([1, 4])


def test_shared_prefix_leaves_each_prompt_two_tokens_of_its_own() -> None:
    assert shared_prefix([[1, 2, 3, 4, 5], [1, 2, 3, 9, 9]]) == 3
    assert shared_prefix([[1, 2, 3, 4], [1, 2, 3, 4, 5, 6]]) == 2
    assert shared_prefix([[1, 2, 3, 4, 5]]) == 3
    assert shared_prefix([[1, 2, 3], [1, 2, 3]]) == 0  # one token of prefix is none at all


def test_pieces_never_end_with_a_single_token() -> None:
    assert [len(b) for b in _pieces(list(range(65)), 32)] == [32, 31, 2]
    assert [len(b) for b in _pieces(list(range(64)), 32)] == [32, 32]


def test_sampler_is_seeded_and_greedy_at_zero() -> None:
    import numpy as np

    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05, 1e-6], dtype=np.float32))
    assert Sampler(0.0, 1)(logits) == 0
    draws = [Sampler(1.0, seed)(logits) for seed in range(200)]
    assert draws == [Sampler(1.0, seed)(logits) for seed in range(200)]
    assert set(draws) <= {0, 1, 2, 3} and len(set(draws)) >= 3  # min-p drops the 1e-6 token
