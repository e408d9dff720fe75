"""Soft prefixes on the real bundled model: a prompt whose instruction is fed as the rows of the
token-embedding matrix scores exactly as the same prompt fed as tokens, a soft prefix is decoded
once for many examples, and it does change the scores."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pytest

from evo.llm import LLMRequest, label_scores
from evo.soft_prompt import SoftPrompt
from evo.task import Task, load_task
from workers.gguf_embeddings import embedding_stats, token_embeddings
from workers.llm_local import LocalLlamaClient, log_softmax

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def client() -> Iterator[LocalLlamaClient]:
    c = LocalLlamaClient(threads=1, parallel=3)
    yield c
    c.close()


def topic_requests(n: int) -> tuple[str, list[LLMRequest]]:
    task = load_task("topic")
    instruction = task.seed_prompts[0]
    return instruction, [task.request(instruction, ex, label_scoring=True)
                         for ex in task.split("dev")[:n]]


def split(client: LocalLlamaClient, request: LLMRequest, instruction: str) -> tuple[int, int]:
    """Where the instruction's tokens start and end in the request's prompt tokens."""
    text = client.format_prompt(request)
    at = text.index(instruction)
    head = client._llm.tokenize(text[:at].encode(), add_bos=False, special=True)
    middle = client._llm.tokenize(instruction.encode(), add_bos=False, special=False)
    tokens = client._prompt_tokens(request)
    assert tokens[: len(head) + len(middle)] == head + middle  # the cut falls between tokens
    return len(head), len(head) + len(middle)


def labels(client: LocalLlamaClient, request: LLMRequest, logits: np.ndarray) -> dict[str, float]:
    return label_scores(request.labels, client.top_logprobs(log_softmax(logits)))


def test_embedding_matrix(client: LocalLlamaClient) -> None:
    matrix = token_embeddings(client.model_path)
    assert matrix.dtype == np.float32
    assert matrix.shape == (client._llm.n_vocab(), client._llm.n_embd())
    assert token_embeddings(client.model_path) is matrix  # read once
    mean, std = embedding_stats(client.model_path)
    assert mean.shape == std.shape == (matrix.shape[1],)
    assert np.all(std > 0) and np.all(np.isfinite(mean))


def test_instruction_as_embeddings_scores_as_tokens(client: LocalLlamaClient) -> None:
    instruction, requests = topic_requests(3)
    plain = client.call_batch_sync(requests)
    tokens = [client._prompt_tokens(r) for r in requests]
    h, m = split(client, requests[0], instruction)
    soft = token_embeddings(client.model_path)[tokens[0][h:m]]
    with client._lock:
        found = client._streams.score_soft(tokens[0][:h], soft, [t[m:] for t in tokens])
    for request, response, logits in zip(requests, plain, found, strict=True):
        assert response.label_logprobs is not None
        got = labels(client, request, logits)
        assert got.keys() == response.label_logprobs.keys()
        for label, value in response.label_logprobs.items():
            assert got[label] == pytest.approx(value, abs=1e-3)
    # measured: bit-identical (llama.cpp's lookup of the Q8_0 rows dequantizes like gguf's)
    again = client.next_logprobs(requests)
    for a, logits in zip(again, found, strict=True):
        assert np.array_equal(a, log_softmax(logits))
    # stream 0 held a soft part: the text prompts did not reuse it, and still score the same
    assert [r.label_logprobs for r in client.call_batch_sync(requests)] == [
        r.label_logprobs for r in plain]


def test_tails_together_equal_tails_alone(client: LocalLlamaClient) -> None:
    instruction, requests = topic_requests(5)  # more tails than streams: two rounds of copies
    tokens = [client._prompt_tokens(r) for r in requests]
    h, m = split(client, requests[0], instruction)
    rng = np.random.default_rng(0)
    mean, std = embedding_stats(client.model_path)
    soft = (mean + std * rng.standard_normal((5, mean.size))).astype(np.float32)
    head, tails = tokens[0][:h], [t[m:] for t in tokens]
    with client._lock:
        together = client._streams.score_soft(head, soft, tails)
        alone = [client._streams.score_soft(head, soft, [t])[0] for t in reversed(tails)][::-1]
    for a, b in zip(alone, together, strict=True):
        assert np.array_equal(a, b)


def test_a_random_soft_part_changes_the_scores(client: LocalLlamaClient) -> None:
    instruction, requests = topic_requests(2)
    tokens = [client._prompt_tokens(r) for r in requests]
    h, m = split(client, requests[0], instruction)
    head, tails = tokens[0][:h], [t[m:] for t in tokens]
    mean, std = embedding_stats(client.model_path)
    rng = np.random.default_rng(1)
    real = token_embeddings(client.model_path)[tokens[0][h:m]]
    noise = (mean + std * rng.standard_normal(real.shape)).astype(np.float32)
    with client._lock:
        base = client._streams.score_soft(head, real, tails)
        moved = client._streams.score_soft(head, noise, tails)
    for request, a, b in zip(requests, base, moved, strict=True):
        la, lb = labels(client, request, a), labels(client, request, b)
        assert max(abs(la[k] - lb[k]) for k in la) > 0.05


def test_soft_prefix_shapes_are_checked(client: LocalLlamaClient) -> None:
    n_embd = client._llm.n_embd()
    one = np.zeros((1, n_embd), np.float32)
    two = np.zeros((2, n_embd), np.float32)
    with pytest.raises(ValueError):
        client._streams.score_soft([1, 2], one, [[3, 4]])  # a soft part of one vector
    with pytest.raises(ValueError):
        client._streams.score_soft([1, 2], np.zeros((2, n_embd + 1), np.float32), [[3, 4]])
    with pytest.raises(ValueError):
        client._streams.score_soft([1], two, [[3, 4]])  # a head of one token
    with pytest.raises(ValueError):
        client._streams.score_soft([1, 2], two, [[3]])  # a tail of one token


@pytest.mark.parametrize("name", ["sentiment", "topic"])
def test_a_soft_prompt_at_its_start_scores_as_its_seed_prompt(
    client: LocalLlamaClient, name: str
) -> None:
    """Through the request path a job uses: at z = 0 a soft prompt initialized from a seed
    prompt is that prompt's own token embeddings, and scores as the prompt does as text."""
    task = load_task(name)
    assert isinstance(task, Task)
    prompt = task.seed_prompts[0]
    examples = task.split("dev")[:4]
    start = SoftPrompt(z=(0.0,) * 6, seed=3, n_tokens=2, sigma=1.0, init="seed_prompt",
                       init_text=prompt)
    text = client.call_batch_sync([task.request(prompt, ex, label_scoring=True)
                                   for ex in examples])
    soft = client.call_batch_sync([task.request("", ex, label_scoring=True, soft=start)
                                   for ex in examples])
    for a, b in zip(text, soft, strict=True):
        assert a.label_logprobs is not None and b.label_logprobs is not None and b.error is None
        for label, value in a.label_logprobs.items():
            assert b.label_logprobs[label] == pytest.approx(value, abs=1e-3)
    moved = dataclasses.replace(start, z=(0.5,) * 6)
    far = client.call_batch_sync([task.request("", ex, label_scoring=True, soft=moved)
                                  for ex in examples])
    assert any(abs(a.label_logprobs[k] - b.label_logprobs[k]) > 0.05  # type: ignore[index]
               for a, b in zip(text, far, strict=True) for k in a.label_logprobs or {})
    # shown as its nearest vocabulary tokens: at the start, the seed prompt itself
    shown, norm, ids = client.soft_vectors.describe(start)
    assert shown == prompt and norm > 0 and len(ids) == soft[0].meta["soft_tokens"]
