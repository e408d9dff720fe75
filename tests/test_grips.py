"""GrIPS: the objective, the greedy move, patience and the deleted pool, on the real driver."""

from __future__ import annotations

import math
import re

import pytest

from evo.algorithms.grips import grips_objective
from evo.candidate import Outcome, Score
from evo.llm import LLMRequest
from evo.metrics import get_metric
from storage import Store
from tests.helpers import (
    N_DEV,
    crash_and_resume,
    draw,
    job_record,
    meta_requests,
    quality,
    scripted_job,
)

LABELS = ("yes", "no")


def score_of(pairs: list[tuple[str, str]], failures: tuple[int, ...] = ()) -> Score:
    """A score from (target, prediction) pairs; positions in ``failures`` failed to parse."""
    outcomes = tuple(
        Outcome(f"e{i}", t, p, float(t == p and i not in failures),
                "unparsed" if i in failures else None)
        for i, (t, p) in enumerate(pairs)
    )
    return Score("c", "dev", sum(o.score for o in outcomes) / len(outcomes), len(outcomes), 0,
                 None, outcomes)


def toy_objective(q: float) -> float:
    """What GrIPS should compute for a toy prompt of quality q (see tests.helpers.label_reply)."""
    pairs = []
    for i in range(N_DEV):
        gold = "yes" if i % 2 else "no"
        right = i < round(q * N_DEV)
        pairs.append((gold, gold if right else ("no" if gold == "yes" else "yes")))
    return grips_objective(score_of(pairs), LABELS)


def test_objective_is_balanced_accuracy_plus_weighted_entropy() -> None:
    # 6 "yes" and 2 "no" targets; both predictors are right on 6 of 8
    collapsed = score_of([("yes", "yes")] * 6 + [("no", "yes")] * 2)
    spread = score_of([("yes", "yes")] * 4 + [("yes", "no")] * 2 + [("no", "no")] * 2)
    assert collapsed.value == spread.value == 0.75
    assert grips_objective(collapsed, LABELS) == pytest.approx(0.5)  # recall 1 and 0, no spread
    assert grips_objective(spread, LABELS) == pytest.approx((4 / 6 + 1) / 2 + 0.1 * math.log(2))
    # equal balanced accuracy too: only the entropy term tells them apart
    half = score_of([("yes", "yes"), ("yes", "no"), ("no", "no"), ("no", "yes")])
    one_label = score_of([("yes", "yes"), ("yes", "yes"), ("no", "yes"), ("no", "yes")])
    assert grips_objective(half, LABELS) - grips_objective(one_label, LABELS) == pytest.approx(
        0.1 * math.log(2))
    assert grips_objective(half, LABELS, entropy_weight=0.0) == pytest.approx(0.5)


def test_objective_ignores_unreadable_answers_and_parses_free_text() -> None:
    # two of four answers failed: the spread counts the readable half, scaled by its share
    failed = score_of([("yes", "yes"), ("no", "no"), ("yes", "?"), ("no", "?")], failures=(2, 3))
    assert grips_objective(failed, LABELS) == pytest.approx(0.5 + 0.1 * math.log(2) * 0.5)
    metric = get_metric("label_accuracy", verbalizers={"yes": "Yes", "no": "No"})
    text = score_of([("yes", "Yes, it is."), ("no", "No.")])
    assert grips_objective(text, LABELS, metric.parse) == pytest.approx(0.1 * math.log(2))
    # without labels the objective is the task's own mean score
    plain = Score("c", "dev", 0.42, 3, outcomes=(Outcome("e", "7", "7", 1.0),))
    assert grips_objective(plain, ()) == 0.42


def q_up_to(limit: float):
    """Paraphrase: a phrase carrying q=x comes back as q=x+0.2 (at most ``limit``), any other
    phrase comes back reworded."""
    def meta(request: LLMRequest) -> str:
        phrase = re.search(r"Phrase: (.*)\nNew phrase:$", request.messages[-1].content).group(1)
        if "q=" in phrase:
            q = quality(phrase)
            new = min(limit, q + 0.2) if q < limit else q - 0.1
            return phrase.replace(f"q={q}", f"q={new:.1f}") + "</phrase>"
        return f"kindly {phrase.lower()} s{draw(request)}</phrase>"
    return meta


SEED = "Read the item carefully. Decide with care, q=0.2 here. Reply in one word."


async def test_moves_only_to_a_strictly_better_candidate(store: Store) -> None:
    spec = {"algorithm": {"name": "grips", "edits": ["paraphrase"], "candidates": 3,
                          "iterations": 6, "patience": 6}}
    driver, client, states = scripted_job(spec, q_up_to(0.8), store, seeds=(SEED,))
    await driver.run()
    cands = {c.id: c for c in store.candidates(driver.job_id)}
    assert states[0]["base_score"] == pytest.approx(toy_objective(0.2))
    moves = 0
    for i in range(1, max(states) + 1):
        before, after = states[i - 1], states[i]
        made = [c for c in cands.values() if c.generation == i]
        assert made and all(c.operator == "paraphrase" and c.parents == (before["base"],)
                            for c in made)
        # the objective the algorithm used is the one computed from the outcomes
        for c in made:
            assert after["scores"][c.id] == pytest.approx(toy_objective(quality(c.text)))
            [edit] = c.meta["edits"]
            assert edit["op"] == "paraphrase" and len(edit["at"]) == 1
        best = max(made, key=lambda c: after["scores"][c.id])
        if after["scores"][best.id] > before["base_score"]:
            moves += 1
            assert after["base"] == best.id and after["stale"] == 0
        else:
            assert after["base"] == before["base"] and after["stale"] == before["stale"] + 1
    assert moves >= 1 and quality(cands[states[max(states)]["base"]].text) > 0.2
    # one paraphrase call per candidate made (a repeat of a sibling is made, then not scored)
    made_all = [c for c in driver.search.candidates.values() if c.generation > 0]
    assert len(meta_requests(client)) == len(made_all)


async def test_stops_after_patience_iterations_without_improvement(store: Store) -> None:
    # edits keep q or lower it: nothing beats the seed
    spec = {"algorithm": {"name": "grips", "candidates": 4, "iterations": 10, "patience": 2}}
    driver, _, states = scripted_job(spec, q_up_to(0.0), store, seeds=(SEED,))
    result = await driver.run()
    assert result.status == "completed"
    assert sorted(states) == [0, 1, 2]
    assert [states[i]["stale"] for i in (1, 2)] == [1, 2]
    assert states[2]["base"] == states[0]["base"]


async def test_patience_counts_only_consecutive_failures(store: Store) -> None:
    spec = {"algorithm": {"name": "grips", "edits": ["paraphrase"], "candidates": 2,
                          "iterations": 20, "patience": 2}}
    driver, _, states = scripted_job(spec, q_up_to(0.8), store, seeds=(SEED,))
    await driver.run()
    last = max(states)
    assert last < 20 and states[last]["stale"] == 2 and states[last - 1]["stale"] == 1
    for i in range(1, last + 1):
        moved = states[i]["base"] != states[i - 1]["base"]
        assert states[i]["stale"] == (0 if moved else states[i - 1]["stale"] + 1)


async def test_deleted_phrases_come_back_through_add(store: Store) -> None:
    seed = "Start here q=0.2 now. Then the rest, q=0.6 later."  # two phrases; q reads the first
    spec = {"algorithm": {"name": "grips", "edits": ["delete", "add"], "candidates": 4,
                          "iterations": 5, "patience": 2}}
    driver, client, states = scripted_job(spec, q_up_to(0.0), store, seeds=(seed,))
    await driver.run()
    cands = {c.id: c for c in store.candidates(driver.job_id)}
    # iteration 1: deleting the first phrase exposes q=0.6, a strictly better base
    assert cands[states[1]["base"]].text == "Then the rest, q=0.6 later."
    assert states[1]["deleted"] == ["Start here q=0.2 now."]
    assert all(c.operator == "delete" and c.meta["edits"][0]["at"] in ([0], [1])
               for c in cands.values() if c.generation == 1)
    # then one phrase is left: only adding the deleted phrase back is possible, and never better
    later = [c for c in cands.values() if c.generation >= 2]
    assert later and all(c.operator == "add" for c in later)
    for c in later:
        [edit] = c.meta["edits"]
        assert edit["phrase"] == "Start here q=0.2 now." and edit["at"] in ([0], [1])
    assert sorted(states) == [0, 1, 2, 3] and states[3]["deleted"] == states[1]["deleted"]
    assert not meta_requests(client)  # no paraphrase drawn, no meta call


async def test_composed_edits_are_named_together(store: Store) -> None:
    seed = "Read the item. Think about it, then decide. Answer yes or no, q=0.5 here."
    spec = {"algorithm": {"name": "grips", "edits": ["delete", "swap"], "candidates": 5,
                          "edits_per_candidate": 2, "iterations": 1}}
    driver, _, _ = scripted_job(spec, q_up_to(0.0), store, seeds=(seed,))
    await driver.run()
    made = [c for c in store.candidates(driver.job_id) if c.generation == 1]
    assert made
    for c in made:
        ops = [e["op"] for e in c.meta["edits"]]
        assert len(ops) == 2 and c.operator == "+".join(ops)
        assert set(ops) <= {"delete", "swap"}


async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store) -> None:
    spec = {"algorithm": {"name": "grips", "candidates": 3, "iterations": 4, "patience": 4}}
    straight, resumed = await crash_and_resume(spec, q_up_to(0.8), store, (SEED,), crash_at=3)
    assert job_record(store, resumed) == job_record(store, straight)


async def test_without_labels_the_best_seed_on_the_full_split_still_wins(store: Store) -> None:
    """On a task without labels GrIPS's objective is the task's score, so it names no finalists
    of its own: a weak seed that was lucky on the dev subset loses the final to the best seed."""
    import dataclasses

    from evo.task import Task
    from tests.helpers import toy_task

    weak, strong = "Answer. q=0.2", "Reply. q=0.9"
    labelled = toy_task((weak, strong))
    task = Task(name="toy-text", description="say yes or no", template=labelled.template,
                splits=labelled.splits, metric=get_metric("exact_match"), labels=(), verbalizers={},
                seed_prompts=(weak, strong), max_answer_tokens=2)

    def reply(request: LLMRequest) -> str:
        text = request.messages[-1].content
        if "New phrase:" in text:
            return f"kindly answer s{draw(request)}</phrase>"
        i, n = map(int, re.search(r"item (\d+) of (\d+)", text).groups())
        gold = "yes" if i % 2 else "no"
        return gold if i < round(quality(text) * n) else ("no" if gold == "yes" else "yes")

    spec = {"algorithm": {"name": "grips", "iterations": 1, "candidates": 2, "patience": 1,
                          "dev_subset": 4}, "evaluation": {"top_k": 1}, "seed": 4}
    driver, _, _ = scripted_job(spec, reply, store, task=task)
    search = driver.search.evaluate

    async def lucky(cands, split="dev", subset=None):  # the weak seed is lucky on every subset
        scores = await search(cands, split, subset)
        made = driver.search.candidates
        return [dataclasses.replace(s, value=1.0)
                if subset is not None and made[s.candidate_id].text == weak else s
                for s in scores]

    driver.search.evaluate = lucky
    result = await driver.run()
    assert result.seed is not None and result.seed.candidate.text == strong
    assert result.best is not None and result.best.candidate.text == strong
    assert result.best.dev == pytest.approx(0.9)
