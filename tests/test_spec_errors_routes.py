"""A spec with several mistakes, by both routes: ``evo run`` prints every problem, one a line,
and exits with status 2; ``POST /jobs`` answers 422 listing each with its field. Job ids given
to the command line may be shortened to a unique prefix."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.errors import FieldProblem
from evo.app.settings import Settings
from storage import Store
from tests.api_helpers import LiveApi

BAD = """\
task: topic
algorithm:
  name: evoprompt-ga
  populaton: 6
  generations: lots
budget:
  calls: -1
"""
PROBLEMS = [
    "algorithm.populaton (line 4): unknown field; did you mean population?",
    "algorithm.generations (line 5): Input should be a valid integer, unable to parse string as "
    "an integer",
    "budget.calls (line 7): Input should be greater than or equal to 1",
]


def evo(*args: str, cwd: Path, columns: int) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "COLUMNS": str(columns),
           "EVO_DATABASE_URL": f"sqlite:///{cwd / 'evo.db'}"}
    return subprocess.run([sys.executable, "-m", "evo.app.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=120)


def assert_problems(out: subprocess.CompletedProcess, problems: list[str], columns: int) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stdout + out.stderr
    bullets = [line for line in out.stderr.splitlines() if line.startswith("  - ")]
    assert len(bullets) == len(problems), out.stderr
    for problem, line in zip(problems, bullets, strict=True):
        if len(problem) + 4 <= columns:
            assert line == f"  - {problem}"  # one problem a line
        else:  # a longer one wraps at the terminal's width, whole
            assert problem in " ".join(out.stderr.split())


@pytest.mark.parametrize("columns", [80, 140])
def test_evo_run_prints_every_problem_of_a_spec(tmp_path: Path, columns: int) -> None:
    (tmp_path / "bad.yaml").write_text(BAD)
    out = evo("run", "bad.yaml", cwd=tmp_path, columns=columns)
    assert out.stderr.startswith("error: invalid job spec in bad.yaml:")
    assert_problems(out, PROBLEMS, columns)
    assert not (tmp_path / "evo.db").exists() or _no_jobs(tmp_path)


@pytest.mark.parametrize("columns", [80, 140])
def test_evo_run_blames_a_set_value_on_its_set_item(tmp_path: Path, columns: int) -> None:
    out = evo("run", "quickstart", "--set", "budget.calls=-1", "--set", "seeed=2",
              cwd=tmp_path, columns=columns)
    assert_problems(out, [
        "budget.calls (from --set budget.calls=-1): Input should be greater than or equal to 1",
        "seeed (from --set seeed=2): unknown field; did you mean seed?",
    ], columns)
    assert "line 14" not in out.stderr


def _no_jobs(folder: Path) -> bool:
    with Store(f"sqlite:///{folder / 'evo.db'}") as store:
        return store.list_jobs() == []


@pytest.mark.parametrize("columns", [80, 140])
def test_a_job_id_may_be_shortened_to_four_characters(tmp_path: Path, columns: int) -> None:
    with Store(f"sqlite:///{tmp_path / 'evo.db'}") as store:
        for job_id in ("abcde1111111", "abcdf2222222"):
            store.create_job(job_id=job_id, name="n", task="topic", algorithm="opro",
                             spec={}, seed=0)
    out = evo("cancel", "abcde", cwd=tmp_path, columns=columns)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "job abcde1111111 is cancelled"
    ambiguous = evo("pause", "abcd", cwd=tmp_path, columns=columns)
    assert ambiguous.returncode == 2 and "Traceback" not in ambiguous.stderr
    assert " ".join(ambiguous.stderr.split()) == (
        "error: job id prefix 'abcd' is ambiguous: it matches 2 jobs (abcde1111111, "
        "abcdf2222222); give more of the id")
    short = evo("pause", "abc", cwd=tmp_path, columns=columns)
    assert short.returncode == 2
    assert " ".join(short.stderr.split()).startswith(
        "error: no job 'abc' (a job id may be shortened to a prefix of at least 4 characters) "
        f"in the store at {tmp_path / 'evo.db'} (the default store is ")


# --- the API -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('spec-errors') / 'evo.db'}"
    settings = Settings(database_url=url, executor="inprocess")
    with Store(url) as store, LiveApi(store, settings) as live, live.client(
            live.key("carol")) as c:
        yield c


def test_post_jobs_lists_every_problem_with_its_field(client: httpx.Client) -> None:
    r = client.post("/jobs", json={
        "task": "topc", "seeed": 1,
        "algorithm": {"name": "evoprompt-ga", "populaton": 6, "generations": "lots"},
        "budget": {"calls": -1},
        "evaluation": {"top_k": 0},
    })
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    for problem in detail:
        assert set(problem) == {"loc", "msg", "type", "field"}
        assert problem["loc"][0] == "body" and problem["field"] == ".".join(
            map(str, problem["loc"][1:]))
        assert "Value error" not in problem["msg"]
    by_field = {p["field"]: p["msg"] for p in detail}
    assert set(by_field) == {"task", "seeed", "algorithm.populaton", "algorithm.generations",
                             "budget.calls", "evaluation.top_k"}
    assert by_field["algorithm.populaton"] == "unknown field; did you mean population?"
    assert by_field["seeed"] == "unknown field; did you mean seed?"
    assert "did you mean topic?" in by_field["task"]


def test_a_problem_found_after_the_spec_is_read_names_its_field_too(client: httpx.Client) -> None:
    r = client.post("/jobs", json={"task": "topic", "budget": {"calls": 50}})
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["body", "budget", "calls"] and problem["field"] == "budget.calls"
    assert problem["msg"].startswith("50 calls cannot pay for the search")


def test_other_422s_carry_the_field_as_well(client: httpx.Client) -> None:
    r = client.get("/jobs", params={"limit": 0})
    (problem,) = r.json()["detail"]
    assert problem["loc"] == ["query", "limit"] and problem["field"] == "limit"
    empty = client.post("/jobs", content=b"")
    (problem,) = empty.json()["detail"]
    assert problem["loc"] == ["body"] and problem["field"] == "body"
    assert FieldProblem.at(("body", "task", "data", "train"), "m", "t").field == "task.data.train"
