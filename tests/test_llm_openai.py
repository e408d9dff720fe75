"""OpenAIClient against real HTTP servers on loopback: llama.cpp's OpenAI-compatible server with the
bundled model, and a scripted server for failures, retries and key hygiene."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Iterator
from typing import Any

import pytest
from servers import Reply, ScriptedOpenAIServer, chat_reply, free_port, start_llama_server

import workers.llm_openai
from evo.llm import LLMRequest, LLMResponse, LLMUnavailable, Message
from workers.llm_local import bundled_model_path
from workers.llm_openai import OpenAIClient
from workers.llm_openai_labels import LABEL_FLOOR, labels_from_top_logprobs

KEY = "sk-planted-SECRET-123"
ASK = (Message("user", "Say hello."),)


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def call(client: OpenAIClient, request: LLMRequest) -> LLMResponse:
    try:
        return await client.call(request)
    finally:
        await client.aclose()


def scripted_client(server: ScriptedOpenAIServer, **kw: Any) -> OpenAIClient:
    kw.setdefault("backoff_s", 0.01)
    return OpenAIClient("scripted", base_url=server.base_url, api_key=KEY, **kw)


def error(status: int, message: str) -> Reply:
    return Reply(status, {"error": {"message": message, "type": "error", "code": status}})


# -- a real llama.cpp server ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def llama_url() -> Iterator[str]:
    with start_llama_server(bundled_model_path(), n_ctx=2048, threads=1) as url:
        yield url


@pytest.mark.model
def test_the_public_names_stay_importable_from_workers_llm_openai() -> None:
    # workers.llm and the benchmarks import them from there, wherever they are defined
    for name in workers.llm_openai.__all__:
        assert getattr(workers.llm_openai, name) is not None
    assert workers.llm_openai.LABEL_FLOOR == LABEL_FLOOR


def test_real_server_generates(llama_url: str) -> None:
    client = OpenAIClient("smollm2", base_url=llama_url, api_key=None)
    request = LLMRequest(messages=(Message("user", "Name three colours."),), max_tokens=12)
    r = run(call(client, request))
    assert r.error is None and r.text.strip()
    assert r.prompt_tokens > 5 and 0 < r.completion_tokens <= 12 and r.latency_s > 0
    # Temperature 0 is deterministic once the server answers from its prompt cache: the first
    # answer may differ in a late token, because the server evaluated the whole prompt in one
    # batch then and only its last token afterwards (llama.cpp's kernels differ by batch shape).
    again = [run(call(OpenAIClient("smollm2", base_url=llama_url, api_key=None), request))
             for _ in range(2)]
    assert again[0].text == again[1].text
    assert again[0].text.split()[:2] == r.text.split()[:2]


@pytest.mark.model
def test_real_server_prefill_and_stop(llama_url: str) -> None:
    client = OpenAIClient("smollm2", base_url=llama_url, api_key=None)
    ask = "Write one short sentence about cats, inside <prompt></prompt> tags."
    request = LLMRequest(
        messages=(Message("user", ask),), max_tokens=40, prefill="<prompt>", stop=("</prompt>",)
    )
    r = run(call(client, request))
    assert r.error is None and r.text.strip()
    assert isinstance(r.meta["prefill_echoed"], bool)
    assert "<prompt>" not in r.text[:10] and "</prompt>" not in r.text


@pytest.mark.model
def test_real_server_scores_labels_from_logprobs(llama_url: str) -> None:
    client = OpenAIClient("smollm2", base_url=llama_url, api_key=None)
    question = "Review: I loved this movie, it was wonderful!\nIs this review positive or negative?"
    request = LLMRequest(messages=(Message("user", question),), labels=("positive", "negative"))
    r = run(call(client, request))
    assert r.error is None and r.meta["label_scoring"] == "logprobs"
    assert client.supports_label_scoring
    assert r.label_logprobs is not None and set(r.label_logprobs) == {"positive", "negative"}
    assert all(math.isfinite(v) and v <= 0 for v in r.label_logprobs.values())
    assert max(r.label_logprobs.values()) > LABEL_FLOOR  # a label was among the listed tokens
    assert r.text == max(r.label_logprobs, key=r.label_logprobs.__getitem__)


# -- retries and failures ----------------------------------------------------------------------


def test_rate_limits_are_retried_until_success() -> None:
    replies = [error(429, "slow down"), error(429, "slow down"), Reply(body=chat_reply("hi"))]
    with ScriptedOpenAIServer(replies) as server:
        r = run(call(scripted_client(server), LLMRequest(messages=ASK)))
    assert r.error is None and r.text == "hi" and len(server.received) == 3
    assert (r.prompt_tokens, r.completion_tokens) == (7, 3)


def test_retry_after_is_honoured() -> None:
    slow_down = Reply(429, {"error": {"message": "later"}}, headers={"retry-after": "0.3"})
    with ScriptedOpenAIServer([slow_down, Reply()]) as server:
        r = run(call(scripted_client(server), LLMRequest(messages=ASK)))
    assert r.error is None and r.latency_s >= 0.3 and len(server.received) == 2


def test_server_errors_fail_the_call_after_the_retries() -> None:
    with ScriptedOpenAIServer([error(500, "boom")]) as server:
        r = run(call(scripted_client(server, max_retries=2), LLMRequest(messages=ASK)))
    assert r.text == "" and r.error is not None and "500" in r.error
    assert len(server.received) == 3  # max_retries + 1


def test_a_slow_answer_times_out_and_is_retried() -> None:
    replies = [Reply(delay_s=1.0), Reply(body=chat_reply("in time"))]
    with ScriptedOpenAIServer(replies) as server:
        r = run(call(scripted_client(server, timeout_s=0.2), LLMRequest(messages=ASK)))
    assert r.error is None and r.text == "in time" and len(server.received) == 2
    with ScriptedOpenAIServer([Reply(delay_s=1.0)]) as server:
        r = run(call(scripted_client(server, timeout_s=0.2, max_retries=0),
                     LLMRequest(messages=ASK)))
    assert r.error == "timed out" and len(server.received) == 1


def test_the_proxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy",
                 "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    remote = "https://api.example.com/v1"
    assert OpenAIClient("m", base_url=remote)._proxy is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    assert OpenAIClient("m", base_url=remote)._proxy == "http://proxy.internal:3128"
    assert OpenAIClient("m", base_url="http://10.0.0.5:8000/v1")._proxy is None  # http: none set
    monkeypatch.setenv("NO_PROXY", "example.com")
    assert OpenAIClient("m", base_url=remote)._proxy is None


def test_a_bad_request_fails_once_without_retrying() -> None:
    with ScriptedOpenAIServer([error(400, "bad field")]) as server:
        r = run(call(scripted_client(server), LLMRequest(messages=ASK)))
    assert r.error is not None and "400" in r.error and len(server.received) == 1


def test_a_refused_key_makes_the_endpoint_unavailable() -> None:
    server = ScriptedOpenAIServer([error(401, "invalid key")])
    with server, pytest.raises(LLMUnavailable, match="API key was refused") as caught:
        run(call(scripted_client(server), LLMRequest(messages=ASK)))
    assert server.base_url in str(caught.value) and len(server.received) == 1


def test_an_unknown_model_makes_the_endpoint_unavailable() -> None:
    server = ScriptedOpenAIServer([error(404, "model not found")])
    with server, pytest.raises(LLMUnavailable, match="'scripted'"):
        run(call(scripted_client(server), LLMRequest(messages=ASK)))


def test_a_closed_port_is_unavailable_and_named() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    client = OpenAIClient("m", base_url=url, api_key=None, max_retries=1, backoff_s=0.01)
    with pytest.raises(LLMUnavailable, match="cannot connect") as caught:
        run(call(client, LLMRequest(messages=ASK)))
    assert url in str(caught.value)


def test_losing_the_server_after_a_success_fails_calls_not_the_job() -> None:
    async def scenario() -> tuple[LLMResponse, LLMResponse]:
        with ScriptedOpenAIServer([Reply()]) as server:
            client = scripted_client(server, max_retries=1)
            first = await client.call(LLMRequest(messages=ASK))
        second = await client.call(LLMRequest(messages=ASK))
        await client.aclose()
        return first, second

    first, second = run(scenario())
    assert first.error is None and second.error is not None and "connection" in second.error


def test_concurrency_is_capped() -> None:
    with ScriptedOpenAIServer([Reply(delay_s=0.05)]) as server:
        client = scripted_client(server, concurrency=2)

        async def many() -> list[LLMResponse]:
            try:
                return await asyncio.gather(
                    *(client.call(LLMRequest(messages=ASK)) for _ in range(6))
                )
            finally:
                await client.aclose()

        results = run(many())
    assert all(r.error is None for r in results)
    assert server.max_in_flight == 2 and len(server.received) == 6


def test_max_completion_tokens_is_used_when_max_tokens_is_refused() -> None:
    refuse = error(400, "Unsupported parameter: 'max_tokens'. Use 'max_completion_tokens' instead.")
    with ScriptedOpenAIServer([refuse, Reply()]) as server:
        r = run(call(scripted_client(server), LLMRequest(messages=ASK, max_tokens=9)))
    assert r.error is None
    assert server.received[1].body["max_completion_tokens"] == 9
    assert "max_tokens" not in server.received[1].body


# -- the key never leaks -----------------------------------------------------------------------


def test_the_key_is_sent_but_never_shown(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    echo = f"Incorrect API key provided: {KEY}"
    texts: list[str] = []
    with ScriptedOpenAIServer([error(500, echo), error(500, echo)]) as server:
        r = run(call(scripted_client(server, max_retries=1), LLMRequest(messages=ASK)))
        texts += [repr(r), str(r.error)]
    assert server.received[0].headers["authorization"] == f"Bearer {KEY}"
    with ScriptedOpenAIServer([error(401, echo)]) as server:
        with pytest.raises(LLMUnavailable) as caught:
            run(call(scripted_client(server), LLMRequest(messages=ASK)))
        texts += [str(caught.value), repr(caught.value)]
    assert r.error is not None and "***" in r.error
    for text in [*texts, caplog.text]:
        assert KEY not in text
    assert caplog.records  # the retry was logged, without the key


# -- prefill and labels, as the client shapes them ---------------------------------------------


def test_prefill_is_asked_for_and_stripped_when_echoed() -> None:
    replies = [
        Reply(body=chat_reply("Sure!\n<prompt>Be concise.</prompt> Done")),
        Reply(body=chat_reply("Be brief.")),
    ]
    request = LLMRequest(messages=ASK, prefill="<prompt>", stop=("</prompt>",))
    with ScriptedOpenAIServer(replies) as server:
        echoed = run(call(scripted_client(server), request))
        plain = run(call(scripted_client(server), request))
    last = server.received[0].body["messages"][-1]
    assert last["role"] == "user" and last["content"].endswith("Begin your answer with <prompt>")
    assert server.received[0].body["stop"] == ["</prompt>"]
    assert (echoed.text, echoed.meta["prefill_echoed"]) == ("Be concise.", True)
    assert (plain.text, plain.meta["prefill_echoed"]) == ("Be brief.", False)


def test_labels_are_read_from_top_logprobs() -> None:
    top = [(" Positive", -0.2), ("positive", -2.0), ("neg", -1.9), ("The", -4.0)]
    labels = ("positive", "negative", "neutral")
    with ScriptedOpenAIServer([Reply(body=chat_reply(" Positive", logprobs=top))]) as server:
        r = run(call(scripted_client(server), LLMRequest(messages=ASK, labels=labels)))
    body = server.received[0].body
    assert (body["logprobs"], body["top_logprobs"], body["max_tokens"]) == (True, 20, 1)
    # the task's request as it is: no instruction added (docs/requests.md)
    assert body["messages"] == [{"role": "user", "content": "Say hello."}]
    assert r.label_logprobs is not None and r.meta["label_scoring"] == "logprobs"
    assert r.label_logprobs["positive"] == pytest.approx(math.log(math.exp(-0.2) + math.exp(-2.0)))
    assert r.label_logprobs["negative"] == pytest.approx(-1.9)
    assert r.label_logprobs["neutral"] == pytest.approx(-5.0)  # below the least likely listed
    assert r.text == "positive"


def test_a_token_that_starts_two_labels_counts_for_neither() -> None:
    labels = ("Sports", "Science", "Politics")
    top = [("S", -0.5), (" science", -1.5), ("Pol", -2.0), (" Sci", -2.5), ("The", -4.0)]
    scores = labels_from_top_logprobs(labels, top)
    assert scores["Science"] == pytest.approx(math.log(math.exp(-1.5) + math.exp(-2.5)))
    assert scores["Politics"] == pytest.approx(-2.0)
    assert scores["Sports"] == pytest.approx(-5.0)  # "S" also starts "Science": no evidence
    # a token that is a whole label counts for it even when it starts another one
    assert labels_from_top_logprobs(("yes", "yesterday"), [(" Yes", -0.1)]) == {
        "yes": pytest.approx(-0.1), "yesterday": pytest.approx(-1.1)}


def test_labels_fall_back_to_text_without_logprobs() -> None:
    replies = [Reply(body=chat_reply("x")), Reply(body=chat_reply("It is Negative."))]
    labels = ("positive", "negative")
    with ScriptedOpenAIServer(replies) as server:
        client = scripted_client(server)

        async def twice() -> tuple[LLMResponse, LLMResponse]:
            try:
                return (
                    await client.call(LLMRequest(messages=ASK, labels=labels)),
                    await client.call(LLMRequest(messages=ASK, labels=labels, sample=1)),
                )
            finally:
                await client.aclose()

        first, second = run(twice())
    assert not client.supports_label_scoring
    assert len(server.received) == 3  # probe with logprobs, then one plain call each
    assert "logprobs" not in server.received[2].body
    for r in (first, second):
        assert r.meta["label_scoring"] == "generation" and r.text == "negative"
        assert r.label_logprobs == {"positive": LABEL_FLOOR, "negative": 0.0}


# -- the factory -------------------------------------------------------------------------------


def test_make_client_reads_url_and_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evo.spec import ModelSpec
    from workers.llm import make_client

    monkeypatch.setenv("EVO_LLM_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("MY_KEY", KEY)
    with ScriptedOpenAIServer([Reply()]) as server:
        spec = ModelSpec(
            provider="openai", model="m", base_url=server.base_url, api_key_env="MY_KEY"
        )
        client = make_client(spec)
        assert isinstance(client, OpenAIClient) and client.base_url == server.base_url
        assert run(call(client, LLMRequest(messages=ASK))).error is None
    assert server.received[0].headers["authorization"] == f"Bearer {KEY}"

    from_env = make_client(ModelSpec(provider="openai", model="m", api_key_env="MY_KEY"))
    assert isinstance(from_env, OpenAIClient) and from_env.base_url == "http://127.0.0.1:9/v1"

    monkeypatch.delenv("EVO_LLM_BASE_URL")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMUnavailable, match="OPENAI_API_KEY"):
        make_client(ModelSpec(provider="openai", model="gpt-4o-mini"))
    with pytest.raises(LLMUnavailable, match="model name"):
        make_client(ModelSpec(provider="openai", base_url="http://127.0.0.1:9/v1"))
