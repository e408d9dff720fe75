"""Every search method but those run in tests/test_e2e_local.py (EvoPrompt-GA, OPRO, EoH) end to end
on the real bundled model, with tiny settings.

The small model's proposals are often unusable (and then rejected), so these check that a job
completes and that what it recorded carries the expected operator names, not that it improved.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from evo.app.settings import Settings
from storage import Store
from tests.test_e2e_local import small_copy
from workers.runner import optimize

pytestmark = pytest.mark.model


def run_small(tmp_path: Path, algorithm: dict) -> tuple[set[str], set[str]]:
    """Run a job on a six-example copy of the topic task: (operators recorded, call purposes)."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'job.db'}", executor="inprocess")
    spec = {
        "task": small_copy(tmp_path, "topic", n=6),
        "algorithm": algorithm,
        "models": {"task": {"provider": "local", "workers": 1}},
        "evaluation": {"top_k": 1},
        "budget": {"calls": 300},
        "seed": 1,
    }
    result = optimize(spec, settings=settings)
    assert result.status == "completed", result.reason
    assert result.best is not None and result.best.test is not None
    with Store(settings.database_url) as store:
        ops = {c.operator for c in store.candidates(result.job_id)}
        purposes = {c.purpose for c in store.llm_calls(result.job_id)}
    return ops, purposes


def test_gps_on_the_local_model(tmp_path: Path) -> None:
    ops, purposes = run_small(tmp_path, {
        "name": "gps", "keep": 2, "generations": 1, "children_per_generator": 1,
        "languages": ["French"],
    })
    made = {"back_translation(French)", "cloze", "continuation"}
    assert "seed" in ops and ops <= {"seed"} | made
    assert made | {"evaluate"} <= purposes


def test_grips_on_the_local_model(tmp_path: Path) -> None:
    ops, purposes = run_small(tmp_path, {"name": "grips", "iterations": 1, "candidates": 3})
    assert "seed" in ops and len(ops) > 1
    assert ops <= {"seed", "delete", "swap", "paraphrase", "add"}
    assert purposes <= {"evaluate", "paraphrase"}


def test_evoprompt_de_on_the_local_model(tmp_path: Path) -> None:
    ops, purposes = run_small(tmp_path, {
        "name": "evoprompt-de", "population": 3, "generations": 1, "attempts": 1,
    })
    assert "seed" in ops and ops <= {"seed", "paraphrase", "de"}
    assert {"de", "evaluate"} <= purposes


def test_bbt_on_the_local_model(tmp_path: Path) -> None:
    ops, purposes = run_small(tmp_path, {
        "name": "bbt", "generations": 1, "popsize": 2, "dim": 8, "shots": 1,
    })
    assert ops == {"seed", "cma_es"}
    assert purposes == {"evaluate"}
def test_promptbreeder_on_the_local_model(tmp_path: Path) -> None:
    ops, purposes = run_small(tmp_path, {
        "name": "promptbreeder", "population": 4, "generations": 1,
        "operators": ["first_order", "hyper_first"], "crossover_rate": 0.0,
    })
    assert {"seed", "initial"} <= ops
    assert ops <= {"seed", "initial", "init", "first_order", "hyper_first"}
    assert "evaluate" in purposes and purposes & {"first_order", "hyper_first"}


def test_evol_instruct_on_the_local_model(tmp_path: Path) -> None:
    from evo.algorithms.evol_instruct import BREADTH, DEPTH_OPERATORS
    from evo.app.dataset import job_dataset

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'job.db'}", executor="inprocess")
    spec = {
        "task": "arithmetic",  # its train inputs are the seed instructions
        "algorithm": {"name": "evol-instruct", "rounds": 1, "seeds": 2, "max_tokens": 40,
                      "response_tokens": 12},
        "models": {"task": {"provider": "local", "workers": 1}},
        "budget": {"calls": 20},
        "seed": 1,
    }
    result = optimize(spec, settings=settings)
    assert result.status == "completed", result.reason
    assert result.leaderboard == []  # a data set: nothing is scored as a prompt
    with Store(settings.database_url) as store:
        cands = store.candidates(result.job_id)
        purposes = {c.purpose for c in store.llm_calls(result.job_id)}
        data = job_dataset(store, store.get_job(result.job_id))
    assert [c.generation for c in cands] == [0, 0, 1, 1]
    assert {c.operator for c in cands[2:]} <= {*DEPTH_OPERATORS, BREADTH}
    assert "respond" in purposes and purposes <= {"respond", *DEPTH_OPERATORS, BREADTH}
    assert [r.kept + r.eliminated for r in data.rounds] == [2, 2]
    assert all(item.response for item in data.items)


def test_bdpl_on_the_local_model(tmp_path: Path) -> None:
    ops, purposes = run_small(tmp_path, {
        "name": "bdpl", "steps": 1, "samples": 2, "n_tokens": 4, "train_subset": 3,
        "min_count": 1,
    })
    assert ops == {"seed", "bdpl_mode", "bdpl_sample"}
    assert purposes == {"evaluate"}  # label scores alone: no meta-LLM call


def test_funsearch_on_the_local_model_in_completion_mode(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'job.db'}", executor="inprocess")
    result = optimize({
        "task": "binpacking",
        "algorithm": {"name": "funsearch", "generations": 1, "islands": 2, "prompts": 1,
                      "samples_per_prompt": 2, "max_tokens": 96},
        "models": {"task": {"provider": "local", "workers": 1, "mode": "completion"}},
        "evaluation": {"top_k": 1},
        "budget": {"calls": 100},
        "seed": 1,
    }, settings=settings)
    assert result.status == "completed", result.reason
    assert result.best is not None and result.best.test is not None
    with Store(settings.database_url) as store:
        made = [c for c in store.candidates(result.job_id) if c.operator == "best_shot"]
        calls = store.llm_calls(result.job_id)
    assert {c.purpose for c in calls} == {"best_shot"} and len(calls) == 2
    # the small model's functions often fail to run; those that parse are kept as programs,
    # each with the versions its prompt showed as parents
    assert all(c.kind == "program" and len(c.parents) >= 1 for c in made)
    assert {c.island for c in made} <= {0, 1}


def test_evoprompting_on_the_local_model(tmp_path: Path) -> None:
    """One few-shot prompt, two samples, on bin packing: the job ends with a winner (a seed at
    worst) and its only meta-LLM calls are EvoPrompting's."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'job.db'}", executor="inprocess")
    spec = {
        "task": "binpacking",
        "algorithm": {"name": "evoprompting", "rounds": 1, "prompts": 1, "children": 2,
                      "max_tokens": 96},
        "models": {"task": {"provider": "local", "workers": 1}},
        "evaluation": {"top_k": 1},
        "budget": {"calls": 20},
    }
    result = optimize(spec, settings=settings)
    assert result.status == "completed", result.reason
    assert result.best is not None and result.best.test is not None
    with Store(settings.database_url) as store:
        calls = store.llm_calls(result.job_id)
        ops = {c.operator for c in store.candidates(result.job_id)}
    assert [c.purpose for c in calls] == ["cross_mut", "cross_mut"]
    assert "seed" in ops and ops <= {"seed", "cross_mut"}


def test_zero_shot_eot_on_the_local_model(tmp_path: Path) -> None:
    from collections import Counter

    from evo.algorithms.zero_shot_eot import COT_SEEDS

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'job.db'}", executor="inprocess")
    # one example per split, no test scoring: every example costs a chain of up to 3 calls
    task = {**small_copy(tmp_path, "arithmetic", n=1), "seed_prompts": ["Solve the problem."]}
    result = optimize({
        "task": task,
        "algorithm": {"name": "zero-shot-eot", "crossovers": 1},
        "models": {"task": {"provider": "local", "workers": 1}},
        "evaluation": {"top_k": 1, "test": False},
        "budget": {"calls": 300},
        "seed": 1,
    }, settings=settings)
    assert result.status == "completed", result.reason
    assert result.best is not None
    with Store(settings.database_url) as store:
        cands = store.candidates(result.job_id)
        calls = store.llm_calls(result.job_id)
    ops = {c.operator for c in cands}
    assert {"seed", "cot_seed", "eot_pool"} <= ops
    assert ops <= {"seed", "cot_seed", "crossover", "mutation", "eot_pool"}
    pool = next(c for c in cands if c.operator == "eot_pool")
    assert pool.meta["pool"][:2] == list(COT_SEEDS)
    # each example the pool answers costs a choice, a restatement and an answer
    steps = Counter(c.purpose for c in calls if c.candidate_id == pool.id)
    assert set(steps) == {"eot_select", "eot_rewrite", "evaluate"}
    assert len(set(steps.values())) == 1
    assert "crossover" in {c.purpose for c in calls}
