"""One task scores the same whatever serves the model: the bundled GGUF in process
(``LocalLlamaClient``) and the same file behind llama.cpp's OpenAI-compatible server
(``python -m llama_cpp.server``, through ``OpenAIClient``) give the same label, and label
log-probabilities equal within float rounding, for the built-in ``sentiment`` task's seed prompts.

The tolerance: the two read the same logits (the same model file, one thread each, prompts
evaluated in batches of two or more tokens, see ``workers/llm_local.py``); the server takes the
log-softmax in float32, the local client in float64. Measured over 3 prompts x 100 dev examples
the largest difference was 5.0e-7 (docs/requests.md), so 1e-5 leaves a 20-fold margin and still
catches any difference in what is asked or how it is read (those move scores by 0.01 to several
units). ``EVO_PARITY_EXAMPLES=100`` runs the full dev split (about 2 minutes) and prints the
figures docs/requests.md quotes.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest
from servers import Reply, ScriptedOpenAIServer, chat_reply, start_llama_server

from evo.llm import LLMRequest, LLMResponse
from evo.task import Task, load_task
from workers.llm_local import LocalLlamaClient, bundled_model_path
from workers.llm_openai import OpenAIClient

pytestmark = pytest.mark.model

TOLERANCE = 1e-5
EXAMPLES = int(os.environ.get("EVO_PARITY_EXAMPLES", "8"))


@pytest.fixture(scope="module")
def task() -> Task:
    loaded = load_task("sentiment")
    assert isinstance(loaded, Task)
    return loaded


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    with start_llama_server(bundled_model_path(), n_ctx=2048, threads=1) as url:
        yield url


@pytest.fixture(scope="module")
def local() -> Iterator[LocalLlamaClient]:
    client = LocalLlamaClient(n_ctx=2048, threads=1)
    yield client
    client.close()


def through_server(url: str, requests: list[LLMRequest]) -> list[LLMResponse]:
    async def go() -> list[LLMResponse]:
        client = OpenAIClient("smollm2", base_url=url, api_key=None, concurrency=1)
        try:
            return [await client.call(r) for r in requests]  # one at a time, in order
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_both_runtimes_score_the_same_labels(
    task: Task, llama_url: str, local: LocalLlamaClient
) -> None:
    examples = task.split("dev")[:EXAMPLES]
    asks = [(p, ex) for p in task.seed_prompts for ex in examples]
    requests = [task.request(p, ex, label_scoring=True) for p, ex in asks]
    here = [local.call_sync(r) for r in requests]
    there = through_server(llama_url, requests)

    worst, floors = 0.0, 0
    right = {name: dict.fromkeys(task.seed_prompts, 0) for name in ("local", "server")}
    for (prompt, ex), a, b in zip(asks, here, there, strict=True):
        assert a.error is None and b.error is None, (a.error, b.error)
        assert b.meta["label_scoring"] == a.meta["label_scoring"] == "logprobs"
        assert a.label_logprobs is not None and b.label_logprobs is not None
        assert set(a.label_logprobs) == set(b.label_logprobs) == set(requests[0].labels)
        for word, value in a.label_logprobs.items():
            worst = max(worst, abs(value - b.label_logprobs[word]))
        floors += len(set(a.label_logprobs.values())) == 1  # no label among the top 20
        assert a.text == b.text, (prompt, ex.id, a.label_logprobs, b.label_logprobs)
        for name, r in (("local", a), ("server", b)):
            right[name][prompt] += task.score(ex, r).score == 1.0
        # the same tokens were evaluated: the request's text is the same on both
        assert a.prompt_tokens == b.prompt_tokens
    print(f"\nparity: {len(requests)} label requests ({len(task.seed_prompts)} prompts x "
          f"{len(examples)} dev examples), max |local - server| label log-probability "
          f"{worst:.2e}, {floors} with no label among the top 20")
    for i, prompt in enumerate(task.seed_prompts):
        print(f"  prompt {i}: local {right['local'][prompt]}/{len(examples)}, "
              f"server {right['server'][prompt]}/{len(examples)}  ({prompt!r})")
    assert worst <= TOLERANCE
    assert right["local"] == right["server"]


def test_the_wire_carries_the_task_request_unchanged(task: Task) -> None:
    # What OpenAIClient sends for a task's label and generation requests: the task's messages,
    # byte for byte (the local runtime formats the same messages with the model's template).
    example = task.split("dev")[0]
    labelled = task.request(task.seed_prompts[0], example, label_scoring=True)
    generated = task.request(task.seed_prompts[0], example, label_scoring=False)
    top = [(" positive", -0.1), (" negative", -2.5)]
    replies = [Reply(body=chat_reply(" positive", logprobs=top)), Reply(body=chat_reply("x"))]
    with ScriptedOpenAIServer(replies) as server:
        through_server(server.base_url, [labelled, generated])
    for request, received in zip((labelled, generated), server.received, strict=True):
        sent = [{"role": m.role, "content": m.content} for m in request.messages]
        assert received.body["messages"] == sent
    assert sent[-1]["content"] == f"{task.seed_prompts[0]}\n\nReview: {example.input}"
