"""Contextual calibration (Zhao et al., ICML 2021): each label's probability divided by the one
the model gives it for a content-free input under the same prompt, in search and final alike."""

from __future__ import annotations

from collections import Counter

from evo.llm import LLMRequest, LLMResponse
from evo.spec import JobSpec
from evo.task import Example
from storage import Store
from tests.helpers import toy_task
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.pool import LocalWorker, Pool
from workers.scripted import ScriptedClient


def test_calibration_divides_out_what_the_prompt_says_with_no_input() -> None:
    task = toy_task()
    ex = Example("1", "item 1 of 2", "no")
    answer = LLMResponse("yes", "m", label_logprobs={"yes": -0.5, "no": -1.0})
    assert task.score(ex, answer).prediction == "yes"
    # with no input at all the model says "yes" far more readily: that part is the prompt's
    assert task.score(ex, answer, {"yes": -0.2, "no": -2.0}).prediction == "no"
    # a label that was not given stays not given, calibrated or not
    none = LLMResponse("", "m", label_logprobs={"yes": -9.0, "no": -9.0})
    assert task.score(ex, none, {"yes": -0.2, "no": -2.0}).failure == "unparsed"
    request = task.content_free_request("Say yes or no.")
    assert "N/A" in request.messages[-1].content and request.labels


def biased(request: LLMRequest) -> str | dict[str, float]:
    """A model that leans to "yes" under every prompt, a little less than the evidence."""
    text = request.messages[-1].content
    if not request.labels:
        return "Decide. q=0.5</prompt>"
    if "N/A" in text:
        return {"yes": -0.2, "no": -1.2}
    i = int(text.split("item ")[1].split(" ")[0])
    return {"yes": -0.5, "no": -3.0} if i % 2 else {"yes": -1.0, "no": -1.5}


async def run(store: Store, calibrate: bool, job_id: str) -> tuple[float, Counter]:
    pool = Pool([LocalWorker(ScriptedClient(biased))], model="scripted")
    spec = JobSpec.model_validate({
        "task": "toy", "budget": {"calls": 10_000},
        "evaluation": {"top_k": 1, "calibrate": calibrate},
        "algorithm": {"name": "evoprompt-ga", "population": 2, "generations": 1}})
    driver = Driver(spec, toy_task(), store=store, task_pool=pool, meta_pool=pool,
                    cache=MemoryCache(), job_id=job_id)
    result = await driver.run()
    assert result.seed is not None
    paid = Counter(c.purpose for c in store.llm_calls(job_id) if not c.cached)
    return result.seed.dev, paid


async def test_a_calibrated_job_pays_one_call_per_prompt_and_undoes_the_bias(store: Store) -> None:
    plain, plain_calls = await run(store, False, "p" * 32)
    fixed, calls = await run(store, True, "c" * 32)
    assert plain == 0.5  # "yes" for everything
    assert fixed == 1.0
    assert "calibrate" not in plain_calls
    # one content-free call per prompt scored: two seeds and the child (the final phase's and
    # test's asks are the same requests, answered from the cache)
    prompts = len({c.text for c in store.candidates("c" * 32)})
    assert calls["calibrate"] == prompts
    assert calls["evaluate"] == plain_calls["evaluate"]
    assert store.get_job("c" * 32).stats["calls"] == sum(calls.values())
