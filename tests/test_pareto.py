"""``evaluation.objectives: [score, -prompt_tokens | -cost_per_call]``: the final phase stores the
finalists' Pareto front (score against length or cost per call), the winner stays the best by
score, and the export and the API's job response carry the front."""

from __future__ import annotations

import io
import json

import pytest
import yaml
from pydantic import ValidationError
from rich.console import Console

from api.schemas import JobOut
from evo.app.export import render_export
from evo.app.show import show_job
from evo.candidate import Candidate
from evo.spec import EvaluationSpec, JobSpec
from storage import LLMCallRecord, Store
from tests.driver_helpers import run_toy
from tests.helpers import scripted, toy_task
from workers.final import Entry
from workers.pareto import cost_per_call, front_of, pareto_front, prompt_tokens

# full-dev score is q (the scripted model is right on the first q·n examples); lengths differ
BEST = "q=0.9 Read the input with great care and then answer it."
SHORT = "q=0.5 Answer."
SHORT_LONGER = "q=0.5 Answer now."  # as good as SHORT, longer: dominated
MIDDLING = "q=0.3 Answer the question please now."  # worse and longer than SHORT: dominated
SHORTEST = "q=0.2"
SEEDS = (MIDDLING, SHORT_LONGER, SHORTEST, BEST, SHORT)
FRONT = [BEST, SHORT, SHORTEST]


def test_the_front_keeps_only_points_no_other_beats_on_both() -> None:
    points = [("a", 0.9, 10), ("b", 0.5, 3), ("c", 0.5, 4), ("d", 0.3, 8), ("e", 0.2, 1),
              ("f", 0.9, 12)]
    assert pareto_front(points) == ["a", "b", "e"]


def test_ties_and_duplicates_stay_on_the_front_together() -> None:
    # equal on both: neither dominates the other, both are kept, in the given order
    assert pareto_front([("x", 0.5, 3), ("y", 0.5, 3), ("z", 0.4, 3)]) == ["x", "y"]
    # equal score, lower cost wins; equal cost, higher score wins
    assert pareto_front([("x", 0.5, 4), ("y", 0.5, 3)]) == ["y"]
    assert pareto_front([("x", 0.4, 3), ("y", 0.5, 3)]) == ["y"]
    assert pareto_front([("only", 0.1, 1.0)]) == ["only"]
    assert pareto_front([]) == []


def test_prompt_tokens_counts_words_and_punctuation() -> None:
    assert prompt_tokens("Answer.") == 2
    assert prompt_tokens("q=0.5 Answer now.") == 8
    assert prompt_tokens("") == 0


def test_cost_per_call_is_the_mean_of_a_candidates_task_calls() -> None:
    price = JobSpec.model_validate({"task": "sentiment", "models": {"task": {
        "price": {"input": 2.0, "output": 10.0}}}}).models.task.price
    assert price is not None
    calls = [LLMCallRecord("j", "a", "evaluate", "m", 100, 1),
             LLMCallRecord("j", "a", "evaluate", "m", 300, 1, cached=True),
             LLMCallRecord("j", "a", "evaluate", "m", 999, 0, error="timeout"),
             LLMCallRecord("j", "a", "generate", "m", 5000, 500),
             LLMCallRecord("j", None, "evaluate", "m", 50, 1)]
    assert cost_per_call(calls, price) == {"a": pytest.approx((200 * 2 + 1 * 10) / 1e6)}


def test_a_finalist_without_a_known_cost_is_left_out() -> None:
    board = [Entry(Candidate(cid, f"prompt {cid}", 0, "seed"), dev, 10)
             for cid, dev in (("a", 0.9), ("b", 0.5))]
    front = front_of(board, "-cost_per_call", {"b": 1e-6})
    assert [p["candidate_id"] for p in front] == ["b"]


@pytest.mark.parametrize("evaluation, message", [
    ({"objectives": ["-prompt_tokens"]}, "must include 'score'"),
    ({"objectives": ["score", "score"]}, "twice"),
    ({"objectives": ["score", "-prompt_tokens", "-cost_per_call"]}, "at most 2"),
    ({"objectives": ["score", "length"]}, "objectives"),
])
def test_the_spec_refuses_bad_objectives(evaluation: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EvaluationSpec.model_validate(evaluation)


def test_a_cost_objective_needs_the_task_models_price() -> None:
    with pytest.raises(ValidationError, match=r"models\.task\.price"):
        JobSpec.model_validate({"task": "sentiment",
                                "evaluation": {"objectives": ["score", "-cost_per_call"]}})
    spec = JobSpec.model_validate({"task": "sentiment", "models": {"task": {"price": {
        "input": 1.0}}}, "evaluation": {"objectives": ["score", "-cost_per_call"]}})
    assert spec.evaluation.objectives == ["score", "-cost_per_call"]
    assert EvaluationSpec().objectives == ["score"]


async def run_two_objectives(store: Store, objective: str, job_id: str):
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 5, "generations": 1},
            "evaluation": {"top_k": 5, "objectives": ["score", objective]},
            "models": {"task": {"provider": "scripted", "price": {"input": 1.0}}}}
    # the meta-model writes nothing usable: the finalists are the seed prompts, scores known
    driver = run_toy(store, spec, reply=scripted(lambda request: ""), task=toy_task(SEEDS),
                     job_id=job_id)
    return await driver.run()


async def test_a_length_objective_hands_back_the_known_front(store: Store) -> None:
    result = await run_two_objectives(store, "-prompt_tokens", "p" * 32)
    front = result.stats["pareto"]
    assert [p["text"] for p in front] == FRONT
    assert [p["score"] for p in front] == [0.9, 0.5, 0.2]
    assert [p["prompt_tokens"] for p in front] == [prompt_tokens(t) for t in FRONT]
    assert result.best is not None and result.best.candidate.text == BEST  # best by score
    job = store.get_job(result.job_id)
    assert job is not None and job.stats["pareto"] == front
    # the export lists the front with each prompt's score and cost per use
    data = json.loads(render_export(store, job, "json"))
    assert data["pareto"] == front
    assert yaml.safe_load(render_export(store, job, "yaml"))["pareto"] == front
    md = render_export(store, job, "md")
    assert "## Pareto front" in md and "| 0.500 | 7 | q=0.5 Answer. |" in md
    assert "q=0.3" not in md.split("## Pareto front")[1]
    # evo show prints it
    console = Console(file=io.StringIO(), width=160)
    show_job(console, store, job)
    shown = console.file.getvalue().split("Pareto front")[1]
    assert "q=0.5 Answer." in shown and "q=0.5 Answer now." not in shown and "q=0.3" not in shown
    # the API's job response carries it
    out = JobOut.of(job)
    assert out.pareto is not None
    assert [(p.score, p.prompt_tokens, p.text) for p in out.pareto] == [
        (p["score"], p["prompt_tokens"], p["text"]) for p in front]


async def test_a_cost_objective_reads_the_cost_per_call_from_the_ledger(store: Store) -> None:
    result = await run_two_objectives(store, "-cost_per_call", "c" * 32)
    front = result.stats["pareto"]
    assert [p["text"] for p in front] == FRONT
    costs = [p["cost_per_call"] for p in front]
    # the scripted model bills one token per word: a longer prompt costs more per call
    assert costs[0] > costs[1] > costs[2] > 0
    per_call = cost_per_call(store.llm_calls(result.job_id), JobSpec.model_validate(
        {"task": "sentiment", "models": {"task": {"price": {"input": 1.0}}}}).models.task.price)
    assert costs == [per_call[p["candidate_id"]] for p in front]
    assert JobOut.of(store.get_job(result.job_id)).pareto[0].cost_per_call == costs[0]


async def test_one_objective_stores_no_front(store: Store) -> None:
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 5, "generations": 1},
            "evaluation": {"top_k": 5}}
    result = await run_toy(store, spec, reply=scripted(lambda request: ""),
                           task=toy_task(SEEDS), job_id="o" * 32).run()
    assert "pareto" not in result.stats
    job = store.get_job(result.job_id)
    assert "pareto" not in json.loads(render_export(store, job, "json"))
    assert JobOut.of(job).pareto is None
