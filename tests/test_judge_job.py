"""Jobs under metric judge: the judge's calls paid, cached and ledgered like any call, its verdicts
stored with the outcomes, unreadable verdicts counted, the spec's refusals, a resumed job, and the
same path on the bundled model and on llama-cpp-python's server."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from evo import judge
from evo.app.settings import Settings
from evo.llm import LLMRequest
from evo.spec_io import SpecError, parse_spec
from evo.task import load_task
from evo.task_spec import TaskSpec
from storage import Store
from tests.helpers import crash_and_resume, job_record
from workers.admission import check_job
from workers.runner import optimize
from workers.scripted import ScriptedClient, hashed_reply

RUBRIC = {"criteria": [
    {"name": "faithfulness", "description": "every fact in the answer is in the text",
     "weight": 2},
    {"name": "brevity", "description": "one short sentence", "scale": 3},
]}


def data(tmp_path: Path, n: int = 4) -> dict[str, str]:
    paths = {}
    for split in ("train", "dev", "test"):
        path = tmp_path / f"{split}.jsonl"
        path.write_text("".join(json.dumps({
            "id": f"{split}{i}", "input": f"The shop on Main Street sold {i + 3} bikes on Monday.",
            "target": f"The shop sold {i + 3} bikes."}) + "\n" for i in range(n)))
        paths[split] = str(path)
    return paths


def task_spec(tmp_path: Path, **rubric: Any) -> dict[str, Any]:
    return {"data": data(tmp_path), "metric": "judge", "rubric": {**RUBRIC, **rubric},
            "seed_prompts": ["Summarize the text in one sentence.", "Shorten this."],
            "max_answer_tokens": 24}


def job(tmp_path: Path, models: dict | None = None, **rubric: Any) -> dict[str, Any]:
    return {"task": task_spec(tmp_path, **rubric),
            "models": models or {"task": {"provider": "scripted"}},
            "algorithm": {"name": "evoprompt-ga", "population": 2, "generations": 1,
                          "dev_subset": 2},
            "evaluation": {"top_k": 1}, "budget": {"calls": 2000}, "seed": 1}


def run(spec: dict, tmp_path: Path, clients: dict | None = None):
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    result = optimize(spec, settings=Settings(database_url=url, executor="inprocess"),
                      clients=clients)
    assert result.status == "completed", result.reason
    return result, Store(url)


def judged_outcomes(store: Store, job_id: str) -> list:
    return [o for c in store.candidates(job_id) for split in ("search", "dev", "test")
            for o in store.outcomes(c.id, split)]


def test_a_pointwise_job_pays_for_its_judge_and_keeps_every_verdict(tmp_path: Path) -> None:
    result, store = run(job(tmp_path), tmp_path)
    with store:
        stats = store.get_job(result.job_id).stats
        calls = store.llm_calls(result.job_id)
        paid = Counter(c.purpose for c in calls if not c.cached)
        assert paid["judge"] == 2 * paid["evaluate"]  # one judge call per criterion
        assert sum(not c.cached for c in calls) == stats["calls"]
        assert stats["judge"]["judged"] > 0 and stats["judge"]["unparsable"] == 0
        outs = judged_outcomes(store, result.job_id)
        search = [o for c in store.candidates(result.job_id)
                  for o in store.outcomes(c.id, "search")]
        assert search, "every scored candidate keeps its verdicts from the search"
        for o in outs:
            assert set(o.judge["scores"]) == {"faithfulness", "brevity"}
            assert o.score == pytest.approx(o.judge["value"])
            assert o.judge["reasoning"] == ["scored by hash.", "scored by hash."]
        assert result.best.dev is not None and 0 <= result.best.dev <= 1
        from evo.app.export import export_data

        exported = export_data(store, store.get_job(result.job_id), 1)["prompts"][0]
        assert exported["test_outcomes"] and all(
            set(o["judge"]["scores"]) == {"faithfulness", "brevity"}
            for o in exported["test_outcomes"])
    from evo.app.show import judged

    assert judged(stats) == (f"judge: {stats['judge']['judged']:,} answers scored, "
                             "0 verdicts unreadable, 0 failed calls")


def test_a_pairwise_job_compares_with_the_seed_in_both_orders(tmp_path: Path) -> None:
    result, store = run(job(tmp_path, mode="pairwise", against="seed"), tmp_path)
    with store:
        calls = store.llm_calls(result.job_id)
        purposes = Counter(c.purpose for c in calls)
        assert purposes["baseline"] > 0  # the seed's answers: the same requests as its scoring
        paid = Counter(c.purpose for c in calls if not c.cached)
        outs = judged_outcomes(store, result.job_id)
        same = [o for o in outs if o.judge["reasoning"] == ["the same answer as the baseline"]]
        assert same and all(o.score == 0.5 for o in same)  # the seed against itself: no call
        assert 0 < paid["judge"] < 2 * paid["evaluate"]
        for o in outs:
            assert len(o.judge["winners"]) == 2
            assert o.score in (0.0, 0.25, 0.5, 0.75, 1.0)


def test_unreadable_verdicts_are_recorded_and_counted_not_hidden(tmp_path: Path) -> None:
    def reply(request: LLMRequest):
        if judge.is_judge_request(request) and "brevity" in request.messages[-1].content:
            return " it is fine"  # never a score for this criterion
        return hashed_reply(request)

    client = ScriptedClient(reply)
    spec = job(tmp_path)
    result, store = run(spec, tmp_path, clients={"task": client, "meta": client})
    with store:
        stats = store.get_job(result.job_id).stats
        assert stats["judge"]["judged"] == 0 and stats["judge"]["unparsable"] > 0
        outs = judged_outcomes(store, result.job_id)
        assert outs and all(o.failure == judge.UNPARSABLE and o.score == 0 for o in outs)
        assert all(o.judge["reasoning"][1] == "Score: it is fine" for o in outs)
        evals = store.evaluations(result.job_id)
        assert all(e.failures == e.n for e in evals)


def test_a_crashed_judged_job_resumes_to_the_same_record(tmp_path: Path, store: Store) -> None:
    import asyncio

    task = load_task(TaskSpec.model_validate(task_spec(tmp_path)))
    spec = {"task": "toy", "models": {"task": {"provider": "scripted"}},
            "algorithm": {"name": "evoprompt-ga", "population": 2, "generations": 3,
                          "dev_subset": 2}, "seed": 2}
    straight, resumed = asyncio.run(crash_and_resume(spec, hashed_reply, store, None, 3,
                                                     task=task))
    assert job_record(store, resumed) == job_record(store, straight)
    ledger = [Counter((c.purpose, c.cached) for c in store.llm_calls(j))
              for j in (straight, resumed)]
    assert ledger[0] == ledger[1] and ledger[0][("judge", False)] > 0


def problems(spec: dict) -> list[tuple[str, ...]]:
    parsed = parse_spec(spec)
    with pytest.raises(SpecError) as err:
        check_job(parsed, load_task(parsed.task))
    return [e.loc for e in err.value.errors]


def test_a_judge_that_cannot_grade_is_refused_naming_the_field(tmp_path: Path) -> None:
    completion = job(tmp_path, {"task": {"provider": "scripted", "mode": "completion"}})
    assert problems(completion) == [("models", "judge")]
    unnamed = job(tmp_path, {"task": {"provider": "scripted"},
                             "judge": {"provider": "openai", "base_url": "http://127.0.0.1:9"}})
    assert problems(unnamed) == [("models", "judge", "model")]
    unused = {**job(tmp_path), "task": "sentiment",
              "models": {"task": {"provider": "scripted"}, "judge": {"provider": "scripted"}}}
    assert problems(unused) == [("models", "judge")]
    money = job(tmp_path, {"task": {"provider": "scripted",
                                    "price": {"input": 1, "output": 1}}})
    money["budget"] = {"usd": 5.0}
    assert problems(money) == [("budget", "usd")]
    with pytest.raises(SpecError) as err:
        parse_spec({**job(tmp_path), "task": {**task_spec(tmp_path), "rubric": {"criteria": []}}})
    assert [e.loc for e in err.value.errors] == [("task", "rubric", "criteria")]


def real_spec(tmp_path: Path, models: dict) -> dict:
    spec = job(tmp_path, models)
    spec["task"]["rubric"] = {"criteria": [RUBRIC["criteria"][0]], "max_tokens": 24}
    spec["task"]["data"] = data(tmp_path, 2)
    spec["algorithm"] = {"name": "evoprompt-ga", "population": 2, "generations": 1,
                         "dev_subset": 1}
    spec["evaluation"] = {"top_k": 1, "final_seeds": 1, "test": False}
    return spec


def check_real(result, store: Store) -> None:
    with store:
        stats = store.get_job(result.job_id).stats
        calls = store.llm_calls(result.job_id)
        assert any(c.purpose == "judge" and not c.cached for c in calls)
        outs = judged_outcomes(store, result.job_id)
        assert outs
        for o in outs:  # a score read off the judge's answer, or a counted unreadable verdict
            assert (o.failure is None and o.judge["scores"]) or o.failure in (
                judge.UNPARSABLE, "unparsed")
        counted = stats["judge"]["judged"] + stats["judge"]["unparsable"]
        assert counted > 0


def summary_slice(tmp_path: Path, n: int = 2) -> dict[str, str]:
    """The first ``n`` examples of each split of the built-in summary task."""
    from evo.tasks import data_files

    paths = {}
    for split, path in data_files("summary").items():
        paths[split] = str(tmp_path / f"summary.{split}.jsonl")
        Path(paths[split]).write_text("".join(Path(path).read_text().splitlines(True)[:n]))
    return paths


def summary_task(tmp_path: Path) -> dict[str, Any]:
    """The built-in task, its rubric with short verdicts, on a few of its examples."""
    from evo.tasks import BUILTINS

    return {"builtin": "summary", "data": summary_slice(tmp_path),
            "rubric": {**BUILTINS["summary"]["rubric"], "max_tokens": 24}}


@pytest.mark.model
def test_the_builtin_summary_task_is_judged_on_the_bundled_model(tmp_path: Path) -> None:

    spec = real_spec(tmp_path, {"task": {"provider": "local", "workers": 1}})
    spec["task"] = summary_task(tmp_path)
    result, store = run(spec, tmp_path)
    check_real(result, store)
    with Store(f"sqlite:///{tmp_path / 'jobs.db'}") as again:
        scored = [o.judge for o in judged_outcomes(again, result.job_id) if o.judge]
        assert scored and all(set(j.get("scores", {})) <= {"faithfulness", "coverage",
                                                            "brevity"} for j in scored)


@pytest.mark.model
def test_the_summary_task_runs_with_task_and_judge_behind_llama_cpp_server(tmp_path: Path) -> None:
    from tests.servers import start_llama_server
    from workers.llm_local import bundled_model_path

    with start_llama_server(bundled_model_path(), n_ctx=2048, threads=1) as base_url:
        endpoint = {"provider": "openai", "model": "smollm2", "base_url": base_url,
                    "api_key_env": "EVO_TEST_UNSET_KEY"}
        spec = real_spec(tmp_path, {"task": endpoint, "judge": dict(endpoint)})
        spec["task"] = summary_task(tmp_path)
        result, store = run(spec, tmp_path)
        check_real(result, store)
