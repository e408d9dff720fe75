"""EvoPrompting: its rules on the in-memory engine; its jobs on the real driver and sandbox."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from evo.algorithms import get_algorithm
from evo.algorithms.evoprompting import EvoPrompting, EvoPromptingParams
from evo.candidate import Candidate
from evo.llm import LLMRequest
from evo.problems.binpacking import BEST_FIT, bin_packing
from evo.spec_io import SpecError, parse_spec
from evo.testing import Ask, FakeEngine
from storage import Store
from tests.helpers import crash_and_resume, draw, job_record, meta_requests, scripted_job

# A child's fitness is written into its code: the weight w scores -1/w (objective 1/w, lower is
# better), so a heavier child is a better one. The seeds score -1 (best fit) and -2 (first fit).
CHILD = "import numpy as np\n\ndef priority(item, bins):\n    return -(bins - item) * {w}\n"
_W = re.compile(r"\* (\d+)")
SHOWN = re.compile(r"Program (\d+), score ([0-9.]+):\n```python\n(.*?)\n```", re.S)
TARGET = re.compile(r"Program (\d+), target score ([0-9.]+):$")


def fitness(cand: Candidate, split: str) -> float:
    if m := _W.search(cand.text):
        return -1 / int(m.group(1))
    return -1.0 if cand.text == BEST_FIT.code else -2.0


def counting_reply() -> Callable[[Ask], str]:
    """Each answer a new program, heavier than the last."""
    count = itertools.count(2)
    return lambda ask: CHILD.format(w=next(count))


async def run(params: EvoPromptingParams, reply: Callable[[Ask], str | None],
              **kw: Any) -> FakeEngine:
    engine = FakeEngine(bin_packing(items=20), reply=reply, fitness=fitness, **kw)
    await EvoPrompting(params).run(engine)
    return engine


def by_code(engine: FakeEngine) -> dict[str, Candidate]:
    return {c.text.strip(): c for c in engine.made}


async def test_the_prompt_shows_scored_parents_worst_first_then_a_better_target() -> None:
    reply = counting_reply()
    params = EvoPromptingParams(rounds=2, prompts=3, parents=2, children=2, survivors=3,
                                target_gain=0.25)
    engine = await run(params, reply)
    assert engine.asked
    made = by_code(engine)
    for ask in engine.asked:
        # the answer starts in a code block, after the signature's imports
        assert ask.prefill == "```python\nimport numpy as np\n"
        assert (ask.stop, ask.purpose) == (("```",), "cross_mut")
        shown = SHOWN.findall(ask.prompt)
        assert [int(n) for n, _, _ in shown] == [1, 2]  # two parents, each with its code
        scores = [float(s) for _, s, _ in shown]
        for _, score, code in shown:  # the score shown is the program's objective (1/w)
            assert float(score) == pytest.approx(-fitness(made[code.strip()], "train"), abs=1e-4)
        assert scores == sorted(scores, reverse=True)  # worst (highest objective) first
        target = TARGET.search(ask.prompt)
        assert target is not None and target.group(1) == "3"  # the prompt ends asking for it
        # better than the best shown by the share asked for: lower, as lower is better here
        assert float(target.group(2)) == pytest.approx(min(scores) * 0.75, abs=1e-4)
        assert "lower is better" in ask.prompt and "average excess bins" in ask.prompt
    # each child records the target it was asked for, and the parents it was shown
    children = [c for c in engine.made if c.operator == "cross_mut"]
    assert children and all(len(c.parents) == 2 and "target" in c.meta for c in children)


async def test_the_fittest_survive_and_are_the_only_parents_of_the_next_round() -> None:
    reply = counting_reply()
    params = EvoPromptingParams(rounds=3, prompts=2, parents=2, children=2, survivors=3)
    engine = await run(params, reply)
    assert [g for g, _, _ in engine.checkpoints] == [0, 1, 2, 3]
    score = {c.id: fitness(c, "train") for c in engine.made}
    population: list[str] = []
    for g, ids, state in engine.checkpoints:
        made_now = [c.id for c in engine.made if c.generation == g]
        pool = list(dict.fromkeys(population + made_now))
        assert ids == sorted(pool, key=lambda i: -score[i])[:3]  # the fittest 3, best first
        assert state["population"] == ids
        for c in engine.made:
            if c.generation == g + 1:
                assert set(c.parents) <= set(ids)  # only survivors are shown as examples
        population = ids
    # heavier children keep coming, so the last population is all children of the last rounds
    last = engine.checkpoints[-1][1]
    assert all(engine.lookup([i])[0].operator == "cross_mut" for i in last)


async def test_rounds_prompts_children_and_parents_are_the_papers_knobs() -> None:
    reply = counting_reply()
    params = EvoPromptingParams(rounds=2, prompts=4, parents=3, children=3, survivors=5)
    engine = await run(params, reply)
    assert len(engine.asked) == 2 * 4 * 3  # rounds × prompts × children
    # each prompt asks for `children` samples at once: they come in runs of one prompt
    prompts = [a.prompt for a in engine.asked]
    groups = [prompts[i:i + 3] for i in range(0, len(prompts), 3)]
    assert all(len(set(g)) == 1 for g in groups)
    # round 1 has only the two seeds to show; round 2 shows three distinct survivors
    assert {len(SHOWN.findall(g[0])) for g in groups[:4]} == {2}
    assert {len(SHOWN.findall(g[0])) for g in groups[4:]} == {3}
    for g in groups[4:]:
        codes = [code for _, _, code in SHOWN.findall(g[0])]
        assert len(set(codes)) == 3
    assert [len(ids) for _, ids, _ in engine.checkpoints] == [2, 5, 5]
    defaults = EvoPromptingParams()
    assert (defaults.rounds, defaults.prompts, defaults.parents, defaults.children) == (
        10, 10, 2, 16)


async def test_unusable_answers_are_counted_and_never_scored() -> None:
    answers = iter([
        "def priority(item, bins)\n    return bins\n",  # does not parse
        CHILD.format(w=5),
        CHILD.format(w=5),  # a sibling's code again
        BEST_FIT.code,  # a parent's code again
        None,  # the call failed
        "x = 1\n",  # no function
    ])

    def reply(ask: Ask) -> str | None:
        return next(answers, CHILD.format(w=9))

    params = EvoPromptingParams(rounds=1, prompts=1, parents=2, children=6)
    engine = await run(params, reply)
    assert engine.rejections == {"cross_mut:syntax_error": 2, "cross_mut:duplicate": 1,
                                 "cross_mut:unchanged": 1, "cross_mut:call_failed": 1}
    scored = {s.candidate_id for s in engine.scored}
    children = [c for c in engine.made if c.operator == "cross_mut"]
    assert [c.text.strip() for c in children if c.id in scored] == [CHILD.format(w=5).strip()]


async def test_the_prefilled_imports_are_part_of_the_program_once() -> None:
    answers = iter([
        "\ndef priority(item, bins):\n    return -np.abs(bins - item) * 3\n",
        CHILD.format(w=4),  # the import written again by the model: not doubled
        # an endpoint that cannot continue an answer writes the code block itself
        "```python\ndef priority(item, bins):\n    return -np.abs(bins - item) * 5\n",
    ])
    engine = await run(EvoPromptingParams(rounds=1, prompts=1, children=3),
                       lambda ask: next(answers))
    children = [c.text for c in engine.made if c.operator == "cross_mut"]
    assert children == [
        "import numpy as np\n\ndef priority(item, bins):\n    return -np.abs(bins - item) * 3",
        CHILD.format(w=4).strip(),
        "import numpy as np\n\ndef priority(item, bins):\n    return -np.abs(bins - item) * 5",
    ]


def test_the_target_is_better_in_either_direction() -> None:
    algo = EvoPrompting(EvoPromptingParams(target_gain=0.1))
    task = bin_packing(items=10)
    # fitness is higher-is-better: a minimized objective of 0.05 is fitness -0.05
    assert algo.target(task, -0.05) == pytest.approx(-0.045)
    assert algo.target(replace(task, direction="maximize"), 0.5) == pytest.approx(0.55)
    # and the prompt says which way is better
    engine = FakeEngine(task, reply=lambda ask: None)
    seeds = [engine.candidate(s.code, operator="seed", generation=0) for s in task.seeds]
    scores = {seeds[0].id: 0.5, seeds[1].id: 0.25}
    prompt = algo.prompt(replace(task, direction="maximize"), seeds, scores)
    assert "higher is better" in prompt
    assert [s for _, s, _ in SHOWN.findall(prompt)] == ["0.2500", "0.5000"]
    assert prompt.endswith("Program 3, target score 0.5500:")


def test_the_spec_reader_refuses_bad_settings_naming_the_field() -> None:
    assert get_algorithm("evoprompting") is EvoPrompting
    with pytest.raises(SpecError) as err:
        parse_spec({"task": "binpacking",
                    "algorithm": {"name": "evoprompting", "children": 0, "target_gain": 0}})
    text = str(err.value)
    assert "algorithm.children" in text and "algorithm.target_gain" in text
    with pytest.raises(SpecError) as err:
        parse_spec({"task": "sentiment", "algorithm": {"name": "evoprompting"}})
    assert "evoprompting searches programs" in str(err.value)
    spec = parse_spec({"task": "tsp", "algorithm": {"name": "evoprompting", "rounds": 2}})
    assert spec.algorithm.name == "evoprompting"


# ---- on the real driver and sandbox, with a scripted optimizer model ---------------------------

# A bin whose leftover after the item is about the size of a typical item (the Weibull(3, 45)
# items are around 40) is worth more than best fit says: a later item will likely fill it, while
# a leftover of a few units is lost. The bonus is shaped like the item-size density.
WEIBULL_FIT = """import numpy as np

def priority(item, bins):
    left = bins - item
    x = np.maximum(left, 1e-9) / 40.0
    return -left + 70.0 * x ** 2 * np.exp(-x ** 3) * (left > 0)
"""
WORST_FIT = "import numpy as np\n\ndef priority(item, bins):\n    return bins - item\n"
BROKEN = "def priority(item, bins)\n    return bins\n"


def proposer(request: LLMRequest) -> str:
    """Among each prompt's samples: one that does not parse, a worse rule, a copy of best fit,
    and the better Weibull-shaped rule."""
    return [BROKEN, WORST_FIT, BEST_FIT.code, WEIBULL_FIT][request.sample % 4]


PROPOSER_SPEC = {
    "task": "binpacking",
    "algorithm": {"name": "evoprompting", "rounds": 2, "prompts": 2, "parents": 2, "children": 4,
                  "survivors": 2},
    "evaluation": {"top_k": 2},
}


async def test_a_better_heuristic_among_the_samples_is_found_kept_and_returned(
    store: Store,
) -> None:
    task = bin_packing()  # the built-in instances
    driver, client, states = scripted_job(PROPOSER_SPEC, proposer, store, task=task)
    result = await driver.run()
    assert result.status == "completed"
    cands = {c.id: c for c in store.candidates(driver.job_id)}
    found = [c for c in cands.values() if c.text.strip() == WEIBULL_FIT.strip()]
    assert len(found) == 1 and found[0].generation == 1  # written once; repeats were rejected
    good = found[0]
    assert good.operator == "cross_mut" and len(good.parents) == 2
    train = {e.candidate_id: e.value for e in store.evaluations(driver.job_id)
             if e.split == "train" and e.n > 0}
    seed = next(c for c in cands.values() if c.text == BEST_FIT.code)
    assert train[good.id] > train[seed.id]  # fewer excess bins than best fit on train
    # kept: the best survivor of every round after it appeared ...
    assert [states[g]["population"][0] for g in (1, 2)] == [good.id, good.id]
    # ... and shown, with its score, as a few-shot example in every prompt of the next round
    second = [r for r in meta_requests(client) if draw(r).startswith("1.")]
    score = f"score {-train[good.id]:.4f}:\n```python\n{WEIBULL_FIT.strip()}"
    assert second and all(score in r.messages[-1].content for r in second)
    # returned: the job's winner, better than the best-fit seed on the full dev split
    assert result.best is not None and result.best.candidate.text.strip() == WEIBULL_FIT.strip()
    seed_dev = next(e.value for e in store.evaluations(driver.job_id)
                    if e.candidate_id == seed.id and e.split == "dev")
    assert result.best.dev > seed_dev
    seed_test = next(e.value for e in store.evaluations(driver.job_id)
                     if e.candidate_id == seed.id and e.split == "test")
    assert result.best.test > seed_test
    rejected = result.stats["rejected"]
    assert rejected["cross_mut:syntax_error"] >= 4 and rejected["cross_mut:unchanged"] >= 4


async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store) -> None:
    spec = {**PROPOSER_SPEC, "algorithm": {**PROPOSER_SPEC["algorithm"], "rounds": 3,
                                           "survivors": 3}}
    straight, resumed = await crash_and_resume(spec, proposer, store, None, crash_at=3,
                                               task=bin_packing(items=60))
    assert job_record(store, resumed) == job_record(store, straight)


def test_the_sample_counts_of_the_bench_script(tmp_path) -> None:
    from bench.program_samples import run as count_samples
    from workers.scripted import ScriptedClient

    client = ScriptedClient(proposer)
    record = count_samples("binpacking", "evoprompting",
                           ["algorithm.rounds=1", "algorithm.prompts=1", "algorithm.children=4"],
                           f"sqlite:///{tmp_path / 'job.db'}", {"task": client, "meta": client})
    # broken, worst fit, a copy of best fit, the Weibull-shaped rule
    assert (record["samples"], record["valid"], record["new"], record["ran"]) == (4, 3, 2, 2)
    assert (record["equal_to_seed"], record["better"]) == (0, 1)
    assert record["seed"] == BEST_FIT.code.strip()
    assert record["best_score"] > record["seed_score"]
    assert record["winner"] == WEIBULL_FIT.strip() and record["winner_dev"] > record["seed_dev"]
    # best against samples: the seeds before any sample, the Weibull-shaped rule after round 1
    assert record["curve"] == [(0, record["seed_score"]), (4, record["best_score"])]


def test_the_best_against_samples_of_the_bench_script() -> None:
    from bench.program_samples import best_curve

    ran = [(1, -0.5), (2, -0.2), (2, -0.4), (4, -0.3)]  # generation, score (higher is better)
    ends = [(0, 0), (1, 8), (2, 16), (3, 24), (4, 32)]
    assert best_curve(ends, ran, -0.3) == [(0, -0.3), (8, -0.3), (16, -0.2), (24, -0.2),
                                           (32, -0.2)]
    assert best_curve(ends[1:], [], -0.3) == [(8, -0.3), (16, -0.3), (24, -0.3), (32, -0.3)]
