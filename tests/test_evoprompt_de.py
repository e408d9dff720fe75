"""EvoPrompt-DE: donors and parent order, one call per member, strict replacement, batching."""

from __future__ import annotations

import itertools
import re

from evo.algorithms.evoprompt_de import DEParams, EvoPromptDE
from evo.llm import LLMRequest
from evo.testing import Ask, FakeEngine
from storage import Store
from tests.helpers import (
    crash_and_resume,
    draw,
    job_record,
    meta_requests,
    quality,
    scripted_job,
    toy_task,
)

SEEDS = ("First way. q=0.1", "Second way. q=0.2", "Third way. q=0.3", "Fourth way. q=0.4")
FIELDS = re.compile(
    r"Task: .*\nInstruction 1: (.*)\nInstruction 2: (.*)\nBest instruction: (.*)\n"
    r"Current instruction: (.*)$"
)


def de_fields(request: LLMRequest | Ask) -> tuple[str, str, str, str]:
    """(p_r1, p_r2, p_best, p_i) as the request shows them."""
    return FIELDS.search(request.messages[-1].content).groups()


def de_meta(request: LLMRequest | Ask) -> str:
    """A trial worse than p_i for q=0.1, as good for q=0.2, better (+0.3) otherwise."""
    current = de_fields(request)[3]
    q = quality(current)
    new = {0.1: 0.05, 0.2: 0.2}.get(q, min(1.0, q + 0.3))
    sample = draw(request) if isinstance(request, LLMRequest) else ""
    return f"Trial from {current.split('.')[0]}. q={new:.2f} s{sample}</prompt>"


async def test_one_call_per_member_with_parents_in_order(store: Store) -> None:
    spec = {"algorithm": {"name": "evoprompt-de", "population": 4, "generations": 2}}
    driver, client, states = scripted_job(spec, de_meta, store, seeds=SEEDS)
    evaluations = count_evaluate_calls(driver)
    result = await driver.run()
    assert result.status == "completed"
    cands = {c.id: c for c in store.candidates(driver.job_id)}
    by_text = {c.text: c.id for c in cands.values()}
    requests = meta_requests(client)
    assert len(requests) == 4 * 2  # one meta call per member per generation, no paraphrases
    assert evaluations == [4, 4, 4]  # the seeds, then each generation's trials in one batch

    fitness = {e.candidate_id: e.value for e in store.evaluations(driver.job_id, split="dev")
               if e.generation is not None}
    for t in (1, 2):
        population = states[t - 1]["population"]
        best = max(population, key=lambda i: fitness[i])
        trials = [c for c in cands.values() if c.generation == t]
        assert len(trials) == 4 and all(c.operator == "de" for c in trials)
        assert sorted(c.parents[0] for c in trials) == sorted(population)  # one per p_i
        for c in trials:
            p_i, p_best, r1, r2 = c.parents
            assert p_best == best
            assert len({p_i, r1, r2}) == 3 and {r1, r2} <= set(population)
        # the request a trial came from shows its parents in their roles
        for r in requests[(t - 1) * 4 : t * 4]:
            shown_r1, shown_r2, shown_best, shown_i = (by_text[s] for s in de_fields(r))
            [trial] = [c for c in trials if c.parents[0] == shown_i]
            assert trial.parents == (shown_i, shown_best, shown_r1, shown_r2)


async def test_replaces_a_member_only_when_its_trial_is_strictly_better() -> None:
    # the method's logic alone, on the in-memory engine
    asked = itertools.count()
    engine = FakeEngine(toy_task(SEEDS), fitness=lambda c, split: quality(c.text),
                        reply=lambda ask: de_meta(ask).replace("</prompt>", f"{next(asked)}"))
    await EvoPromptDE(DEParams(population=4, generations=1)).run(engine)
    cands = {c.id: c for c in engine.made}
    (_, before, _), (_, after, _) = engine.checkpoints
    # slot order is kept: each member is replaced in place or survives
    assert [cands[i].text for i in before] == list(SEEDS)
    survived = [cands[i].text for i in after[:2]]
    assert survived == ["First way. q=0.1", "Second way. q=0.2"]  # worse trial, equal trial
    for old, new in zip(before[2:], after[2:], strict=True):
        assert cands[new].operator == "de" and cands[new].parents[0] == old
        assert quality(cands[new].text) > quality(cands[old].text)


async def test_population_is_topped_up_with_paraphrases_as_in_ga(store: Store) -> None:
    def meta(request: LLMRequest) -> str:
        text = request.messages[-1].content
        if "Rewritten:" in text:
            return f"Said again. q={quality(text.rsplit('Instruction:', 1)[1]):.1f}</prompt>"
        return de_meta(request)

    spec = {"algorithm": {"name": "evoprompt-de", "population": 3, "generations": 1}}
    driver, _, states = scripted_job(spec, meta, store, seeds=SEEDS[:2])
    await driver.run()
    cands = {c.id: c for c in store.candidates(driver.job_id)}
    assert [cands[i].operator for i in states[0]["population"]] == ["seed", "seed", "paraphrase"]
    assert len([c for c in cands.values() if c.operator == "de"]) == 3


async def test_written_steps_end_in_the_final_prompt(store: Store) -> None:
    def meta(request: LLMRequest) -> str:
        assert request.prefill == "1. Differences:"
        q = quality(de_fields(request)[3])
        return (f' "First" / "Second"\n2. Changed: "Other"\n3. Into Best: Other way.\n'
                f"4. Final: <prompt>Other way, q={q + 0.3:.1f} s{draw(request)}</prompt>")

    spec = {"algorithm": {"name": "evoprompt-de", "population": 4, "generations": 1,
                          "write_steps": True}}
    driver, _, _ = scripted_job(spec, meta, store, seeds=SEEDS)
    await driver.run()
    trials = [c for c in store.candidates(driver.job_id) if c.generation == 1]
    assert len(trials) == 4
    assert all(re.fullmatch(r"Other way, q=0\.\d s[\d.]+", c.text) for c in trials)


async def test_steps_without_a_final_prompt_are_rejected(store: Store) -> None:
    spec = {"algorithm": {"name": "evoprompt-de", "population": 4, "generations": 1,
                          "write_steps": True, "attempts": 2}}
    driver, client, states = scripted_job(spec, lambda r: " none\n2. Changed:", store,
                                          seeds=SEEDS)
    result = await driver.run()
    assert result.stats["rejected"] == {"de:no_final_prompt": 8}  # two tries per member
    assert len(meta_requests(client)) == 8
    assert states[1]["population"] == states[0]["population"]


async def test_run_on_fields_are_cut_and_copies_of_the_example_rejected(store: Store) -> None:
    def meta(request: LLMRequest) -> str:
        current = de_fields(request)[3]
        if current.startswith("First"):  # the worked example's answer, copied
            return "State whether the given zorb below is a wug or a dax, in one word.</prompt>"
        if current.startswith("Second"):  # a parent, followed by an echoed field
            return f"{de_fields(request)[0]} Instruction 2: {current}</prompt>"
        return f"Fresh way. q=0.9 Current instruction: {current}</prompt>"

    spec = {"algorithm": {"name": "evoprompt-de", "population": 4, "generations": 1,
                          "attempts": 1}}
    driver, _, _ = scripted_job(spec, meta, store, seeds=SEEDS)
    result = await driver.run()
    assert result.stats["rejected"] == {"de:unchanged": 2}
    trials = [c.text for c in store.candidates(driver.job_id) if c.generation == 1]
    assert trials == ["Fresh way. q=0.9", "Fresh way. q=0.9"]


async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store) -> None:
    spec = {"algorithm": {"name": "evoprompt-de", "population": 4, "generations": 3}}
    straight, resumed = await crash_and_resume(spec, de_meta, store, SEEDS, crash_at=3)
    assert job_record(store, resumed) == job_record(store, straight)


def count_evaluate_calls(driver) -> list[int]:
    """How many candidates each ``engine.evaluate`` call carried, in order."""
    sizes: list[int] = []
    original = driver.search.evaluate

    async def evaluate(candidates, split="dev", subset=None):
        sizes.append(len(candidates))
        return await original(candidates, split, subset)

    driver.search.evaluate = evaluate
    return sizes
