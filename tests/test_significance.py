"""The winner against the best seed on test: McNemar's exact test, the paired bootstrap interval,
and the sentence a job's leaderboard, `evo show`, the export, the API and the dashboard state;
a prompt whose score is a label bias is called out."""

from __future__ import annotations

import io
import json
import math
import random

import pytest
from rich.console import Console

from evo.app.export import render_export
from evo.app.show import show_job
from evo.llm import LLMRequest
from evo.significance import compare, mcnemar_exact, paired_interval
from evo.spec import JobSpec
from storage import Store
from tests.helpers import N_DEV, label_reply, scripted_job, toy_task
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.pool import LocalWorker, Pool
from workers.scripted import ScriptedClient


def test_mcnemar_exact_by_hand() -> None:
    # b = 1, c = 6: P(X ≤ 1) for X ~ Bin(7, 1/2) is (1 + 7) / 128; two-sided, twice that
    assert mcnemar_exact(1, 6) == pytest.approx(16 / 128)
    assert mcnemar_exact(6, 1) == pytest.approx(16 / 128)
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)
    assert mcnemar_exact(3, 3) == 1.0 and mcnemar_exact(0, 0) == 1.0
    # the case of a reported +5 points on 300 examples: 44 only the winner got right, 29 only
    # the seed
    p = 2 * sum(math.comb(73, i) for i in range(30)) / 2**73
    assert mcnemar_exact(44, 29) == pytest.approx(p) and 0.09 < p < 0.11


def test_a_five_point_gain_on_300_examples_is_not_shown() -> None:
    both, neither = 150, 77
    winner = [1.0] * 44 + [0.0] * 29 + [1.0] * both + [0.0] * neither
    seed = [0.0] * 44 + [1.0] * 29 + [1.0] * both + [0.0] * neither
    found = compare(winner, seed, confidence=0.95, rng=random.Random(1))
    assert (found.n, found.only_winner, found.only_seed, found.test) == (300, 44, 29, "mcnemar")
    assert found.diff == pytest.approx(5.0) and found.low < 0 < found.high
    assert not found.shown
    assert found.sentence().startswith("better than the best seed by +5.0 points, 95% interval [")
    assert found.sentence().endswith(
        "not shown to be better on 300 test examples, McNemar p = 0.1")


def test_a_clear_gain_is_shown_and_other_metrics_use_the_interval() -> None:
    found = compare([1.0] * 30 + [0.0] * 10, [0.0] * 30 + [0.0] * 10, rng=random.Random(2))
    assert found.shown and found.p == pytest.approx(2 * 0.5**30)
    assert "shown to be better on 40 test examples" in found.sentence()
    # a graded metric: the paired bootstrap interval decides
    graded = compare([0.6, 0.7, 0.8, 0.9] * 10, [0.5, 0.6, 0.7, 0.8] * 10, rng=random.Random(3))
    assert graded.test == "bootstrap" and graded.p is None
    assert graded.low == pytest.approx(10.0) and graded.shown  # every difference is +0.1
    low, high = paired_interval([-1.0, 1.0] * 50, 0.9, random.Random(4))
    assert low < 0 < high
    worse = compare([0.0] * 8 + [1.0] * 2, [1.0] * 10, rng=random.Random(5))
    assert worse.sentence().startswith("worse than the best seed by 80.0 points, 95% interval [-")
    assert not worse.shown
    with pytest.raises(ValueError, match="same examples"):
        compare([1.0], [1.0, 0.0])


async def test_a_job_states_the_paired_test_everywhere(store: Store) -> None:
    # seeds right on the first 20% and 40% of every split, every rewrite on the first 70%
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 2, "generations": 1},
            "evaluation": {"top_k": 1}}
    driver, _, _ = scripted_job(spec, lambda r: f"Better, {r.sample}. q=0.7</prompt>", store)
    result = await driver.run()
    assert result.best is not None and result.seed is not None
    assert result.best.candidate.operator != "seed"
    # the per-example outcomes of both are stored, and pair up by example
    winner = store.outcomes(result.best.candidate.id, "test")
    seed = store.outcomes(result.seed.candidate.id, "test")
    assert [o.example_id for o in winner] == [o.example_id for o in seed] and len(winner) == N_DEV
    b = sum(w.score > s.score for w, s in zip(winner, seed, strict=True))
    c = sum(s.score > w.score for w, s in zip(winner, seed, strict=True))
    assert (b, c) == (round(0.7 * N_DEV) - round(0.4 * N_DEV), 0)
    vs = result.stats["vs_seed"]
    assert (vs["only_winner"], vs["only_seed"], vs["same"]) == (b, c, False)
    assert vs["p"] == pytest.approx(2 * 0.5**b)  # every disagreement goes the winner's way
    assert store.get_job(driver.job_id).stats["vs_seed"] == vs
    # the full-dev outcomes of the finalists are kept too
    assert len(store.outcomes(result.best.candidate.id, "dev")) == N_DEV
    sentence = vs["sentence"]
    job = store.get_job(driver.job_id)
    assert f"winner on test: {sentence}" in render_export(store, job, "md")
    exported = json.loads(render_export(store, job, "json"))
    assert exported["versus_seed"] == vs
    assert [o["score"] for o in exported["prompts"][0]["test_outcomes"]] == [
        o.score for o in winner]
    out = io.StringIO()
    show_job(Console(file=out, width=300), store, job)
    assert f"Winner on test: {sentence}." in out.getvalue()


async def test_a_prompt_that_answers_one_label_for_everything_is_called_out(store: Store) -> None:
    def reply(request: LLMRequest) -> str | dict[str, float]:
        text = request.messages[-1].content
        if not request.labels:
            return "Always answer. q=0.9</prompt>"
        if "Always" in text:  # the evolved prompt makes the model say "yes" whatever the input
            return {"yes": 0.0, "no": -3.0}
        return label_reply(request)

    pool = Pool([LocalWorker(ScriptedClient(reply))], model="scripted")
    spec = JobSpec.model_validate({
        "task": "toy", "budget": {"calls": 10_000}, "evaluation": {"top_k": 1},
        "algorithm": {"name": "evoprompt-ga", "population": 2, "generations": 1}})
    driver = Driver(spec, toy_task(), store=store, task_pool=pool, meta_pool=pool,
                    cache=MemoryCache(), job_id="b" * 32)
    result = await driver.run()
    assert result.best is not None and result.best.candidate.text.startswith("Always")
    bias = result.stats["label_bias"]
    half = N_DEV // 2
    assert bias["true"] == {"yes": half, "no": half}
    assert bias["predicted"]["winner"] == {"yes": N_DEV, "no": 0}
    assert sum(bias["predicted"]["seed"].values()) == N_DEV
    # every finalist's answers on the full dev split too, beside the dev labels
    assert bias["dev"]["true"] == {"yes": half, "no": half}
    assert bias["dev"]["finalists"][result.best.candidate.id] == {"yes": N_DEV, "no": 0}
    [warning] = bias["warnings"]
    assert warning.startswith(f"the winner answers 'yes' for {N_DEV} of {N_DEV} test inputs "
                              f"(it is right for {half} of {N_DEV})")
    job = store.get_job(driver.job_id)
    assert f"- warning: {warning}" in render_export(store, job, "md")
    out = io.StringIO()
    show_job(Console(file=out, width=400), store, job)
    assert f"Warning: {warning}." in out.getvalue()
