"""What is checked before a job is queued or started: each problem named by its field, and why
a job failed said in one sentence its owner may read."""

from __future__ import annotations

import logging

import pytest

from evo.llm import LLMUnavailable
from evo.spec_io import FieldError, SpecError, parse_spec
from evo.task import TaskError, load_task
from workers.admission import check_job
from workers.capacity import CannotSchedule, Capacity
from workers.reasons import MAX_CHARS, tenant_reason


def spec(**over) -> dict:
    base = {"task": "sentiment", "algorithm": {"name": "evoprompt-ga", "population": 3},
            "evaluation": {"top_k": 1}, "budget": {"calls": 5000}}
    return {**base, **over}


def problems(raw: dict, capacity: Capacity | None = None) -> dict[tuple, str]:
    job = parse_spec(raw)
    with pytest.raises(SpecError) as err:
        check_job(job, load_task(job.task), capacity=capacity)
    return {e.loc: e.message for e in err.value.errors}


def test_a_sample_larger_than_its_split_is_refused() -> None:
    found = problems(spec(algorithm={"name": "evoprompt-ga", "dev_subset": 101}))
    assert found == {("algorithm", "dev_subset"): "101 is more than the 100 examples of the "
                                                  "task's dev split"}
    found = problems(spec(algorithm={"name": "opro", "train_subset": 65}))
    assert found == {("algorithm", "train_subset"): "65 is more than the 64 examples of the "
                                                    "task's train split"}
    ok = parse_spec(spec(algorithm={"name": "evoprompt-ga", "dev_subset": 100}))
    check_job(ok, load_task(ok.task))


SIXTEEN_SEEDS = {"builtin": "sentiment",
                 "seed_prompts": [f"Say positive or negative ({i})." for i in range(16)]}


def test_a_budget_short_of_the_final_scoring_names_its_biggest_part_first() -> None:
    # 16 seed prompts x 100 dev examples dwarf top_k=3 x 100 and 2 prompts x 200 test examples
    found = problems(spec(task=SIXTEEN_SEEDS, evaluation={"top_k": 3}, budget={"calls": 2000}))
    assert found == {("budget", "calls"): (
        "2000 calls cannot pay for the search: the final scoring alone reserves 2300 (16 seed "
        "prompts x 100 dev examples: 1600; 2 prompts on test: 400; top_k=3 candidates x 100 dev "
        "examples: 300); raise budget.calls, or re-score only the seed prompts with the best "
        "search scores: evaluation.final_seeds=3 reserves 1000")}
    # which fits, and leaves half the budget to the search
    ok = parse_spec(spec(task=SIXTEEN_SEEDS, evaluation={"top_k": 3, "final_seeds": 3},
                         budget={"calls": 2000}))
    check_job(ok, load_task(ok.task))
    # when no number of seeds leaves half, one is offered
    found = problems(spec(task=SIXTEEN_SEEDS, evaluation={"top_k": 3, "test": False},
                          budget={"calls": 700}))
    assert found[("budget", "calls")].endswith(
        "(16 seed prompts x 100 dev examples: 1600; top_k=3 candidates x 100 dev examples: "
        "300); raise budget.calls, or re-score only the seed prompts with the best search "
        "scores: evaluation.final_seeds=1 reserves 400")


def test_a_budget_short_of_many_finalists_says_to_lower_top_k() -> None:
    found = problems(spec(evaluation={"top_k": 10}, budget={"calls": 1500}))
    assert found == {("budget", "calls"): (
        "1500 calls cannot pay for the search: the final scoring alone reserves 1700 (top_k=10 "
        "candidates x 100 dev examples: 1000; 2 prompts on test: 400; 3 seed prompts x 100 dev "
        "examples: 300); raise budget.calls or lower evaluation.top_k")}


def test_a_context_longer_than_the_model_was_trained_with_is_refused() -> None:
    found = problems(spec(models={"task": {"provider": "local", "n_ctx": 16384}}))
    assert found == {("models", "task", "n_ctx"): "16384 is more than the 8192 tokens the "
                                                   "model was trained with"}
    ok = parse_spec(spec(models={"task": {"provider": "local", "n_ctx": 8192}}))
    check_job(ok, load_task(ok.task))


def test_model_workers_the_cluster_cannot_hold_are_refused() -> None:
    two = Capacity(total=2, largest=2)
    found = problems(spec(models={"task": {"provider": "local", "threads": 64}}), two)
    assert list(found) == [("models", "task", "threads")]
    assert "asks for 64 CPUs on one node" in found[("models", "task", "threads")]
    found = problems(spec(models={"task": {"provider": "local", "workers": 3}}), two)
    assert found == {("models", "task", "workers"): "the cluster cannot run this job: 3 workers "
                                                    "x 1 threads need 3 CPUs, and the cluster "
                                                    "has 2"}
    # a meta model of its own needs CPUs beside the task model's, which take the whole cluster
    found = problems(spec(models={"task": {"provider": "local"},
                                  "meta": {"provider": "local", "workers": 1}}), two)
    assert list(found) == [("models", "meta", "workers")]
    assert "beside the task model's workers" in found[("models", "meta", "workers")]
    roomy = parse_spec(spec(models={"task": {"provider": "local", "workers": 1},
                                    "meta": {"provider": "local", "workers": 1}}))
    check_job(roomy, load_task(roomy.task), capacity=two)
    remote = parse_spec(spec(models={"task": {"provider": "openai", "model": "m",
                                              "workers": 50}}))
    check_job(remote, load_task(remote.task), capacity=two)  # remote workers ask for no CPU


def test_every_problem_is_named_at_once() -> None:
    found = problems(spec(algorithm={"name": "evoprompt-ga", "dev_subset": 500},
                          models={"task": {"provider": "local", "threads": 9, "n_ctx": 10**5}},
                          budget={"calls": 10}), Capacity(4, 4))
    assert set(found) == {("budget", "calls"), ("algorithm", "dev_subset"),
                          ("models", "task", "n_ctx"), ("models", "task", "threads")}


def test_a_reason_for_the_owner_keeps_its_first_line_without_server_paths() -> None:
    exc = TaskError("cannot read /srv/evo/data/tenant-7/tickets.jsonl: line 3 is not JSON\n"
                    "Traceback (most recent call last):\n  File \"/srv/evo/evo/loaders.py\"")
    assert tenant_reason(exc, "j1") == "cannot read tickets.jsonl: line 3 is not JSON"
    unreachable = LLMUnavailable("model file not found: /root/models/big.gguf")
    assert tenant_reason(unreachable, "j1") == ("model endpoint unavailable: model file not "
                                                "found: big.gguf")
    cluster = CannotSchedule("the workers need 64 CPUs, and the cluster has 2 " + "x" * 600)
    assert len(tenant_reason(cluster, "j1")) == MAX_CHARS
    assert tenant_reason(cluster, "j1").endswith("…")
    spec_error = SpecError([FieldError(("budget", "calls"), "too few"),
                            FieldError(("seed",), "not a number")])
    assert tenant_reason(spec_error, "j1") == ("invalid job spec: budget.calls: too few; seed: "
                                               "not a number")


def test_any_other_error_is_internal_and_its_detail_goes_to_the_log(caplog) -> None:
    class IntegrityError(Exception):
        pass

    exc = IntegrityError("(sqlite3.IntegrityError) UNIQUE constraint failed: candidates.id\n"
                         "[SQL: INSERT INTO candidates (id, job_id) VALUES (?, ?)]")
    with caplog.at_level(logging.ERROR, logger="workers.reasons"):
        reason = tenant_reason(exc, "4be1c0")
    assert reason == ("internal error (IntegrityError); the server's log has the details under "
                      "job 4be1c0")
    assert "INSERT INTO candidates" in caplog.text and "4be1c0" in caplog.text
