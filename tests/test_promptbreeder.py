"""Promptbreeder: the binary tournament, each operator's meta-prompt and parents, hypermutation,
Lamarckian working-outs, crossover, context shuffling; unscored mutation-prompts in the store and
in a winner's family tree; resuming."""

from __future__ import annotations

import io
import itertools
import json
import re
from collections import Counter
from typing import Any

import pytest
from fastapi.testclient import TestClient
from rich.console import Console

from api import create_app
from api.keys import create_key
from evo.algorithms.promptbreeder import OPERATORS, Promptbreeder, PromptbreederParams
from evo.algorithms.promptbreeder_prompts import MUTATION_PROMPTS, THINKING_STYLES
from evo.app.export import render_export
from evo.app.settings import Settings
from evo.app.show import show_job
from evo.candidate import Candidate, Outcome
from evo.llm import LLMRequest
from evo.spec_io import SpecError, parse_spec
from evo.testing import Ask, FakeEngine
from storage import EvaluationRecord, Store
from tests.helpers import (
    crash_and_resume,
    draw,
    job_record,
    quality,
    scripted_job,
    toy_task,
)
from workers.recorder import Recorder

SEEDS = ("First way. q=0.1", "Second way. q=0.2", "Third way. q=0.3", "Fourth way. q=0.4")
TASK = toy_task(SEEDS)
LISTED = re.compile(r"^- (.*)$", re.M)


def listed(prompt: str) -> list[str]:
    """The task-prompts a meta-prompt lists (after its worked example)."""
    return LISTED.findall(prompt.split("Task: ")[-1])


def counter_reply(q: float | None = None) -> Any:
    """Fresh text for each ask; its quality ``q`` (None: varied, 0.05-0.45)."""
    asked = itertools.count()

    def reply(ask: Ask) -> str:
        i = next(asked)
        return f"Variant {i} here. q={q if q is not None else 0.05 + (i % 5) / 10:.2f}</prompt>"

    return reply


def right_on_first(cand: Candidate, split: str) -> list[Outcome]:
    """Correct on the first q·10 dev examples (the toy task's rule), wrong on the rest."""
    q = quality(cand.text)
    return [Outcome(ex.id, ex.target, ex.target if i < round(q * 10) else "wrong",
                    1.0 if i < round(q * 10) else 0.0)
            for i, ex in enumerate(TASK.split(split))]


async def run(generations: int = 1, reply: Any = None, outcomes: Any = right_on_first,
              **params: Any) -> FakeEngine:
    engine = FakeEngine(TASK, reply=reply or counter_reply(),
                        fitness=lambda c, split: quality(c.text), outcomes=outcomes)
    settings = {"population": 4, "crossover_rate": 0.0, **params}
    await Promptbreeder(PromptbreederParams(generations=generations, **settings)).run(engine)
    return engine


def units(engine: FakeEngine, generation: int) -> list[tuple[Candidate, Candidate]]:
    state = next(s for g, _, s in engine.checkpoints if g == generation)
    by_id = {c.id: c for c in engine.made}
    return [(by_id[p], by_id[m]) for p, m in state["units"]]


def in_role(c: Candidate, role: str) -> str | None:
    """The id of the parent that played ``role`` in making ``c`` (``meta["roles"]``)."""
    roles = c.meta.get("roles", [])
    assert len(roles) == len(c.parents)
    return c.parents[roles.index(role)] if role in roles else None


def children(engine: FakeEngine, generation: int) -> list[Candidate]:
    return [c for c in engine.made if c.generation == generation and c.kind == "prompt"]


# ---- the binary tournament ---------------------------------------------------------------


async def test_the_loser_of_each_tournament_is_replaced_by_a_mutant_of_the_winner() -> None:
    # every child (q=0.01) is worse than every parent: it replaces the loser all the same
    engine = await run(reply=counter_reply(0.01), operators=["first_order"])
    before, after = units(engine, 0), units(engine, 1)
    made = children(engine, 1)
    assert len(made) == 2  # four units: two tournaments, one child each
    fitness = {s.candidate_id: s.value for s in engine.scored}
    winners = set()
    for (old, old_m), (new, new_m) in zip(before, after, strict=True):
        if new.id == old.id:  # a winner, or a loser whose winner's mutation failed: not here
            assert new_m.id == old_m.id
            continue
        assert new in made
        winner = next(u for u in before if u[0].id == new.parents[0])
        assert fitness[winner[0].id] >= fitness[old.id]  # the loser made way
        assert new_m.id == winner[1].id  # the child keeps its winner's mutation-prompt
        assert winner in after  # and the winner stays where it was
        winners.add(winner[0].id)
    assert len(winners) == 2 and len({c.parents[0] for c in made}) == 2
    # each unit fought once: the two winners and the two losers are four different units
    replaced = {old.id for (old, _), (new, _) in zip(before, after, strict=True)
                if old.id != new.id}
    assert len(replaced) == 2 and not replaced & winners


async def test_a_failed_mutation_leaves_the_loser_in_place() -> None:
    engine = await run(reply=lambda ask: None, operators=["first_order"])
    assert [u[0].id for u in units(engine, 1)] == [u[0].id for u in units(engine, 0)]
    assert engine.rejections["first_order:call_failed"] == 2


# ---- the operators -----------------------------------------------------------------------


def asks_of(engine: FakeEngine, op: str) -> list[str]:
    return [a.prompt for a in engine.asked if a.purpose == op]


def winner_of(engine: FakeEngine, child: Candidate) -> tuple[Candidate, Candidate]:
    return next(u for u in units(engine, 0) if u[0].id == child.parents[0])


async def test_direct_mutation_zero_order_writes_from_the_task_alone() -> None:
    engine = await run(operators=["zero_order"])
    for prompt in asks_of(engine, "zero_order"):
        assert TASK.description in prompt
        assert not any(s in prompt for s in SEEDS)
    for child in children(engine, 1):
        assert child.operator == "zero_order" and len(child.parents) == 1
        assert in_role(child, "mutation_prompt") is None


async def test_direct_mutation_first_order_applies_the_winners_mutation_prompt() -> None:
    engine = await run(operators=["first_order"])
    asks = asks_of(engine, "first_order")
    made = children(engine, 1)
    assert len(asks) == len(made) == 2
    for child in made:
        task, m = winner_of(engine, child)
        assert child.parents == (task.id, m.id) and in_role(child, "mutation_prompt") == m.id
        assert any(m.text in a and f"Instruction: {task.text}\n" in a for a in asks)


async def test_estimation_of_distribution_lists_the_population_in_random_order() -> None:
    engine = await run(operators=["eda"])
    population = [u[0] for u in units(engine, 0)]
    for prompt in asks_of(engine, "eda"):
        assert sorted(listed(prompt)) == sorted(c.text for c in population)
    for child in children(engine, 1):
        assert set(child.parents) == {c.id for c in population}
        assert in_role(child, "mutation_prompt") is None
    many = await run(generations=4, operators=["eda"], population=6)
    assert len({tuple(listed(p)) for p in asks_of(many, "eda")}) > 1  # shuffled


async def test_ranked_estimation_of_distribution_lists_worst_to_best_after_the_mutation_prompt(
) -> None:
    engine = await run(operators=["eda_rank"])
    population = [u[0] for u in units(engine, 0)]
    worst_first = [c.text for c in sorted(population, key=lambda c: quality(c.text))]
    made = children(engine, 1)
    for prompt, child in zip(asks_of(engine, "eda_rank"), made, strict=True):
        assert listed(prompt) == worst_first
        task, m = winner_of(engine, child)
        assert m.text in prompt
        assert child.parents[:2] == (task.id, m.id) and in_role(child, "mutation_prompt") == m.id
        assert set(child.parents) == {m.id} | {c.id for c in population}


async def test_lineage_mutation_shows_each_generations_best_oldest_first() -> None:
    engine = await run(generations=3, operators=["lineage"], reply=counter_reply(0.9))
    elites = [s["elites"] for _, _, s in engine.checkpoints]
    by_id = {c.id: c for c in engine.made}
    assert elites[0] == [max(units(engine, 0), key=lambda u: quality(u[0].text))[0].id]
    asks = asks_of(engine, "lineage")
    assert len(asks) == 6  # two tournaments a generation
    for g in (1, 2, 3):  # generation g shows the best of each generation before it
        for prompt in asks[2 * (g - 1) : 2 * g]:
            assert listed(prompt) == [by_id[i].text for i in elites[g - 1]]
    assert len(elites[-1]) >= 2  # the better children took over: the line grew
    for child in children(engine, 1):  # the winner, then the lines shown
        winner = child.parents[0]
        assert child.parents == (winner, *[i for i in elites[0] if i != winner])


@pytest.mark.parametrize("op", ["hyper_zero", "hyper_first"])
async def test_hypermutation_changes_the_units_mutation_prompt(op: str) -> None:
    engine = await run(operators=[op], reply=counter_reply(0.9))
    asks = asks_of(engine, op)
    assert len(asks) == 4  # per tournament: the new mutation-prompt, then the task-prompt
    for child in children(engine, 1):
        task, old = winner_of(engine, child)
        [unit] = [u for u in units(engine, 1) if u[0].id == child.id]
        new = unit[1]
        assert new.kind == "mutation_prompt" and new.operator == op and new.generation == 1
        assert new.parents == (old.id,) and new.text != old.text  # its parent: the one replaced
        assert child.parents == (task.id, new.id) and in_role(child, "mutation_prompt") == new.id
        # the new mutation-prompt wrote the child
        assert any(new.text in a and f"Instruction: {task.text}\n" in a for a in asks)
        if op == "hyper_zero":  # from a thinking style and the task
            assert new.meta["thinking_style"] in THINKING_STYLES
            assert any(new.meta["thinking_style"] in a and TASK.description in a for a in asks)
        else:  # from the old mutation-prompt
            assert any(a.startswith("Improve") and f"Rule: {old.text}\n" in a for a in asks)
        assert new in engine.recorded
    # the next generation applies the new mutation-prompts: resumed with first-order mutation
    later = FakeEngine(TASK, reply=counter_reply(), fitness=lambda c, s: quality(c.text))
    later.made = list(engine.made)
    carried = {u[1].text for u in units(engine, 1)}
    params = PromptbreederParams(population=4, generations=2, crossover_rate=0.0,
                                 operators=["first_order"])
    await Promptbreeder(params).run(later, engine.resume_point)
    shown = {m for a in asks_of(later, "first_order") for m in carried if m in a}
    # the children (q=0.9) win their next tournaments, so their new mutation-prompts write
    assert shown & {u[1].text for u in units(engine, 1) if u[1].generation == 1}


async def test_lamarckian_mutation_shows_an_example_the_winner_answered_correctly() -> None:
    engine = await run(generations=2, operators=["lamarckian"])
    dev = {ex.id: ex for ex in TASK.split("dev")}
    asks = asks_of(engine, "lamarckian")
    made = children(engine, 1) + children(engine, 2)
    assert len(asks) == len(made) == 4
    by_id = {c.id: c for c in engine.made}
    for child in made:
        winner = by_id[child.parents[0]]
        right = {o.example_id for o in right_on_first(winner, "dev") if o.score == 1.0}
        ex = dev[child.meta["working_out"]]
        assert ex.id in right  # an example the winner answered correctly ...
        shown = f"Example: {ex.input}\nTheir answer: {TASK.verbalizers[ex.target]}\n"
        assert any(shown in a for a in asks)  # ... shown with the answer it gave
        assert child.parents == (winner.id,)


async def test_lamarckian_mutation_needs_a_correct_working_out() -> None:
    wrong = [Outcome(ex.id, ex.target, "wrong", 0.0) for ex in TASK.split("dev")]
    engine = await run(operators=["lamarckian"], outcomes=lambda c, s: wrong)
    assert engine.asked == [a for a in engine.asked if a.purpose == "init"]  # nothing to show
    assert not children(engine, 1)


async def test_prompt_crossover_takes_a_fitness_proportionate_other_units_task_prompt() -> None:
    engine = await run(generations=1, crossover_rate=1.0)
    assert not [a for a in engine.asked if a.purpose != "init"]  # no meta-LLM call
    made = children(engine, 1)
    assert len(made) == 2
    population = {u[0].id: u[0] for u in units(engine, 0)}
    for child in made:
        winner, donor = child.parents
        assert winner != donor and in_role(child, "donor") == donor
        assert child.text == population[donor].text and child.operator == "crossover"
    # over many draws the fitter donors come up more often (weights 0.1 to 0.4)
    drawn: list[float] = []
    for seed in range(150):
        e = FakeEngine(TASK, reply=counter_reply(), fitness=lambda c, s: quality(c.text),
                       seed=seed)
        params = PromptbreederParams(population=4, generations=1, crossover_rate=1.0)
        await Promptbreeder(params).run(e)
        drawn += [quality(c.text) for c in children(e, 1)]
    assert drawn.count(0.3) > 1.5 * drawn.count(0.1)


async def test_context_shuffling_shows_the_winners_correct_working_outs_first() -> None:
    engine = await run(generations=3, operators=["first_order"], context=2,
                       reply=counter_reply(0.6))
    dev = {ex.id: ex for ex in TASK.split("dev")}
    made = [c for c in engine.made if c.kind == "prompt" and c.generation > 0]
    assert made and all(1 <= len(c.meta["context"]) <= 2 for c in made)
    by_id = {c.id: c for c in engine.made}
    for child in made:
        winner = by_id[child.parents[0]]
        right = {o.example_id for o in right_on_first(winner, "dev") if o.score == 1.0}
        old = [tuple(w) for w in winner.meta.get("context", [])]
        new = [tuple(w) for w in child.meta["context"]]
        assert len(new) == len(set(new))
        # one working-out of the winner's added or swapped in, or all drawn afresh from them
        assert len(set(new) - set(old)) <= 1 or {e for e, _ in new} <= right
        assert {e for e, _ in set(new) - set(old)} <= right
        demos = "\n\n".join(f"Example: {dev[e].input}\nAnswer: {o}" for e, o in new)
        assert child.text == f"{demos}\n\n{child.meta['instruction']}"
        # the mutation worked on the instruction, never on the context
        ask = next(a.prompt for a in engine.asked if a.purpose == "first_order"
                   and f"Instruction: {winner.meta.get('instruction', winner.text)}\n" in a.prompt)
        assert "Answer: yes" not in ask.split("Instruction: ")[-1]


# ---- mutation-prompts: kept, never scored --------------------------------------------------


async def test_mutation_prompts_are_kept_and_never_scored() -> None:
    engine = await run(generations=4, population=6, crossover_rate=0.2)
    kept = {c.id for c in engine.recorded}
    scored = {s.candidate_id for s in engine.scored}
    assert kept and all(c.kind == "mutation_prompt" for c in engine.recorded)
    assert not kept & scored
    ops = {c.operator for c in engine.made}
    assert "initial" in ops and len(ops & set(OPERATORS)) >= 4
    for c in engine.made:
        if c.kind == "prompt" and (m := in_role(c, "mutation_prompt")):
            assert m in kept
    for _, _, state in engine.checkpoints:  # every unit's mutation-prompt is stored
        assert {m for _, m in state["units"]} <= kept
    assert {c.text for c in engine.recorded if c.operator == "initial"} <= set(MUTATION_PROMPTS)


async def test_a_spec_may_replace_the_mutation_prompts_and_thinking_styles() -> None:
    mine = ["Say it backwards.", "Say it louder."]
    styles = ["Think in colours."]
    engine = await run(mutation_prompts=mine, thinking_styles=styles, operators=["hyper_zero"],
                       population=6)
    inits = asks_of(engine, "init")
    assert len(inits) == 2 and all(a.startswith("Think in colours. Say it") for a in inits)
    assert {c.text for c in engine.recorded if c.operator == "initial"} <= set(mine)
    hyper = [a for a in asks_of(engine, "hyper_zero") if not a.startswith("Change an")]
    assert len(hyper) == 3 and all(a.startswith("Think in colours.\n") for a in hyper)


def test_the_spec_reader_refuses_bad_parameters() -> None:
    bad = [({"operators": ["first_order", "mutate"]}, "algorithm.operators.1"),
           ({"operators": []}, "algorithm.operators"),
           ({"mutation_prompts": []}, "algorithm.mutation_prompts"),
           ({"thinking_styles": ["  "]}, "algorithm.thinking_styles.0"),
           ({"crossover_rate": 1.5}, "algorithm.crossover_rate"),
           ({"context": 9}, "algorithm.context")]
    for params, field in bad:
        with pytest.raises(SpecError) as err:
            parse_spec({"task": "sentiment", "algorithm": {"name": "promptbreeder", **params}})
        assert field in str(err.value), (params, str(err.value))
    with pytest.raises(SpecError, match="prompts"):
        parse_spec({"task": "binpacking", "algorithm": {"name": "promptbreeder"}})


# ---- on the driver: the store, the family tree, resuming -----------------------------------


async def test_keep_stores_a_candidate_once_with_its_lineage_and_no_score(store: Store) -> None:
    store.create_job(job_id="j1", name="j", task="toy", algorithm="promptbreeder", spec={},
                     seed=0, status="running")
    recorder = Recorder(store, "j1", None)
    m = Candidate("m1", "Say it shorter.", 0, "initial", kind="mutation_prompt")
    p = Candidate("p1", "Answer. q=0.3", 0, "init", parents=("m1",), meta={"roles": ["x"]})
    recorder.made(m)
    recorder.made(m)  # kept twice: stored once
    recorder.scored(p, EvaluationRecord(candidate_id="p1", split="dev", value=0.3, n=10,
                                        failures=0, subset=None, generation=0))
    recorder.made(p)  # scored already: nothing more
    await recorder.flush({})
    assert [(c.id, c.kind) for c in store.candidates("j1")] == [
        ("m1", "mutation_prompt"), ("p1", "prompt")]
    assert [e.candidate_id for e in store.evaluations("j1")] == ["p1"]
    assert [a.id for a in store.ancestry("p1")] == ["m1"]


def pb_meta(request: LLMRequest) -> str:
    """A task-prompt one step better than the one shown (q + 0.1), fresh text per sample."""
    prompt = request.messages[-1].content
    shown = re.findall(r"q=([0-9.]+)", prompt)
    q = min(0.9, max(map(float, shown), default=0.2) + 0.1)
    return f"Take {draw(request)} of {len(prompt)}. q={q:.2f}</prompt>"


async def test_a_winners_family_tree_reaches_the_mutation_prompts_that_wrote_it(
    store: Store, settings: Settings
) -> None:
    spec = {"algorithm": {"name": "promptbreeder", "population": 4, "generations": 3,
                          "operators": ["hyper_first"], "crossover_rate": 0.0}}
    driver, _, states = scripted_job(spec, pb_meta, store, seeds=SEEDS)
    result = await driver.run()
    assert result.status == "completed"
    job = driver.job_id
    cands = {c.id: c for c in store.candidates(job)}
    mps = {i for i, c in cands.items() if c.kind == "mutation_prompt"}
    evaluated = {e.candidate_id for e in store.evaluations(job)}
    assert mps and not mps & evaluated  # stored, never scored
    assert all(c.operator in ("initial", "hyper_first") for i, c in cands.items() if i in mps)
    for state in states.values():
        assert {m for _, m in state["units"]} <= mps
    # a hypermutated task-prompt of the last generation whose mutation-prompt has a parent
    child = next(c for c in cands.values() if c.generation == 3 and c.kind == "prompt"
                 and cands[in_role(c, "mutation_prompt")].parents)
    writer = cands[in_role(child, "mutation_prompt")]
    auth = {"Authorization": f"Bearer {create_key(store, 'ops', admin=True)[1]}"}
    client = TestClient(create_app(store, settings))
    ancestry = client.get(f"/api/v1/candidates/{child.id}/ancestry", headers=auth)
    assert ancestry.status_code == 200, ancestry.text
    found = {a["id"]: a for a in ancestry.json()["ancestors"]}
    assert writer.id in found and found[writer.id]["kind"] == "mutation_prompt"
    assert set(writer.parents) <= set(found)  # and the mutation-prompt's own ancestry
    shown = client.get(f"/api/v1/candidates/{writer.id}", headers=auth).json()  # its detail
    assert shown["kind"] == "mutation_prompt" and shown["evaluations"] == []
    assert shown["made_by"] is not None and child.id in shown["children"]
    lineage = client.get(f"/api/v1/jobs/{job}/lineage", headers=auth).json()
    nodes = {n["id"]: n for n in lineage["nodes"]}
    assert mps <= set(nodes) and all(nodes[m]["score"] is None for m in mps)
    assert {(e["source"], e["target"]) for e in lineage["edges"]} >= {(writer.id, child.id)}
    # a generation's summary counts the task-prompts it made, not their mutation-prompts
    made = Counter(c.generation for c in cands.values() if c.kind == "prompt")
    assert {g.generation: g.size for g in store.generations(job)} == dict(made)
    assert all(cands[g.best_candidate_id].kind == "prompt" for g in store.generations(job))
    # finalists are task-prompts only; show and export read the job as any other
    assert not {c.id for c, _ in store.leaderboard(job, split="dev", k=50)} & mps
    out = io.StringIO()
    show_job(Console(file=out, width=160), store, store.get_job(job))
    assert "Population per generation" in out.getvalue()
    exported = json.loads(render_export(store, store.get_job(job), "json", top=3))
    assert exported["prompts"] and all(p["candidate_id"] not in mps for p in exported["prompts"])


async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store) -> None:
    spec = {"algorithm": {"name": "promptbreeder", "population": 4, "generations": 3}}
    straight, resumed = await crash_and_resume(spec, pb_meta, store, SEEDS, crash_at=3)
    record = job_record(store, resumed)
    assert record == job_record(store, straight)
    kinds = {c.kind for c in store.candidates(resumed)}
    assert kinds == {"prompt", "mutation_prompt"}
