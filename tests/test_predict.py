"""A job's prompt applied to new inputs: from Python (``result.best.predict``), the command line
(``evo predict``) and the REST API (``POST /jobs/{id}/predict``). What comes back is what the job
measured: the winner's answers to the dev inputs are the predictions the job recorded for them,
with the scripted model, the real bundled model and llama.cpp's own OpenAI-compatible server."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from evo.app.cli_common import UserError
from evo.app.cli_predict import read_inputs
from evo.app.settings import Settings
from evo.candidate import Candidate
from evo.llm import LLMRequest, LLMResponse
from evo.soft_prompt import SoftPrompt
from evo.spec import JobSpec
from evo.task import load_task
from storage import Store
from tests.api_helpers import LiveApi, scripted_spec, wait_status
from tests.helpers import label_reply, toy_task
from workers.predict import (
    AmbiguousCandidate,
    CannotPredict,
    Prediction,
    PredictionError,
    Predictor,
    pick_candidate,
)
from workers.runner import optimize
from workers.scripted import ScriptedClient

ROOT = Path(__file__).resolve().parent.parent


def scripted_job(tmp_path: Path, task: Any = "sentiment", **evaluation: Any) -> tuple[Any, str]:
    """A small completed job on the scripted model (the result and the store's URL)."""
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    spec = {
        "task": task,
        "models": {"task": {"provider": "scripted"}},
        "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1,
                      "dev_subset": 6},
        "evaluation": {"top_k": 2, **evaluation},
        "budget": {"calls": 20_000},
        "seed": 2,
    }
    result = optimize(spec, settings=Settings(database_url=url, executor="inprocess"))
    assert result.status == "completed", result.reason
    return result, url


def measured(url: str, candidate_id: str, task: Any) -> tuple[list[str], list[str]]:
    """The dev inputs a candidate was scored on in the final phase, and what it answered."""
    with Store(url) as store:
        outcomes = store.outcomes(candidate_id, "dev")
    by_id = {e.id: e for e in task.split("dev")}
    return [by_id[o.example_id].input for o in outcomes], [o.prediction for o in outcomes]


def exported_best(url: str, job_id: str) -> str:
    """The candidate ``evo export`` gives for the job: what ``evo predict`` applies by default."""
    from evo.app.export import export_data

    with Store(url) as store:
        return export_data(store, store.get_job(job_id), 1)["prompts"][0]["candidate_id"]


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    """A label job that calibrates its label scores: predictions must divide alike."""
    return scripted_job(tmp_path_factory.mktemp("calibrated"), calibrate=True)


# --- Python -------------------------------------------------------------------------------------


def test_the_best_predicts_what_the_job_measured_on_dev(calibrated: tuple[Any, str]) -> None:
    result, url = calibrated
    inputs, recorded = measured(url, result.best.candidate.id, load_task("sentiment"))
    assert len(inputs) == 100
    assert result.best.predict(inputs) == recorded
    assert result.best.predict(inputs[3]) == recorded[3]
    assert set(recorded) <= {"positive", "negative"}
    # another finalist, by entry, candidate or id prefix: its own recorded answers
    other = result.leaderboard[1]
    assert other.candidate.id != result.best.candidate.id
    seed_inputs, seed_recorded = measured(url, other.candidate.id, load_task("sentiment"))
    assert result.predict(seed_inputs, candidate=other) == seed_recorded
    assert result.predict(seed_inputs, candidate=other.candidate) == seed_recorded
    assert result.predict(seed_inputs[:5], candidate=other.candidate.id[:6]) == seed_recorded[:5]
    assert result.predict(seed_inputs[:5]) == result.best.predict(seed_inputs[:5])
    # the two prompts answer differently somewhere: the candidate is what is applied
    assert result.best.predict(seed_inputs) != seed_recorded


def test_a_generative_task_answers_the_models_text(tmp_path: Path) -> None:
    result, url = scripted_job(tmp_path, task="arithmetic")
    inputs, recorded = measured(url, result.best.candidate.id, load_task("arithmetic"))
    outputs = result.best.predict(inputs[:20])
    assert outputs == recorded[:20]
    assert all(isinstance(o, str) and o and o == o.strip() for o in outputs)


class Failing:
    """A client whose every other call fails."""

    model = "failing"
    supports_label_scoring = True

    def __init__(self) -> None:
        self.n = 0

    async def call(self, request: LLMRequest) -> LLMResponse:
        self.n += 1
        if self.n % 2 == 0:
            return LLMResponse("", self.model, error="timed out after 4 retries")
        first = {w: (-0.1 if i == 0 else -2.0) for i, w in enumerate(request.labels)}
        return LLMResponse(request.labels[0], self.model, label_logprobs=first)

    def close(self) -> None:
        pass


def toy_predictor(client: Any, **evaluation: Any) -> Predictor:
    spec = JobSpec.model_validate({"task": "sentiment", "evaluation": evaluation})
    return Predictor(spec, toy_task(), client=client)


def test_failed_calls_give_no_output_and_say_why() -> None:
    predictor = toy_predictor(Failing())
    prompt = Candidate("p1", "Answer. q=1.0", 0, "seed")
    found = predictor.predict(prompt, ["item 0 of 2", "item 1 of 2", "item 2 of 2"])
    assert found == [
        Prediction("item 0 of 2", "yes"),
        Prediction("item 1 of 2", None, "call failed: timed out after 4 retries"),
        Prediction("item 2 of 2", "yes"),
    ]
    assert found[1].as_dict() == {"input": "item 1 of 2", "output": None,
                                  "error": "call failed: timed out after 4 retries"}
    with pytest.raises(PredictionError, match="no output for input 2: call failed") as caught:
        toy_predictor(Failing()).outputs(prompt, ["a", "b", "c", "d"])
    assert str(caught.value).endswith("(and 1 more)")
    assert [p.output for p in caught.value.predictions] == ["yes", None, "yes", None]


def test_an_answer_that_names_no_label_is_unparsed() -> None:
    level = ScriptedClient(lambda r: {w: -1.0 for w in r.labels})  # every label alike: none
    (found,) = toy_predictor(level).predict(Candidate("p", "Say.", 0, "seed"), ["item 1 of 2"])
    assert found.output is None and found.error.startswith("unparsed")


def test_requests_go_in_the_task_models_mode() -> None:
    client = ScriptedClient(lambda r: {w: (0.0 if w == "yes" else -3.0) for w in r.labels})
    spec = JobSpec.model_validate({"task": "sentiment", "models": {"task": {
        "provider": "scripted", "mode": "completion"}}, "evaluation": {"calibrate": True}})
    predictor = Predictor(spec, toy_task(), client=client)
    assert predictor.outputs(Candidate("p", "q=1.0", 0, "seed"), "item 1 of 2") == "yes"
    assert [r.mode for r in client.requests] == ["completion", "completion"]  # calibration too


def test_a_soft_prompt_is_applied_as_a_soft_prompt() -> None:
    client = ScriptedClient(label_reply)
    soft = SoftPrompt(z=(0.3, 0.3), seed=1, n_tokens=2, sigma=0.5)
    cand = Candidate("s1", "nearest tokens", 1, "cma_es", kind="soft_prompt",
                     meta=soft.to_meta())
    inputs = [f"item {i} of 10" for i in range(10)]
    outputs = toy_predictor(client).outputs(cand, inputs)
    assert outputs == ["yes" if i % 2 else "no" for i in range(10)]  # z at the optimum: right
    assert all(r.soft == soft and r.labels for r in client.requests)
    assert all("nearest tokens" not in r.messages[-1].content for r in client.requests)


def test_a_program_is_refused() -> None:
    program = Candidate("c0de", "def solve(x): return x", 0, "seed", kind="program")
    with pytest.raises(CannotPredict, match="is a program, not a prompt"):
        toy_predictor(ScriptedClient()).predict(program, ["x"])
    problem = Predictor(JobSpec.model_validate({"task": "binpacking"}), load_task("binpacking"),
                        client=ScriptedClient())
    with pytest.raises(CannotPredict, match="is a program"):
        problem.predict(Candidate("c0de", "def f(): pass", 0, "seed"), ["x"])


def test_batches_keep_the_order_of_the_inputs() -> None:
    client = ScriptedClient(label_reply)
    inputs = [f"item {i} of 40" for i in range(40)]
    seen: list[tuple[int, int]] = []
    predictor = toy_predictor(client, batch_size=4)
    predictor.spec.models.task.concurrency = 4
    found = predictor.predict(Candidate("p", "q=0.5", 0, "seed"), inputs,
                              lambda done, total: seen.append((done, total)))
    assert [p.input for p in found] == inputs
    assert [p.output for p in found] == [label_reply_text(i, 40, 0.5) for i in range(40)]
    assert seen == [(n, 40) for n in range(4, 41, 4)]


def test_an_endpoint_answers_call_after_call(recwarn: pytest.WarningsRecorder) -> None:
    """``predict`` twice on one endpoint client, with more inputs than it takes in flight: its
    connections and its limit stay in the loop they were made in, and are closed with it."""
    from tests.servers import Reply, ScriptedOpenAIServer, chat_reply

    gc.collect()  # what earlier tests left unclosed warns now, not inside this test
    recwarn.clear()
    reply = Reply(body=chat_reply("no", logprobs=[("no", -0.1), ("yes", -2.5)]), delay_s=0.02)
    with ScriptedOpenAIServer([reply]) as server:
        spec = JobSpec.model_validate({"task": "sentiment", "models": {"task": {
            "provider": "openai", "model": "m", "base_url": server.base_url,
            "api_key_env": "EVO_TEST_UNSET_KEY", "concurrency": 2}}})
        with Predictor(spec, toy_task()) as predictor:
            prompt = Candidate("p", "Say.", 0, "seed")
            assert predictor.outputs(prompt, list("abcde")) == ["no"] * 5
            assert predictor.outputs(prompt, list("fghij")) == ["no"] * 5
        assert server.max_in_flight <= 2 and len(server.received) == 10
    assert not [str(w.message) for w in recwarn if issubclass(w.category, ResourceWarning)]


def label_reply_text(i: int, n: int, q: float) -> str:
    gold = "yes" if i % 2 else "no"
    return gold if i < round(q * n) else ("no" if gold == "yes" else "yes")


# --- choosing the candidate ---------------------------------------------------------------------


def test_candidates_are_found_by_id_or_unique_prefix(calibrated: tuple[Any, str]) -> None:
    result, url = calibrated
    with Store(url) as store:
        job = store.get_job(result.job_id)
        assert pick_candidate(store, job).id == exported_best(url, job.id)
        some = store.candidates(job.id)[1]
        assert pick_candidate(store, job, some.id).id == some.id
        assert pick_candidate(store, job, some.id[:10]).id == some.id
        with pytest.raises(LookupError, match="no candidate 'ffffffffff'"):
            pick_candidate(store, job, "ffffffffff")
        with pytest.raises(LookupError, match="at least 4 characters"):
            pick_candidate(store, job, some.id[:3])


def test_an_ambiguous_prefix_lists_what_it_matches() -> None:
    class Two:
        def candidates(self, job_id: str) -> list[Candidate]:
            return [Candidate(i, "p", 0, "seed") for i in ("abcd1234", "abcd5678", "ffff0000")]

    job = type("Job", (), {"id": "job00000", "status": "completed"})()
    with pytest.raises(AmbiguousCandidate, match=r"'abcd' is ambiguous: it matches 2 "
                       r"candidates \(abcd1234, abcd5678\)"):
        pick_candidate(Two(), job, "abcd")
    assert pick_candidate(Two(), job, "abcd5").id == "abcd5678"


# --- the command line ---------------------------------------------------------------------------


def evo(*args: str, url: str, cwd: Path) -> subprocess.CompletedProcess:
    """``evo`` as a user runs it, in a process of its own."""
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "EVO_DATABASE_URL": url, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "evo.app.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def evo_here(capsys: pytest.CaptureFixture, *args: str, url: str) -> tuple[int, str, str]:
    """``evo`` run in this process (its exit status, stdout, stderr): the same entry point
    without a fresh interpreter's start-up."""
    from evo.app import cli

    argv = sys.argv
    sys.argv = ["evo", *args, "--db", url]
    try:
        cli.main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    out = capsys.readouterr()
    return code, out.out, out.err


def one_line_error(found: tuple[int, str, str], text: str) -> None:
    code, out, err = found
    assert code == 2, (out, err)
    assert err.startswith("error: ") and text in " ".join(err.split())
    assert "Traceback" not in err and out == ""


def test_evo_predict_prints_writes_and_refuses_bad_input(
    calibrated: tuple[Any, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    result, url = calibrated
    job = result.job_id[:8]
    best = exported_best(url, result.job_id)
    inputs, recorded = measured(url, best, load_task("sentiment"))
    out = evo("predict", job, "-i", inputs[0], "--input", inputs[1], url=url, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == recorded[:2]

    # a file of the task's rows (JSONL) and its outputs as JSONL rows
    rows = tmp_path / "in.jsonl"
    rows.write_text("".join(json.dumps({"input": x, "id": i}) + "\n"
                            for i, x in enumerate(inputs[:40])))
    written = tmp_path / "out" / "pred.jsonl"
    code, _, err = evo_here(capsys, "predict", job, "--file", str(rows), "-o", str(written),
                            url=url)
    assert code == 0, err
    assert "predicted 40/40" in err and f"wrote 40 predictions to {written}" in err
    got = [json.loads(line) for line in written.read_text().splitlines()]
    assert got == [{"input": x, "output": y} for x, y in zip(inputs[:40], recorded[:40],
                                                             strict=True)]

    # another candidate, by prefix; a text file, one input a line
    other = next(e.candidate.id for e in result.leaderboard if e.candidate.id != best)
    other_inputs, other_recorded = measured(url, other, load_task("sentiment"))
    text = tmp_path / "in.txt"
    text.write_text("\n".join(other_inputs[:5]) + "\n\n")
    code, out, err = evo_here(capsys, "predict", job, "-f", str(text), "--candidate", other[:8],
                              url=url)
    assert code == 0, err
    assert out.splitlines() == other_recorded[:5]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "fine"}\n{"input": "broken"\n')
    one_line_error(evo_here(capsys, "predict", job, "-f", str(bad), url=url),
                   f"{bad} line 2: not JSON")
    one_line_error(evo_here(capsys, "predict", job, "-f", str(tmp_path / "none.jsonl"), url=url),
                   "no file")
    one_line_error(evo_here(capsys, "predict", job, url=url),
                   "give the inputs with --input (repeatable) or --file")
    one_line_error(evo_here(capsys, "predict", job, "-i", "x", "-c", "0000ffff", url=url),
                   f"job {job} has no candidate '0000ffff'")


def test_evo_predict_says_which_inputs_failed_and_exits_1(
    calibrated: tuple[Any, str], tmp_path: Path, capsys: pytest.CaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result, url = calibrated
    failing = Failing()
    monkeypatch.setattr(Predictor, "client", property(lambda self: failing))
    written = tmp_path / "pred.jsonl"
    code, out, err = evo_here(capsys, "predict", result.job_id, "-i", "a", "-i", "b", "-i", "c",
                              url=url)
    assert code == 1
    # calls in order: the calibration (answered), a (failed), b (answered), c (failed)
    assert out.splitlines() == ["", "positive", ""]
    assert err.splitlines() == ["input 1: call failed: timed out after 4 retries",
                                "input 3: call failed: timed out after 4 retries"]
    code, out, err = evo_here(capsys, "predict", result.job_id, "-i", "a", "-i", "b",
                              "-o", str(written), url=url)
    assert code == 1 and out == ""
    assert [json.loads(line) for line in written.read_text().splitlines()] == [
        {"input": "a", "output": None, "error": "call failed: timed out after 4 retries"},
        {"input": "b", "output": "positive"},
    ]


def test_evo_predict_refuses_a_job_without_a_best_prompt_as_export_does(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with Store(url) as store:
        job_id = store.create_job(job_id=uuid.uuid4().hex, name="queued", task="sentiment",
                                  algorithm="evoprompt-ga", spec=scripted_spec(), seed=0,
                                  status="queued", owner="me").id
    exported = evo_here(capsys, "export", job_id[:8], url=url)
    predicted = evo_here(capsys, "predict", job_id[:8], "-i", "x", url=url)
    one_line_error(predicted, f"job {job_id} is queued and has no best prompt yet")
    assert predicted == exported


def test_input_files_name_the_line_at_fault(tmp_path: Path) -> None:
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a"}\n\n{"input": "b", "text": "c"}\n')
    assert read_inputs(rows, "text") == ["a", "c"]  # the task's input column first
    lines = tmp_path / "lines.txt"
    lines.write_text('first, with "quotes"\n\n  second  \n')
    assert read_inputs(lines, "text") == ['first, with "quotes"', "  second  "]
    for body, message in [
        ('{"text": "a"}\n', "line 1: expected a JSON object with the key 'input'"),
        ('{"input": 3}\n', "line 1: 'input' must be a string, not int"),
        ('\n["input"]\n', "line 2: expected a JSON object"),
        ("\n\n", "has no inputs"),
    ]:
        rows.write_text(body)
        with pytest.raises(UserError, match=message):
            read_inputs(rows)
    table = tmp_path / "rows.csv"
    table.write_text("input\na\n")
    with pytest.raises(UserError, match=r"\.jsonl .* or \.txt"):
        read_inputs(table)


# --- the REST API -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory):
    url = f"sqlite:///{tmp_path_factory.mktemp('predict-api') / 'evo.db'}"
    settings = Settings(database_url=url, executor="inprocess", max_jobs=2)
    with Store(url) as store, LiveApi(store, settings) as live:
        yield live


def test_the_api_predicts_for_the_jobs_owner_only(api: LiveApi) -> None:
    with api.client(api.key("alice")) as alice, api.client(api.key("bob")) as bob:
        r = alice.post("/jobs", json=scripted_spec(generations=1, seed=4))
        assert r.status_code == 201, r.text
        job = wait_status(alice, r.json()["id"], "completed")
        best = alice.get(f"/jobs/{job['id']}/export").json()["prompts"][0]["candidate_id"]
        inputs, recorded = measured(api.settings.database_url, best, load_task("sentiment"))

        r = alice.post(f"/jobs/{job['id']}/predict", json={"inputs": inputs[:10]})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["job_id"] == job["id"] and body["candidate_id"] == best
        assert body["kind"] == "prompt" and body["prompt"]
        assert [i["output"] for i in body["items"]] == recorded[:10]
        assert [i["input"] for i in body["items"]] == inputs[:10]
        assert all(i["error"] is None for i in body["items"])

        other = alice.get(f"/jobs/{job['id']}/candidates", params={"sort": "-score"}).json()
        other_id = next(c["id"] for c in other["items"] if c["id"] != best)
        r = alice.post(f"/jobs/{job['id']}/predict",
                       json={"inputs": ["fine"], "candidate_id": other_id[:8]})
        assert r.status_code == 200 and r.json()["candidate_id"] == other_id

        # another tenant's job answers exactly like a missing one
        for client, job_id in ((bob, job["id"]), (alice, "0" * 32)):
            r = client.post(f"/jobs/{job_id}/predict", json={"inputs": ["x"]})
            assert (r.status_code, r.json()) == (404, {"detail": "no such job"})
        r = alice.post(f"/jobs/{job['id']}/predict",
                       json={"inputs": ["x"], "candidate_id": "ffffffff"})
        assert (r.status_code, r.json()) == (404, {"detail": "no such candidate"})

        for body in (b"", b"\xff\xfe{", b'{"inputs": ['):
            r = alice.post(f"/jobs/{job['id']}/predict", content=body,
                           headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (body, r.text)
            assert [p["field"] for p in r.json()["detail"]] == ["body"], r.text
        for payload, field in [({"inputs": []}, "inputs"), ({"inputs": ["x"] * 101}, "inputs"),
                               ({}, "inputs"), ({"inputs": [3]}, "inputs.0"),
                               ({"inputs": ["x"], "extra": 1}, "extra")]:
            r = alice.post(f"/jobs/{job['id']}/predict", json=payload)
            assert r.status_code == 422, (payload, r.text)
            assert [p["field"] for p in r.json()["detail"]] == [field], r.text

        queued = api.store.create_job(job_id=uuid.uuid4().hex, name="paused", task="sentiment",
                                      algorithm="evoprompt-ga", spec=scripted_spec(), seed=0,
                                      status="paused", owner="alice").id
        r = alice.post(f"/jobs/{queued}/predict", json={"inputs": ["x"]})
        assert r.status_code == 409
        assert r.json()["detail"].startswith(f"job {queued} is paused and has no best prompt yet")


def test_an_unreachable_model_is_503_over_http_and_one_line_from_the_command_line(
    api: LiveApi, capsys: pytest.CaptureFixture
) -> None:
    from tests.servers import free_port

    # run with a ready client; the stored spec names an endpoint nothing listens on
    closed = f"http://127.0.0.1:{free_port()}/v1"
    spec = {**scripted_spec(generations=1, seed=5),
            "models": {"task": {"provider": "openai", "model": "m", "base_url": closed,
                                "api_key_env": "EVO_TEST_UNSET_KEY", "max_retries": 0}}}
    settings = api.settings.model_copy(update={"owner": "carol"})
    result = optimize(spec, store=api.store, settings=settings,
                      clients={"task": ScriptedClient()})
    assert result.status == "completed", result.reason
    with api.client(api.key("carol")) as carol:
        r = carol.post(f"/jobs/{result.job_id}/predict", json={"inputs": ["x"]})
    assert r.status_code == 503
    assert r.json()["detail"].startswith("the job's model is unavailable: ")
    assert closed in r.json()["detail"]
    one_line_error(evo_here(capsys, "predict", result.job_id, "-i", "x",
                            url=api.settings.database_url), closed)


def test_the_api_documents_the_route(api: LiveApi) -> None:
    doc = httpx.get(f"{api.base_url}/api/v1/openapi.json").json()
    route = doc["paths"]["/api/v1/jobs/{job_id}/predict"]["post"]
    assert {"200", "401", "404", "409", "422", "503"} <= set(route["responses"])
    body = route["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["inputs"]["maxItems"] == 100 and body["required"] == ["inputs"]


# --- real models --------------------------------------------------------------------------------


def small_job(tmp_path: Path, models: dict) -> tuple[Any, str, Any]:
    from tests.test_e2e_local import small_copy

    url = f"sqlite:///{tmp_path / 'real.db'}"
    task = small_copy(tmp_path, "sentiment", n=5)
    spec = {"task": task, "models": models,
            # phrase deletions and swaps only: no text is generated, so the job takes seconds
            "algorithm": {"name": "grips", "iterations": 1, "candidates": 2,
                          "edits": ["delete", "swap"]},
            "evaluation": {"top_k": 1, "test": False}, "budget": {"calls": 200}, "seed": 1}
    result = optimize(spec, settings=Settings(database_url=url, executor="inprocess"))
    assert result.status == "completed", result.reason
    from evo.task import TaskSpec

    return result, url, load_task(TaskSpec.model_validate(task))


@pytest.mark.model
def test_the_bundled_model_predicts_what_the_job_measured(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    result, url, task = small_job(tmp_path, {"task": {"provider": "local", "workers": 1}})
    inputs, recorded = measured(url, result.best.candidate.id, task)
    assert len(inputs) == 5
    assert result.best.predict(inputs) == recorded
    # the command line applies what `evo export` gives (the same prompt, but for a tie)
    best = exported_best(url, result.job_id)
    inputs, recorded = measured(url, best, task)
    code, out, err = evo_here(capsys, "predict", result.job_id[:8],
                              *(a for x in inputs for a in ("-i", x)), url=url)
    assert code == 0, err
    assert out.splitlines() == recorded


@pytest.mark.model
def test_an_openai_compatible_server_predicts_through_the_same_path(tmp_path: Path) -> None:
    from tests.servers import start_llama_server
    from workers.llm_local import bundled_model_path

    with start_llama_server(bundled_model_path(), n_ctx=2048, threads=1) as base_url:
        models = {"task": {"provider": "openai", "model": "smollm2", "base_url": base_url,
                           "api_key_env": "EVO_TEST_UNSET_KEY"}}
        result, url, task = small_job(tmp_path, models)
        inputs, recorded = measured(url, result.best.candidate.id, task)
        assert result.best.predict(inputs) == recorded
        with Store(url) as store:
            job = store.get_job(result.job_id)
            cand = pick_candidate(store, job)
        inputs, recorded = measured(url, cand.id, task)
        with Predictor.of_job(job) as predictor:
            assert [p.output for p in predictor.predict(cand, inputs)] == recorded
            assert type(predictor.client).__name__ == "OpenAIClient"
