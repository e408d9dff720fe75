"""Evaluation strategies (direct, zero-shot CoT, EoT) and the zero-shot-eot method: the chains of
calls per example, the lockstep rounds that send them, pool breeding, the spec rules, and a whole
job on the scripted model (ledger, cache, budget, fallbacks counted, resume)."""

from __future__ import annotations

import asyncio
import re

import pytest

from evo import strategies
from evo.algorithms.zero_shot_eot import COT_SEEDS, EoTParams, ZeroShotEoT
from evo.llm import LLMRequest, LLMResponse
from evo.metrics import get_metric
from evo.spec import JobSpec
from evo.spec_io import SpecError, parse_spec
from evo.task import Example, Task, load_task
from evo.testing import Ask, FakeEngine
from storage import Store
from tests.helpers import Crash, crash_and_resume, job_record, scripted_job
from workers.admission import check_job
from workers.chains import lockstep

POOL = ("Go step by step.", "List the facts first, then add them up.", "Draw it out.")
SUM = Example("e1", "Ann has 3 pens and gets 4 more. How many pens?", "7")


def sum_task(n: int = 6) -> Task:
    """Word sums; the template puts the prompt first, as the built-in arithmetic task does."""
    def split(name: str) -> tuple[Example, ...]:
        return tuple(Example(f"{name}{i}", f"Ann has {i} pens and gets {i + 2} more. How many?",
                             str(2 * i + 2)) for i in range(n))

    return Task(name="sums", description="add two numbers", template="{prompt}\n\nQ: {input}",
                splits={s: split(s) for s in ("train", "dev", "test")},
                metric=get_metric("numeric"), labels=(), verbalizers={},
                seed_prompts=("Answer with a number.",), max_answer_tokens=8)


class Model:
    """A scripted ask: answers by purpose, and keeps what it was asked."""

    def __init__(self, select: str = "2", rewrite: str = " Ann had 3 pens, got 4 more: total?",
                 fail: str = "") -> None:
        self.asked: list[tuple[str, LLMRequest]] = []
        self.replies = {strategies.SELECT: select, strategies.REWRITE: rewrite,
                        strategies.REASON: " 3 and 4 make 7.", "evaluate": " 7"}
        self.fail = fail

    async def __call__(self, request: LLMRequest, purpose: str) -> LLMResponse:
        self.asked.append((purpose, request))
        if purpose == self.fail:
            return LLMResponse("", "m", error="timeout")
        return LLMResponse(self.replies[purpose], "m")

    @property
    def purposes(self) -> list[str]:
        return [p for p, _ in self.asked]


def run(coro):
    return asyncio.run(coro)


# --- the chains --------------------------------------------------------------------------------


def test_direct_is_one_call_of_the_task_request() -> None:
    task, model = sum_task(), Model()
    out = run(strategies.answer("direct", task, ["Add."], SUM, model))
    assert model.purposes == ["evaluate"]
    assert model.asked[0][1] == task.request("Add.", SUM, label_scoring=False)
    assert out.response.text == " 7" and out.notes == ()


def test_zero_shot_cot_reasons_then_reads_the_answer_off_its_reasoning() -> None:
    task, model = sum_task(), Model()
    out = run(strategies.answer("zero_shot_cot", task, ["Add."], SUM, model))
    assert model.purposes == ["cot_reason", "evaluate"]
    reason, final = (r for _, r in model.asked)
    assert reason.prefill == strategies.REASONING_CUE and reason.stop == ()
    assert reason.max_tokens >= strategies.REASONING_TOKENS
    assert reason.messages == final.messages == task.request("Add.", SUM,
                                                             label_scoring=False).messages
    assert final.prefill == f"{strategies.REASONING_CUE} 3 and 4 make 7.\n{strategies.ANSWER_CUE}"
    assert final.max_tokens == task.max_answer_tokens and final.stop == task.stop_sequences
    assert task.score(SUM, out.response).score == 1.0


def test_zero_shot_cot_with_a_failed_reasoning_call_is_that_failed_call() -> None:
    model = Model(fail=strategies.REASON)
    out = run(strategies.answer("zero_shot_cot", sum_task(), ["Add."], SUM, model))
    assert model.purposes == ["cot_reason"] and out.response.error == "timeout"


def test_eot_selects_restates_with_the_chosen_prompt_and_answers_the_restatement() -> None:
    task, model = sum_task(), Model(select=" 2.")
    out = run(strategies.answer("eot", task, list(POOL), SUM, model))
    assert model.purposes == ["eot_select", "eot_rewrite", "evaluate"]
    select, rewrite, final = (r for _, r in model.asked)
    shown = select.messages[-1].content
    assert SUM.input in shown and all(f"{i}. {p}" in shown for i, p in enumerate(POOL, 1))
    assert out.chosen == 1 and out.notes == ()
    assert POOL[1] in rewrite.messages[-1].content and SUM.input in rewrite.messages[-1].content
    assert final.messages[-1].content == f"{POOL[1]}\n\nQ: 1. Ann had 3 pens, got 4 more: total?"
    assert final.stop == () and final.max_tokens >= strategies.REASONING_TOKENS
    assert task.score(SUM, out.response).score == 1.0


@pytest.mark.parametrize(("reply", "chosen", "notes"), [
    (" 3", 2, ()),
    ("Draw it out.", 2, ()),  # quotes one prompt of the pool
    (" banana", 0, (("eot_select", "no_choice"),)),
    (" 7", 0, (("eot_select", "no_choice"),)),  # no such prompt
    ("", 0, (("eot_select", "no_choice"),)),
])
def test_an_unparsable_selection_takes_the_first_prompt_and_says_so(
    reply: str, chosen: int, notes: tuple
) -> None:
    model = Model(select=reply)
    out = run(strategies.answer("eot", sum_task(), list(POOL), SUM, model))
    assert out.chosen == chosen and out.notes == notes
    assert model.asked[-1][1].messages[-1].content.startswith(POOL[chosen])


def test_a_failed_selection_call_takes_the_first_prompt_too() -> None:
    model = Model(fail=strategies.SELECT)
    out = run(strategies.answer("eot", sum_task(), list(POOL), SUM, model))
    assert out.chosen == 0 and out.notes == (("eot_select", "call_failed"),)
    assert model.purposes == ["eot_select", "eot_rewrite", "evaluate"]


@pytest.mark.parametrize(("rewrite", "why"), [
    (" How many pens?", "lost_detail"),  # drops the 3 and the 4
    ("   ", "empty"),
])
def test_an_unusable_restatement_gives_way_to_the_problem_as_written(
    rewrite: str, why: str
) -> None:
    model = Model(rewrite=rewrite)
    out = run(strategies.answer("eot", sum_task(), list(POOL), SUM, model))
    assert out.notes == (("eot_rewrite", why),)
    assert model.asked[-1][1].messages[-1].content == f"{POOL[1]}\n\nQ: {SUM.input}"


def test_a_restatement_is_the_list_the_model_wrote_with_the_question_kept() -> None:
    text, why = strategies.restated(SUM.input, " Ann has 3 pens\n\n2. She gets 4 more\n")
    assert why is None and text == "1. Ann has 3 pens\n2. She gets 4 more\nHow many pens?"
    text, _ = strategies.restated(SUM.input, " Ann has 3 pens, gets 4.\n2. How many now?")
    assert text == "1. Ann has 3 pens, gets 4.\n2. How many now?"


def test_a_single_prompt_asks_no_choice() -> None:
    model = Model()
    run(strategies.answer("eot", sum_task(), ["Go step by step."], SUM, model))
    assert model.purposes == ["eot_rewrite", "evaluate"]
    assert strategies.calls_per_example("eot", 1) == 2
    assert strategies.calls_per_example("eot", 3) == 3
    assert strategies.calls_per_example("zero_shot_cot") == 2


def test_the_pool_is_the_candidates_own_or_its_text() -> None:
    assert strategies.pool_of("a\nb", {"pool": ["a", "b"]}) == ["a", "b"]
    assert strategies.pool_of("Add.", {}) == ["Add."]
    assert strategies.pool_of("Add.", {"pool": []}) == ["Add."]


# --- lockstep ------------------------------------------------------------------------------------


def test_lockstep_sends_each_round_together_one_send_per_purpose() -> None:
    rounds: list[tuple[str, list[str]]] = []

    async def send(requests: list[LLMRequest], purpose: str,
                   owners: list[str | None]) -> list[LLMResponse]:
        rounds.append((purpose, [o or "" for o in owners]))
        return [LLMResponse(f"{purpose}:{r.messages[-1].content}", "m") for r in requests]

    async def go() -> list[list[str]]:
        task = sum_task()
        chains = []
        for prompts in (list(POOL), ["Alone."]):
            for ex in task.split("dev")[:2]:
                async def chain(ask: Ask, prompts: list[str] = prompts, ex: Example = ex) -> list:
                    a = await strategies.answer("eot", task, prompts, ex, ask)
                    return a.response.text
                chains.append(chain)
        return await lockstep(chains, ["pool", "pool", "one", "one"], send)

    out = run(go())
    assert len(out) == 4 and all(o.startswith("evaluate:") for o in out)
    # round 1: the pool's choices and the single prompt's restatements; then the pool's
    # restatements and the single prompt's answers; then the pool's answers
    assert rounds == [
        ("eot_select", ["pool", "pool"]), ("eot_rewrite", ["one", "one"]),
        ("eot_rewrite", ["pool", "pool"]), ("evaluate", ["one", "one"]),
        ("evaluate", ["pool", "pool"]),
    ]


def test_lockstep_raises_a_send_error_and_leaves_nothing_running() -> None:
    class Broke(Exception):
        pass

    async def send(requests: list, purpose: str, owners: list) -> list[LLMResponse]:
        raise Broke

    async def go() -> None:
        chains = [lambda ask, ex=ex: strategies.answer("eot", sum_task(), list(POOL), ex, ask)
                  for ex in sum_task().split("dev")]
        with pytest.raises(Broke):
            await lockstep(chains, [None] * len(chains), send)
        await asyncio.sleep(0)
        assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []

    run(go())


# --- breeding the pool -------------------------------------------------------------------------


class Breeder:
    """Meta replies: crossover samples alternate between a usable child and an empty answer;
    a mutation adds a word to its parent."""

    def __init__(self) -> None:
        self.asked: list[Ask] = []

    def __call__(self, ask: Ask) -> str | None:
        self.asked.append(ask)
        if ask.purpose == "crossover":
            n = sum(a.purpose == "crossover" for a in self.asked) - 1
            return "" if n % 2 else f"Reason in steps and plan first, variant {n}.</prompt>"
        parent = re.search(r"Instruction: (.*)\n\nWrite a new version", ask.prompt).group(1)
        return f"Carefully, {parent.lower()}</prompt>"


def test_the_pool_is_bred_by_crossover_of_the_two_seeds_then_mutation() -> None:
    breeder = Breeder()
    engine = FakeEngine(sum_task(), reply=breeder, fitness=lambda c, s: 0.5)
    run(ZeroShotEoT(EoTParams(crossovers=2)).run(engine))
    by_op: dict[str, list] = {}
    for c in engine.made:
        by_op.setdefault(c.operator, []).append(c)
    a, b = by_op["cot_seed"]
    assert (a.text, b.text) == COT_SEEDS and a.generation == b.generation == 0
    assert [c.text for c in by_op["seed"]] == ["Answer with a number."]
    # two crossover samples of one meta-prompt showing both seeds; the empty one is rejected
    crossover_asks = [x for x in breeder.asked if x.purpose == "crossover"]
    assert len(crossover_asks) == 2 and COT_SEEDS[0] in crossover_asks[0].prompt
    assert COT_SEEDS[1] in crossover_asks[0].prompt
    assert engine.rejections == {"crossover:empty": 1}
    [child] = by_op["crossover"]
    assert child.parents == (a.id, b.id) and child.generation == 1
    [mutant] = by_op["mutation"]
    assert mutant.parents == (child.id,) and mutant.text == f"Carefully, {child.text.lower()}"
    [pool] = by_op["eot_pool"]
    members = [a, b, child, mutant]
    assert pool.parents == tuple(c.id for c in members)
    assert pool.meta["pool"] == [c.text for c in members] and pool.text.split("\n") == pool.meta[
        "pool"]
    assert [g for g, _, _ in engine.checkpoints] == [0, 1]
    scored = [s.candidate_id for s in engine.scored]
    assert scored == [*(c.id for c in by_op["seed"]), a.id, b.id, child.id, mutant.id, pool.id]


def test_resumed_after_generation_0_it_breeds_from_the_checkpointed_seeds() -> None:
    breeder = Breeder()
    first = FakeEngine(sum_task(), reply=breeder)
    run(ZeroShotEoT(EoTParams()).run(first))
    _, _, state0 = first.checkpoints[0]
    again = FakeEngine(sum_task(), reply=breeder)
    again.made = [c for c in first.made if c.generation == 0]
    run(ZeroShotEoT(EoTParams()).run(again, (0, state0)))
    pools = [c for c in again.made if c.operator == "eot_pool"]
    assert len(pools) == 1 and pools[0].meta["pool"][:2] == list(COT_SEEDS)
    done = FakeEngine(sum_task(), reply=breeder)
    run(ZeroShotEoT(EoTParams()).run(done, (1, first.checkpoints[1][2])))
    assert done.made == [] and done.asked == []


# --- the spec ----------------------------------------------------------------------------------


def test_the_strategy_defaults_to_direct_and_zero_shot_eot_answers_with_eot() -> None:
    assert parse_spec({"task": "arithmetic"}).evaluation.strategy == "direct"
    spec = parse_spec({"task": "arithmetic", "algorithm": {"name": "zero-shot-eot"}})
    assert spec.evaluation.strategy == "eot"
    with pytest.raises(SpecError, match=r"evaluation.strategy: zero-shot-eot .* 'eot'"):
        parse_spec({"task": "arithmetic", "algorithm": {"name": "zero-shot-eot"},
                    "evaluation": {"strategy": "zero_shot_cot"}})
    with pytest.raises(SpecError, match=r"evaluation.strategy: Input should be 'direct'"):
        parse_spec({"task": "arithmetic", "evaluation": {"strategy": "cot"}})
    with pytest.raises(SpecError, match=r"algorithm.cot_seeds"):
        parse_spec({"task": "arithmetic",
                    "algorithm": {"name": "zero-shot-eot", "cot_seeds": ["only one"]}})


def test_a_chain_strategy_is_refused_where_it_cannot_apply() -> None:
    def check(task_name: str, **evaluation: object) -> None:
        spec = parse_spec({"task": task_name, "evaluation": evaluation})
        check_job(spec, load_task(task_name))

    check("arithmetic", strategy="eot")
    check("sentiment", strategy="zero_shot_cot", label_scoring=False)
    with pytest.raises(SpecError, match=r"evaluation.strategy: .*label-scored.*"
                                        r"evaluation.label_scoring: false"):
        check("sentiment", strategy="eot")
    with pytest.raises(SpecError, match=r"evaluation.strategy: .*programs"):
        check_job(JobSpec.model_validate({"task": "binpacking", "algorithm": {"name": "eoh"},
                                          "evaluation": {"strategy": "eot"}}),
                  load_task("binpacking"))


def test_the_final_reserve_pays_for_the_longest_chain() -> None:
    from workers.final import reserve_of

    task = load_task("arithmetic")
    direct = reserve_of(parse_spec({"task": "arithmetic"}), task)
    eot = reserve_of(parse_spec({"task": "arithmetic", "evaluation": {"strategy": "eot"}}), task)
    assert eot.total == 3 * direct.total


# --- a whole job on the scripted model ----------------------------------------------------------


def job_model(request: LLMRequest) -> str:
    """Breeds like ``breeder``; chooses approach 2 unless told 'nope'; restates faithfully; the
    answer is right only under a prompt that says 'plan'."""
    text = request.messages[-1].content
    if "takes the best idea of each" in text:
        return "Reason in steps and plan first.</prompt>"
    if "Write a new version" in text:
        return "Carefully reason in steps and make a plan.</prompt>"
    if "Which approach fits" in text:
        return " nope" if "5 pens" in text else " 2"
    if "Restate the problem" in text:
        return " " + text.rsplit("Problem: ", 1)[1]
    i, j = map(int, re.search(r"has (\d+) pens and gets (\d+)", text).groups())
    return f"It is {i + j}" if "plan" in text.split("\n\nQ: ")[0] else "It is 0"


EOT_SPEC = {"algorithm": {"name": "zero-shot-eot", "crossovers": 1},
            "evaluation": {"strategy": "eot", "top_k": 2, "test": False}}


async def test_a_job_pays_every_step_of_every_chain_once(store: Store) -> None:
    driver, client, _ = scripted_job(EOT_SPEC, job_model, store, task=sum_task())
    result = await driver.run()
    assert result.status == "completed"
    made = store.candidates(driver.job_id)
    cands = {c.operator: c for c in made}
    assert set(cands) == {"seed", "cot_seed", "crossover", "mutation", "eot_pool"}
    first_cot = next(c for c in made if c.operator == "cot_seed")
    calls = store.llm_calls(driver.job_id)
    pool_calls = [c for c in calls if c.candidate_id == cands["eot_pool"].id]
    # 6 dev examples, 3 calls each; the pool's restatement under a prompt a member also used
    # is the member's own call again: answered by the cache, still on the ledger
    assert sorted({c.purpose for c in pool_calls}) == ["eot_rewrite", "eot_select", "evaluate"]
    assert len(pool_calls) == 3 * 6
    cached = [c for c in pool_calls if c.cached]
    assert cached and all(c.purpose in ("eot_rewrite", "evaluate") for c in cached)
    single = [c for c in calls if c.candidate_id == cands["crossover"].id]
    assert sorted(c.purpose for c in single) == ["eot_rewrite"] * 6 + ["evaluate"] * 6
    paid = sum(not c.cached for c in calls)
    job = store.get_job(driver.job_id)
    assert job.stats["calls"] == paid == len(client.requests)
    # the choice of the example whose selection is unparsable: the first prompt, counted
    assert job.stats["rejected"].get("eot_select:no_choice", 0) >= 1
    # the pool (which picks prompt 2, the one that says 'plan') is right where prompt 1 is not
    scores = {e.candidate_id: e.value for e in store.evaluations(driver.job_id, split="dev")}
    assert scores[cands["eot_pool"].id] > scores[first_cot.id]


async def test_a_budget_stops_the_search_before_a_chain_it_cannot_pay(store: Store) -> None:
    from workers.final import reserve_of

    reserve = reserve_of(JobSpec.model_validate({"task": "toy", **EOT_SPEC}), sum_task()).total
    # generation 0 (three prompts x 6 examples x 2 calls) and the breeding, not the pool's scoring
    spec = {**EOT_SPEC, "budget": {"calls": reserve + 40}}
    driver, _, _ = scripted_job(spec, job_model, store, task=sum_task())
    result = await driver.run()
    assert result.status == "completed" and "budget" in (result.reason or "")
    assert store.get_job(driver.job_id).stats["calls"] <= reserve + 40


async def test_resumes_from_its_checkpoint_as_if_never_stopped(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crashed as the pool's generation is scored (its breeding calls paid), then resumed."""
    monkeypatch.setattr("tests.helpers.toy_task", lambda seeds=None: sum_task())
    straight, resumed = await crash_and_resume(EOT_SPEC, job_model, store, None, crash_at=2)
    assert job_record(store, resumed) == job_record(store, straight)


async def test_calls_paid_in_the_middle_of_the_chains_are_replayed_on_resume(store: Store) -> None:
    """Crashed just after the pool's choices were paid, before any was used: the resumed job
    asks none of them again and ends with the record of a job that never stopped."""
    straight, _, _ = scripted_job(EOT_SPEC, job_model, store, task=sum_task())
    await straight.run()
    crashing, _, _ = scripted_job(EOT_SPEC, job_model, store, task=sum_task())
    calls = crashing.search.calls
    original = calls.call

    async def call(pool: object, requests: list[LLMRequest], purpose: str,
                   owners: list[str | None]) -> list[LLMResponse]:
        out = await original(pool, requests, purpose, owners)
        if purpose == strategies.SELECT:
            raise Crash
        return out

    calls.call = call  # type: ignore[method-assign]
    with pytest.raises(Crash):
        await crashing.run()
    resumed, client, _ = scripted_job(EOT_SPEC, job_model, store, task=sum_task(),
                                      job_id=crashing.job_id)
    await resumed.run(resume=True)
    assert job_record(store, resumed.job_id) == job_record(store, straight.job_id)
    assert not any("Which approach fits" in r.messages[-1].content for r in client.requests)
