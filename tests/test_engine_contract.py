"""The engine's contract (evo/engine.py), held by the in-memory FakeEngine and the driver alike:
candidate kinds and islands, samples keyed to their requests, seeds, JSON state, rejections."""

from __future__ import annotations

import pytest

from evo.algorithms.eoh import EoH, EoHParams
from evo.algorithms.opro import OPRO, OPROParams
from evo.engine import EngineMisuse, checked_state
from evo.problems.binpacking import bin_packing
from evo.spec_io import SpecError, parse_spec
from evo.testing import Ask, FakeEngine
from storage import Store
from tests.driver_helpers import run_toy
from tests.helpers import quality, toy_task
from workers import jobs

PROGRAM = "def priority(item, bins):\n    return -(bins - item) ** {p}\n"


def program_reply(ask: Ask) -> str:
    p = len(ask.prompt) % 4 + 1
    return f"Tight fit, power {p}.</thought>\n<code>\n{PROGRAM.format(p=p)}"


async def test_eoh_makes_programs_linked_to_the_samples_that_wrote_them() -> None:
    engine = FakeEngine(bin_packing(items=20), reply=program_reply,
                        fitness=lambda c, split: -len(c.text))
    algo = EoH(EoHParams(population=3, generations=2, per_strategy=1, strategies=["e1", "m1"]))
    await algo.run(engine)
    assert {c.kind for c in engine.made} == {"program"}
    seeds = [c for c in engine.made if c.operator == "seed"]
    assert seeds and all(not c.parents and "made_by" not in c.meta for c in seeds)
    children = [c for c in engine.made if c.operator != "seed"]
    assert children and {c.operator for c in children} <= {"i1", "e1", "m1"}
    # each child names the sample it came from, and that sample wrote its code
    asked = {f"ask-{i + 1}": program_reply(a) for i, a in enumerate(engine.asked)}
    assert all(c.text.strip() in asked[c.meta["made_by"]] for c in children)
    assert [g for g, _, _ in engine.checkpoints] == [0, 1, 2]


def test_a_bad_eoh_strategy_is_refused_when_the_spec_is_read() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({"task": "binpacking",
                    "algorithm": {"name": "eoh", "strategies": ["e1", "x9"]}})
    # the second strategy, by its place in the spec, before anything is paid for
    assert "algorithm.strategies.1" in str(err.value)
    assert "'e1'" in str(err.value)  # the message names what is allowed


async def test_opro_resumes_on_the_fake_engine_from_its_checkpoint() -> None:
    task = toy_task()
    count = iter(range(1000))

    def reply(ask: Ask) -> str:
        return f"Answer carefully, version {next(count)}. q=0.{next(count) % 9 + 1}</prompt>"

    def fitness(cand, split):
        return quality(cand.text)

    params = OPROParams(steps=3, samples_per_step=2)
    first = FakeEngine(task, reply=reply, fitness=fitness, max_calls=9)
    with pytest.raises(Exception) as stopped:
        await OPRO(params).run(first)
    assert type(stopped.value).__name__ == "BudgetExhausted"
    # a new engine that knows the candidates made so far continues after the last checkpoint
    again = FakeEngine(task, reply=reply, fitness=fitness)
    again.made = list(first.made)
    await OPRO(params).run(again, first.resume_point)
    done = [g for g, _, _ in again.checkpoints]
    assert done and done[0] == first.checkpoints[-1][0] + 1 and done[-1] == 3


def test_the_rules_are_enforced_with_a_clear_error() -> None:
    engine = FakeEngine(toy_task(), reply=lambda ask: None)
    seed = engine.candidate("Answer.", operator="seed", generation=0)
    with pytest.raises(EngineMisuse, match="seed"):
        engine.candidate("Answer again.", operator="seed", generation=1, parents=[seed])
    with pytest.raises(EngineMisuse, match="kind"):
        engine.candidate("x", operator="m1", generation=1, kind="essay")  # type: ignore[arg-type]
    with pytest.raises(EngineMisuse, match="island"):
        engine.candidate("x", operator="m1", generation=1, island=-1)
    with pytest.raises(EngineMisuse, match="rejection reason"):
        engine.reject("m1", "felt_wrong")  # type: ignore[arg-type]
    with pytest.raises(EngineMisuse, match=r"state\['population'\] is a set"):
        checked_state({"population": {"a", "b"}})
    with pytest.raises(EngineMisuse, match="not a string"):
        checked_state({"fitness": {1: 0.5}})
    with pytest.raises(EngineMisuse, match="nan"):
        checked_state({"best": float("nan")})
    assert checked_state({"a": [1, 2.5, None, "x", True]}) == {"a": [1, 2.5, None, "x", True]}


async def test_the_driver_stores_kind_island_and_the_call_behind_each_candidate(
    store: Store,
) -> None:
    driver = run_toy(store, {"algorithm": {"name": "evoprompt-ga", "population": 4,
                                           "generations": 1}})
    await driver.run()
    cands = store.candidates(driver.job_id)
    assert {c.kind for c in cands} == {"prompt"} and {c.island for c in cands} == {0}
    made = [c for c in cands if c.operator != "seed"]
    assert made and all("made_by" in c.meta for c in made)  # paraphrases too
    for c in made:
        answer = store.paid_response(driver.job_id, c.meta["made_by"])
        assert answer is not None and c.text in answer["text"]
    # an island is recorded as given
    other = run_toy(store, {"algorithm": {"name": "evoprompt-ga"}}, job_id="i" * 32)
    jobs.create(store, other.spec, "toy", job_id="i" * 32)
    engine = other.search
    island = engine.candidate("Say yes or no. q=0.5", operator="seed", generation=0, island=2)
    await engine.evaluate([island], "dev")
    await engine.recorder.flush(engine.stats())
    assert [c.island for c in store.candidates("i" * 32)] == [2]
