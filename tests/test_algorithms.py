"""Algorithm logic, checked on the real driver with a scripted model whose fitness is known."""

from __future__ import annotations

import random
import re
import zlib
from collections import Counter

import pytest

from evo.llm import LLMRequest
from evo.selection import roulette, top_k
from evo.spec_io import parse_spec
from storage import Store
from tests.helpers import (
    draw,
    job_record,
    meta_requests,
    quality,
    scripted,
    scripted_job,
    toy_task,
)
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.pool import LocalWorker, Pool
from workers.scripted import ScriptedClient


def make_driver(spec: dict, reply, store: Store, seeds=None) -> tuple[Driver, ScriptedClient]:
    client = ScriptedClient(reply)
    pool = Pool([LocalWorker(client)], model="scripted")
    job = _spec(spec)
    task = toy_task(seeds) if seeds else toy_task()
    driver = Driver(job, task, store=store, task_pool=pool, meta_pool=pool, cache=MemoryCache(),
                    job_id=f"job{random.random():.12f}"[5:])
    return driver, client


def _spec(spec: dict):
    from evo.spec import JobSpec

    base = {"task": "toy", "evaluation": {"top_k": 2}, "budget": {"calls": 100_000}}
    merged = {**base, **spec}
    parsed = JobSpec.model_validate(merged)
    # validate the algorithm's own parameters the same way the CLI does (task name aside)
    parse_spec({**merged, "task": "sentiment"})
    return parsed


def test_roulette_draws_in_proportion_to_fitness() -> None:
    rng = random.Random(0)
    counts = Counter(roulette(rng, ["a", "b", "c"], [0.1, 0.3, 0.6], 1)[0] for _ in range(20000))
    assert abs(counts["a"] / 20000 - 0.1) < 0.02
    assert abs(counts["c"] / 20000 - 0.6) < 0.02
    pair = roulette(rng, ["a", "b"], [0.0, 0.0], 2)
    assert sorted(pair) == ["a", "b"]  # distinct, even with zero fitness


def test_top_k_is_stable() -> None:
    assert top_k(["a", "b", "c", "d"], [0.5, 0.9, 0.5, 0.1], 3) == ["b", "a", "c"]


def ga_meta(request: LLMRequest) -> str:
    """Paraphrase: same quality plus 0.05; crossover: the better parent's quality plus 0.1."""
    text = request.messages[-1].content
    qs = [float(x) for x in re.findall(r"q=([0-9.]+)", text)]
    if "Instruction A" in text:
        return f"Child of both. q={min(1.0, max(qs) + 0.1):.2f} s{draw(request)}</prompt>"
    return f"Rephrased. q={qs[0] + 0.05:.2f}</prompt>"


async def test_ga_one_child_per_pair_and_keeps_best_n(store: Store) -> None:
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 3}}
    driver, client = make_driver(spec, scripted(ga_meta), store)
    states = capture_states(driver)
    result = await driver.run()

    cands = store.candidates(driver.job_id)
    gen0 = [c for c in cands if c.generation == 0]
    assert [c.operator for c in gen0] == ["seed", "seed", "paraphrase", "paraphrase"]
    for t in (1, 2, 3):
        children = [c for c in cands if c.generation == t]
        assert len(children) == 4  # N children, one per roulette pair
        assert all(c.operator == "ga_crossover_mutation" and len(c.parents) == 2
                   for c in children)
        assert all(len(set(c.parents)) == 2 for c in children)
    # exactly N crossover calls per generation
    cross = [r for r in client.requests
             if not r.labels and "Instruction A" in r.messages[-1].content]
    assert len(cross) == 12

    # the population after each generation is the best N of parents ∪ children
    fitness = {e.candidate_id: e.value for e in store.evaluations(driver.job_id, split="dev")
               if e.subset is None and e.generation is not None}
    population = [c.id for c in gen0]
    for t in (1, 2, 3):
        state = states[t]
        union = population + [c.id for c in cands if c.generation == t]
        expected = top_k(union, [fitness[i] for i in union], 4)
        assert state["population"] == expected
        population = expected
    assert store.latest_checkpoint(driver.job_id)[1]["algorithm"] == states[3]
    assert result.best is not None and quality(result.best.candidate.text) >= 0.7
    assert result.best.dev == pytest.approx(quality(result.best.candidate.text), abs=0.051)


def capture_states(driver: Driver) -> dict[int, dict]:
    """Record the state each generation hands to the engine (and so to the checkpoint)."""
    states: dict[int, dict] = {}
    original = driver.search.generation_done

    async def done(generation, population, state):
        states[generation] = state
        await original(generation, population, state)

    driver.search.generation_done = done  # type: ignore[method-assign]
    return states


def opro_meta(request: LLMRequest) -> str:
    qs = [float(x) for x in re.findall(r"q=([0-9.]+)", request.messages[-1].content)]
    return f"Try this. q={min(1.0, max(qs) + 0.01 * (request.sample + 1)):.2f} s</prompt>"


async def test_opro_shows_trajectory_ascending_and_samples_eight(store: Store) -> None:
    spec = {"algorithm": {"name": "opro", "steps": 3, "shown": 5, "exemplars": 2}}
    driver, client = make_driver(spec, scripted(opro_meta), store,
                                 seeds=("A. q=0.3", "B. q=0.1", "C. q=0.2"))
    await driver.run()
    metas = [r for r in client.requests if not r.labels]
    by_prompt: dict[str, list[int]] = {}
    for r in metas:
        by_prompt.setdefault(r.messages[-1].content, []).append(r.sample)
    assert len(by_prompt) == 3  # one meta-prompt per step
    for samples in by_prompt.values():
        assert sorted(samples) == list(range(8))  # 8 samples per step
    for text in by_prompt:
        shown = [int(s) for s in re.findall(r"score: (\d+)", text)]
        assert shown == sorted(shown)  # ascending: the best sits last
        assert len(shown) <= 5
        assert "<INS>" in text
    first = next(iter(by_prompt))
    assert re.findall(r"score: (\d+)", first) == ["10", "20", "30"]
    step1 = [c for c in store.candidates(driver.job_id) if c.generation == 1]
    assert step1 and all(c.operator == "opro_step" for c in step1)
    assert all(len(c.parents) == 3 for c in step1)  # parents: the instructions shown


async def test_rejected_rewrites_are_recorded(store: Store) -> None:
    replies = iter(["", "Answer. q=0.2", "   </prompt>"] * 50)

    def meta(request: LLMRequest) -> str:
        return next(replies)

    spec = {"algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1}}
    driver, _ = make_driver(spec, scripted(meta), store)
    result = await driver.run()
    rejected = result.stats["rejected"]
    assert rejected.get("paraphrase:empty", 0) >= 1
    assert rejected.get("paraphrase:unchanged", 0) + rejected.get(
        "ga_crossover_mutation:unchanged", 0) >= 1
    assert result.status == "completed"


@pytest.mark.parametrize("name", ["evoprompt-ga", "evoprompt-de", "gps"])
async def test_a_job_does_not_depend_on_the_order_answers_arrive_in(store: Store,
                                                                    name: str) -> None:
    """The same job again, every answer now from the cache at once (as a resumed job replays
    what it paid for), interleaves its concurrent children quite differently; strands number
    their own asks, so it asks for exactly the same samples and makes the same job."""

    def meta(request: LLMRequest) -> str:  # unusable half the time, so children ask again
        seed = zlib.crc32(f"{draw(request)}{request.messages[-1].content}".encode())
        bad = ["", "Answer. q=0.2", "1 2 3"][seed % 3]
        return [bad, f"New way {seed % 97}. q=0.{seed % 9}"][seed % 2] + "</prompt>"

    spec = {"algorithm": {"name": name, "generations": 2}, "seed": 4}
    spec["algorithm"] |= {"keep": 2} if name == "gps" else {"population": 8}
    cache = MemoryCache()
    records = []
    for _ in range(2):
        driver, client, _ = scripted_job(spec, meta, store, cache=cache)
        await driver.run()
        records.append(job_record(store, driver.job_id))
    assert records[0] | {"calls": 0} == records[1]  # the second job paid for nothing
    assert len(records[0]["candidates"]) > 4
    assert len(meta_requests(client)) == 0


async def test_opro_scores_its_search_on_a_fixed_sample_of_train(store: Store) -> None:
    """OPRO scores the search on the train split, as the paper does: its sample is
    ``train_subset``, beside the ``dev_subset`` of the methods that search on dev."""
    spec = {"algorithm": {"name": "opro", "steps": 2, "samples_per_step": 2,
                          "train_subset": 5}}
    driver, _ = make_driver(spec, scripted(opro_meta), store)
    await driver.run()
    searched = driver.search.scoring.search_scores.values()
    assert searched and {(s.split, s.n) for s in searched} == {("train", 5)}
    assert len({s.subset for s in searched}) == 1  # one sample for the whole job
    stored = {(e.split, e.n) for e in store.evaluations(driver.job_id) if e.subset is not None}
    assert stored == {("train", 5)}


@pytest.mark.parametrize(("algorithm", "given", "meant"), [
    ("opro", "dev_subset", "train_subset"),
    ("evoprompt-ga", "train_subset", "dev_subset"),
])
def test_the_other_methods_sample_name_points_to_this_ones(algorithm: str, given: str,
                                                           meant: str) -> None:
    from evo.spec_io import SpecError

    with pytest.raises(SpecError) as err:
        parse_spec({"task": "sentiment", "algorithm": {"name": algorithm, given: 8}})
    (problem,) = err.value.errors
    assert problem.loc == ("algorithm", given)
    assert problem.message == f"unknown field; did you mean {meant}?"
