"""Spend in money: each call's cost by the price of the model that served it, on the ledger and in
the job's stats, and ``budget.usd``, never exceeded, with the final scoring's share held back."""

from __future__ import annotations

import dataclasses
import random

import pytest

from evo.llm import LLMRequest, LLMResponse, Message
from evo.spec import JobSpec, Price
from evo.spec_io import SpecError, parse_spec
from storage import Store
from tests.helpers import crash_and_resume, draw, toy_task
from workers.admission import check_job
from workers.cache import MemoryCache
from workers.cost import cost, cost_bound, input_bound
from workers.driver import Driver
from workers.final import final_reserve, usd_reserve
from workers.pool import LocalWorker, Pool
from workers.scripted import ScriptedClient

TASK_PRICE = {"input": 1000.0, "output": 2000.0}  # USD per million tokens: 0.001 a prompt token
META_PRICE = {"input": 3000.0, "output": 5000.0}


def meta(request: LLMRequest) -> str:
    """Paraphrase: a little better; crossover: better than the better parent."""
    text = request.messages[-1].content
    qs = [float(x) for x in __import__("re").findall(r"q=([0-9.]+)", text)] or [0.1]
    if "Instruction A" in text:
        return f"Child of both. q={min(1.0, max(qs) + 0.1):.2f} s{draw(request)}</prompt>"
    return f"Rephrased. q={min(1.0, qs[0] + 0.05):.2f}</prompt>"


def label_reply(request: LLMRequest) -> dict[str, float]:
    from tests.helpers import label_reply as reply

    return reply(request)


def reply(request: LLMRequest) -> str | dict:
    return label_reply(request) if request.labels else meta(request)


def spec_of(usd: float | None = None, generations: int = 6, **budget) -> dict:
    return {
        "task": "toy",
        "algorithm": {"name": "evoprompt-ga", "population": 4, "generations": generations},
        "models": {"task": {"provider": "scripted", "price": TASK_PRICE},
                   "meta": {"provider": "scripted", "price": META_PRICE}},
        "evaluation": {"top_k": 2},
        "budget": {"calls": 100_000, **({"usd": usd} if usd is not None else {}), **budget},
    }


class WorstCase(ScriptedClient):
    """Bills every call the most its bound allows: what a bound that holds only just does."""

    def call_sync(self, request: LLMRequest) -> LLMResponse:
        out = super().call_sync(request)
        return dataclasses.replace(out, prompt_tokens=input_bound(request),
                                   completion_tokens=request.max_tokens)


def driver_of(spec: dict, store: Store, client: type[ScriptedClient] = ScriptedClient,
              answer=None) -> Driver:
    """A job whose task and meta-LLM are two scripted models, each with its price."""
    task_pool = Pool([LocalWorker(client(reply, model="scripted-task"))],
                     model="scripted-task")
    meta_pool = Pool([LocalWorker(client(answer or reply, model="scripted-meta"))],
                     model="scripted-meta")
    return Driver(JobSpec.model_validate(spec), toy_task(), store=store, task_pool=task_pool,
                  meta_pool=meta_pool, cache=MemoryCache(),
                  job_id=f"job{random.random():.12f}"[5:])


def ledger_usd(store: Store, job_id: str) -> float:
    return sum(c.usd for c in store.llm_calls(job_id))


# ---- the price and the bound -------------------------------------------------------------------


def test_a_call_costs_its_tokens_at_the_price_and_a_cache_hit_nothing() -> None:
    price = Price(input=2.0, output=10.0)
    paid = LLMResponse("yes", "m", prompt_tokens=1000, completion_tokens=100)
    assert cost(paid, price) == pytest.approx(0.002 + 0.001)
    assert cost(LLMResponse("yes", "m", 1000, 100, cached=True), price) == 0.0
    assert cost(paid, None) == 0.0


def test_the_bound_is_at_least_what_a_runtime_counts() -> None:
    # a byte-level tokenizer never makes more tokens than bytes: the scripted model counts words
    request = LLMRequest((Message("system", "Be brief."), Message("user", "Ünïcödé text " * 20)),
                         max_tokens=7, prefill="<a>")
    words = sum(len(m.content.split()) for m in request.messages)
    assert input_bound(request) >= words
    assert input_bound(request) >= sum(len(m.content.encode()) for m in request.messages) + 3
    price = Price(input=1.0, output=3.0)
    assert cost_bound(request, price) == pytest.approx(
        (input_bound(request) * 1.0 + 7 * 3.0) / 1e6)


# ---- the spec ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role,part", [("task", "input"), ("meta", "output")])
def test_a_negative_price_is_refused_naming_the_field(role: str, part: str) -> None:
    spec = spec_of()
    spec["task"] = "sentiment"
    spec["models"][role]["price"] = {**spec["models"][role]["price"], part: -1}
    with pytest.raises(SpecError) as err:
        parse_spec(spec)
    assert f"models.{role}.price.{part}" in str(err.value)


def test_a_money_budget_that_cannot_pay_the_final_scoring_is_refused_with_what_it_needs() -> None:
    spec = JobSpec.model_validate(spec_of(usd=1.0))
    need = usd_reserve(spec, toy_task())
    assert need > 1.0
    with pytest.raises(SpecError) as err:
        check_job(spec, toy_task())
    text = str(err.value)
    assert "budget.usd" in text and f"{need:.6g} USD" in text
    assert f"{final_reserve(spec, toy_task())} calls" in text
    check_job(JobSpec.model_validate(spec_of(usd=need * 1.01)), toy_task())  # enough: admitted


def test_a_money_budget_needs_every_model_priced_and_direct_answers() -> None:
    unpriced = spec_of(usd=1000.0)
    del unpriced["models"]["meta"]["price"]
    with pytest.raises(SpecError, match=r"models\.meta has no price"):
        check_job(JobSpec.model_validate(unpriced), toy_task())
    chain = spec_of(usd=1000.0)
    chain["evaluation"] |= {"strategy": "zero_shot_cot", "label_scoring": False}
    with pytest.raises(SpecError, match="strategy 'direct'"):
        check_job(JobSpec.model_validate(chain), toy_task())


# ---- the job -----------------------------------------------------------------------------------


async def test_spend_is_counted_by_the_model_that_served_each_call(store: Store) -> None:
    driver = driver_of(spec_of(generations=2), store)
    result = await driver.run()
    calls = store.llm_calls(driver.job_id)
    for c in calls:
        price = META_PRICE if c.model == "scripted-meta" else TASK_PRICE
        want = 0.0 if c.cached else (c.prompt_tokens * price["input"]
                                     + c.completion_tokens * price["output"]) / 1e6
        assert c.usd == pytest.approx(want, abs=1e-15)
    assert {c.model for c in calls if c.usd > 0} == {"scripted-meta", "scripted-task"}
    assert result.stats["usd"] == pytest.approx(ledger_usd(store, driver.job_id), abs=1e-12)
    assert store.call_totals(driver.job_id)["usd"] == pytest.approx(result.stats["usd"],
                                                                   abs=1e-12)


@pytest.mark.parametrize("room", [10.0, 20.0, 40.0])
async def test_a_money_budget_is_never_exceeded_and_the_final_phase_is_paid(
    store: Store, room: float
) -> None:
    """Jobs that run out of money in the search: the spend stays within budget.usd, the final
    scoring is paid from its reserve, and the ledger, the stats and the store's totals agree."""
    base = JobSpec.model_validate(spec_of(usd=1.0))
    budget = usd_reserve(base, toy_task()) + room
    driver = driver_of(spec_of(usd=budget, generations=50), store)
    result = await driver.run()
    spent = result.stats["usd"]
    assert result.status == "completed"
    assert "usd" in (result.reason or "")  # the search stopped for money, not for calls
    assert 0 < spent <= budget
    assert ledger_usd(store, driver.job_id) == pytest.approx(spent, abs=1e-12)
    assert store.call_totals(driver.job_id)["usd"] == pytest.approx(spent, abs=1e-12)
    assert store.get_job(driver.job_id).stats["usd"] == spent
    assert result.stats["best_test"] is not None and result.stats["seed_test"] is not None
    assert result.stats["calls"] < 100_000


@pytest.mark.parametrize("room", [10.0, 25.0])
async def test_calls_billed_at_their_bound_still_fit_the_money_budget(
    store: Store, room: float
) -> None:
    """Every call billed the most its bound allows (as if the bound were tight): the job still
    ends within budget.usd, with its final scoring paid."""
    budget = usd_reserve(JobSpec.model_validate(spec_of(usd=1.0)), toy_task()) + room
    driver = driver_of(spec_of(usd=budget, generations=50), store, WorstCase)
    result = await driver.run()
    spent = result.stats["usd"]
    assert result.status == "completed" and "usd" in (result.reason or "")
    assert spent <= budget
    assert ledger_usd(store, driver.job_id) == pytest.approx(spent, abs=1e-12)
    assert result.stats["best_test"] is not None


async def test_a_final_phase_its_reserve_cannot_pay_is_cut_short_not_overspent(
    store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Finalists costlier than the reserve assumed (here: a reserve of almost nothing) leave
    scores out; the job still completes within budget.usd."""
    import workers.search

    monkeypatch.setattr(workers.search, "usd_reserve", lambda spec, task: 0.5)
    budget = 20.0
    spec = spec_of(usd=budget, generations=50)
    spec["algorithm"]["dev_subset"] = 4  # the finalists are re-scored on the whole dev split
    spec["models"]["meta"]["price"] = {"input": 0, "output": 0}  # the search ends on scoring
    driver = driver_of(spec, store, WorstCase)
    with caplog.at_level("WARNING"):
        result = await driver.run()
    assert result.status == "completed"
    assert result.stats["usd"] <= budget
    assert ledger_usd(store, driver.job_id) == pytest.approx(result.stats["usd"], abs=1e-12)
    assert "scoring cut short by the budget" in caplog.text


async def test_a_resumed_job_keeps_its_spend(store: Store) -> None:
    spec = {**spec_of(usd=None, generations=3)}
    spec["models"] = {"task": {"provider": "scripted", "price": TASK_PRICE}}
    spec.pop("task")
    straight, resumed = await crash_and_resume(spec, meta, store, None, crash_at=3)
    a, b = store.get_job(straight).stats, store.get_job(resumed).stats
    assert a["usd"] > 0
    assert b["usd"] == pytest.approx(a["usd"], abs=1e-12)
    assert ledger_usd(store, resumed) == pytest.approx(b["usd"], abs=1e-12)


async def test_a_resumed_job_keeps_to_its_money_budget(store: Store) -> None:
    spec = {**spec_of(usd=None, generations=50)}
    spec["models"] = {"task": {"provider": "scripted", "price": TASK_PRICE}}
    spec.pop("task")
    need = usd_reserve(JobSpec.model_validate({**spec, "task": "toy", "budget": {"usd": 1.0}}),
                       toy_task())
    spec["budget"] = {"calls": 100_000, "usd": need + 30.0}
    straight, resumed = await crash_and_resume(spec, meta, store, None, crash_at=3)
    a, b = store.get_job(straight).stats, store.get_job(resumed).stats
    assert b["usd"] == pytest.approx(a["usd"], abs=1e-12)
    assert b["usd"] <= spec["budget"]["usd"]
    assert "usd" in (store.get_job(resumed).reason or "")  # it did run out of money
    assert ledger_usd(store, resumed) == pytest.approx(b["usd"], abs=1e-12)


def test_rounds_in_flight_hold_their_bound_and_the_reserve_opens_for_the_final_phase() -> None:
    from evo.engine import BudgetExhausted
    from workers.budget import Budget

    b = Budget(max_usd=10.0, reserve_usd=4.0)
    b.take(1, usd_bound=3.5)
    with pytest.raises(BudgetExhausted, match="usd"):  # 3.5 held + 3 > the search's 6
        b.take(1, usd_bound=3.0)
    assert (b.calls, b.usd_held) == (1, 3.5)  # a refused round takes nothing
    b.take(1, usd_bound=2.5)  # exactly what is left
    b.settle(3.5, 1.0)
    b.settle(2.5, 2.0)
    assert (b.usd, b.usd_held) == (3.0, 0.0)
    with pytest.raises(BudgetExhausted):
        b.take(1, usd_bound=3.5)
    b.release_reserve()
    b.take(1, usd_bound=7.0)  # the final phase spends the reserve too, and no more
    with pytest.raises(BudgetExhausted):
        b.take(1, usd_bound=0.01)


# ---- where the spend is shown ------------------------------------------------------------------


def test_the_api_the_cli_and_compare_show_the_ledger_s_spend(tmp_path) -> None:
    """A job over the API that runs out of money: GET /jobs/{id} carries the stats' spend, which is
    the ledger's; `evo show` and `evo compare` print it next to calls and tokens."""
    import io

    from rich.console import Console

    from evo.app.compare import cells, run_of_job, summarize
    from evo.app.settings import Settings
    from evo.app.show import show_job
    from evo.spec_io import parse_spec
    from evo.task import load_task
    from tests.api_helpers import LiveApi, scripted_spec, wait_status

    spec = scripted_spec(generations=40, seed=2)
    spec["models"]["task"]["price"] = TASK_PRICE
    need = usd_reserve(parse_spec({**spec, "budget": {"usd": 1.0}}), load_task("sentiment"))
    spec["budget"]["usd"] = need + 20.0
    url = f"sqlite:///{tmp_path / 'evo.db'}"
    with Store(url) as store, LiveApi(store, Settings(database_url=url, executor="inprocess")) \
            as api, api.client(api.key("alice")) as client:
        posted = client.post("/jobs", json=spec)
        assert posted.status_code == 201, posted.text
        job = wait_status(client, posted.json()["id"], "completed")
        usd = job["stats"]["usd"]
        assert "usd" in job["reason"] and 0 < usd <= spec["budget"]["usd"]
        assert ledger_usd(store, job["id"]) == pytest.approx(usd, abs=1e-12)
        record = store.get_job(job["id"])
        console = Console(file=io.StringIO(), width=200)
        show_job(console, store, record)
        assert f"· ${usd:,.4f} ·" in console.file.getvalue()
        row = summarize([run_of_job("evoprompt-ga", 0, record)])[0]
        assert f"{usd:.4f}" in cells(row)


@pytest.mark.model
def test_the_bundled_model_never_bills_more_than_the_bound() -> None:
    """The shortest requests are where the template's share is largest (SmolLM2's adds a default
    system message when a request has none)."""
    from workers.llm_local import LocalLlamaClient

    requests = [
        LLMRequest((Message("user", "Hi"),), max_tokens=4),
        LLMRequest((Message("user", "?"),), max_tokens=4, prefill="<p>"),
        LLMRequest((Message("system", "x"), Message("user", "y"), Message("assistant", "z"),
                    Message("user", "w")), max_tokens=4),
        LLMRequest((Message("user", "Ça va? 東京 🙂"),), max_tokens=4, mode="completion"),
        LLMRequest((Message("user", "Is it good or bad?"),), labels=("good", "bad")),
    ]
    client = LocalLlamaClient(threads=1)
    try:
        for request in requests:
            r = client.call_sync(request)
            assert r.error is None
            assert 0 < r.prompt_tokens <= input_bound(request), request
            assert r.completion_tokens <= request.max_tokens
    finally:
        client.close()
