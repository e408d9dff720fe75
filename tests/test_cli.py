"""The ``evo`` command as a user runs it: a full job, listing, showing, exporting, and errors that
come out as one clear message (exit status 2) instead of a traceback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import yaml

EVO = [sys.executable, "-m", "evo.app.cli"]


def evo(*args: str, db: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "EVO_EXECUTOR": "inprocess", "EVO_DATABASE_URL": db,
                "COLUMNS": "200", **(env or {})}
    return subprocess.run([*EVO, *args], capture_output=True, text=True, cwd=cwd, env=full_env,
                          timeout=120)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


SCRIPTED = ["--set", "models.task.provider=scripted", "--set", "algorithm.population=3",
            "--set", "algorithm.generations=2", "--set", "budget.calls=20000"]


def test_run_show_export_round_trip(tmp_path: Path, db: str) -> None:
    out = evo("run", "quickstart", *SCRIPTED, db=db, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "Leaderboard" in out.stdout and "seed" in out.stdout
    job_id = out.stdout.split("job ")[-1].split()[0]
    assert len(job_id) == 32

    listing = evo("jobs", db=db, cwd=tmp_path)
    assert job_id[:8] in listing.stdout and "completed" in listing.stdout

    shown = evo("show", job_id[:8], db=db, cwd=tmp_path)
    assert shown.returncode == 0 and "Population per generation" in shown.stdout
    assert shown.stdout.count("\n") > 10

    exported = json.loads(evo("export", job_id[:8], "--format", "json", "--top", "2", db=db,
                              cwd=tmp_path).stdout)
    assert exported["job_id"] == job_id and exported["algorithm"] == "evoprompt-ga"
    assert len(exported["prompts"]) == 2
    assert exported["prompts"][0]["dev_score"] >= exported["prompts"][1]["dev_score"]
    assert exported["prompts"][0]["test_score"] is not None
    as_yaml = yaml.safe_load(evo("export", job_id, "-f", "yaml", db=db, cwd=tmp_path).stdout)
    assert as_yaml["prompts"][0]["prompt"] == exported["prompts"][0]["prompt"]
    md = evo("export", job_id, "-f", "md", db=db, cwd=tmp_path).stdout
    assert md.startswith("# quickstart") and exported["prompts"][0]["prompt"] in md
    txt = evo("export", job_id, "-f", "txt", db=db, cwd=tmp_path).stdout
    assert txt.strip() == exported["prompts"][0]["prompt"]
    target = tmp_path / "best.md"
    evo("export", job_id, "-f", "md", "-o", str(target), db=db, cwd=tmp_path)
    assert target.read_text().strip() == md.strip()


def assert_clean_error(out: subprocess.CompletedProcess, *needles: str) -> None:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr + out.stdout
    for needle in needles:
        assert needle in out.stderr, out.stderr


def assert_no_jobs(db: str) -> None:
    """Bad input must leave nothing half-written behind."""
    from storage import Store

    with Store(db) as store:
        assert store.list_jobs() == []


def test_unknown_algorithm(tmp_path: Path, db: str) -> None:
    out = evo("run", "quickstart", "--set", "algorithm.name=annealing", db=db, cwd=tmp_path)
    assert_clean_error(out, "algorithm.name", "unknown algorithm 'annealing'", "evoprompt-ga")


def test_wrong_type_names_field_and_line(tmp_path: Path, db: str) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("task: sentiment\nalgorithm:\n  name: opro\n  steps: lots\n")
    out = evo("run", str(spec), db=db, cwd=tmp_path)
    assert_clean_error(out, "algorithm.steps", "line 4", "job.yaml")


def test_unknown_task_and_missing_spec(tmp_path: Path, db: str) -> None:
    assert_clean_error(evo("run", "quickstart", "--set", "task=sentimen", db=db, cwd=tmp_path),
                       "unknown task 'sentimen'")
    assert_clean_error(evo("run", "no-such-spec", db=db, cwd=tmp_path), "no-such-spec",
                       "quickstart")


def test_broken_data_row_names_file_and_line(tmp_path: Path, db: str) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "good", "label": "positive"}\n{"text": "bad", "label": \n')
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({"task": {
        "name": "mine", "data": str(data), "columns": {"input": "text", "target": "label"},
        "labels": ["positive", "negative"], "seed_prompts": ["Good or bad?"],
        "metric": "label_accuracy"}}))
    out = evo("run", str(spec), db=db, cwd=tmp_path)
    assert_clean_error(out, "data.jsonl:2", "invalid JSON")
    assert_no_jobs(db)


def test_missing_column_is_named(tmp_path: Path, db: str) -> None:
    data = tmp_path / "data.csv"
    data.write_text("text,label\ngood,positive\nbad,negative\n")
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump({"task": {
        "name": "mine", "data": str(data), "columns": {"input": "review", "target": "label"},
        "labels": ["positive", "negative"], "seed_prompts": ["Good or bad?"],
        "metric": "label_accuracy"}}))
    out = evo("run", str(spec), db=db, cwd=tmp_path)
    assert_clean_error(out, "review", "data.csv")
    assert_no_jobs(db)


def test_unreachable_endpoint(tmp_path: Path, db: str) -> None:
    out = evo("run", "quickstart", "--set", "models.task.provider=openai",
              "--set", "models.task.model=m", "--set", "models.task.base_url=http://127.0.0.1:9/v1",
              "--set", "models.task.max_retries=0", db=db, cwd=tmp_path)
    assert_clean_error(out, "127.0.0.1:9")
    from storage import Store

    with Store(db) as store:  # the attempt is on record as failed, with the reason, nothing else
        (job,) = store.list_jobs()
        assert job.status == "failed" and "127.0.0.1:9" in job.reason
        assert store.candidates(job.id) == []


def test_a_job_the_local_cluster_cannot_hold_is_refused_before_it_starts(
    tmp_path: Path, db: str
) -> None:
    out = evo("run", "quickstart", "--set", "models.task.threads=64", db=db, cwd=tmp_path,
              env={"EVO_EXECUTOR": "ray"})
    assert_clean_error(out, "models.task.threads", "64 CPUs")
    assert_no_jobs(db)


def test_unknown_job_and_format(tmp_path: Path, db: str) -> None:
    assert_clean_error(evo("show", "abcdef12", db=db, cwd=tmp_path), "no store at")
    assert evo("db", "upgrade", db=db, cwd=tmp_path).returncode == 0
    assert_clean_error(evo("show", "abcdef12", db=db, cwd=tmp_path),
                       f"no job 'abcdef12' in the store at {tmp_path / 'cli.db'}")
    assert_clean_error(evo("export", "abcdef12", "-f", "docx", db=db, cwd=tmp_path),
                       "unknown format 'docx'")


def test_tasks_and_algorithms_listed(tmp_path: Path, db: str) -> None:
    tasks = evo("tasks", db=db, cwd=tmp_path).stdout
    for name in ("sentiment", "topic", "arithmetic", "summary"):
        assert name in tasks
    algos = evo("algorithms", db=db, cwd=tmp_path).stdout
    assert "evoprompt-ga" in algos and "opro" in algos


def test_usage_errors_are_short(tmp_path: Path, db: str) -> None:
    out = evo("jobs", "--no-such-flag", db=db, cwd=tmp_path)
    assert out.returncode == 2 and "No such option" in out.stderr
    assert "Traceback" not in out.stderr


def test_queue_a_job_and_let_a_worker_run_it(tmp_path: Path, db: str) -> None:
    """submit → worker runs it → the job is completed; cancel/requeue/pause act on the queue."""
    from storage import Store

    queued = evo("submit", "quickstart", *SCRIPTED, db=db, cwd=tmp_path)
    assert queued.returncode == 0, queued.stderr
    job_id = queued.stdout.split("job ")[1].split()[0]
    held = evo("submit", "quickstart", *SCRIPTED, db=db, cwd=tmp_path)
    other = held.stdout.split("job ")[1].split()[0]
    assert "is paused" in evo("pause", other[:8], db=db, cwd=tmp_path).stdout
    assert "is queued" in evo("requeue", other[:8], db=db, cwd=tmp_path).stdout
    assert "is cancelled" in evo("cancel", other[:8], db=db, cwd=tmp_path).stdout
    again = evo("cancel", other[:8], db=db, cwd=tmp_path)
    assert again.returncode == 2 and "only queued, running, paused or interrupted" in again.stderr
    assert "Traceback" not in again.stderr

    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "EVO_DATABASE_URL": db}
    worker = subprocess.Popen([*EVO, "worker"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        with Store(db) as store:
            import time

            deadline = time.monotonic() + 90
            while store.get_job(job_id).status != "completed":
                assert time.monotonic() < deadline and worker.poll() is None
                time.sleep(0.2)
            assert store.get_job(other).status == "cancelled"  # never run
    finally:
        worker.send_signal(2)  # Ctrl-C
        out, errs = worker.communicate(timeout=30)
    assert worker.returncode == 0, errs
    assert f"job {job_id} completed" in out


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_a_worker_stops_cleanly_on_sigterm_and_sigint(tmp_path: Path, db: str, stop: int) -> None:
    """A container runtime stops it with SIGTERM; Ctrl-C must work even where the shell that
    started it in the background left SIGINT ignored."""
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "EVO_DATABASE_URL": db}
    worker = subprocess.Popen(
        [*EVO, "worker"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        assert worker.stdout is not None
        assert "running queued jobs" in worker.stdout.readline()
    finally:
        worker.send_signal(stop)
        out, errs = worker.communicate(timeout=30)
    assert worker.returncode == 0, errs
    assert "stopping: running jobs are interrupted" in out and "Traceback" not in errs


@pytest.mark.ray
def test_a_worker_stopped_leaves_no_process_of_the_ray_cluster_it_started(
    tmp_path: Path, db: str
) -> None:
    from tests.ray_helpers import marked

    mark = uuid.uuid4().hex  # inherited by every process the worker starts, Ray's included
    env = {**os.environ, "EVO_EXECUTOR": "ray", "EVO_DATABASE_URL": db, "EVO_TEST_MARK": mark,
           "RAY_AUTH_MODE": "disabled"}
    worker = subprocess.Popen([*EVO, "worker"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        assert worker.stdout is not None
        assert "running queued jobs" in worker.stdout.readline()
        started = marked("EVO_TEST_MARK", mark)
        assert len(started) > 3, started  # the worker, and Ray's head processes and agents
    finally:
        worker.send_signal(signal.SIGTERM)
        out, errs = worker.communicate(timeout=60)
    assert worker.returncode == 0, errs
    # one line for the stop: no native stack dump from Ray's signal handler, nothing on stderr
    assert out.splitlines()[-1] == "stopping: running jobs are interrupted and will resume"
    assert errs == ""
    time.sleep(2)
    left = marked("EVO_TEST_MARK", mark)
    assert left == [], [Path(f"/proc/{pid}/cmdline").read_bytes()[:60] for pid in left]


def test_submit_refuses_inline_keys_and_db_commands(tmp_path: Path, db: str) -> None:
    spec = tmp_path / "keyed.yaml"
    spec.write_text(yaml.safe_dump({"task": "sentiment", "models": {"task": {
        "provider": "openai", "model": "m", "api_key": "sk-not-to-be-stored"}}}))
    out = evo("submit", str(spec), db=db, cwd=tmp_path)
    assert out.returncode == 2 and "inline api_key" in out.stderr
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert_clean_error(evo("db", "current", db=fresh, cwd=tmp_path), "no store at")
    up = evo("db", "upgrade", db=fresh, cwd=tmp_path)
    assert up.returncode == 0 and "empty →" in up.stdout
    assert "nothing to do" in evo("db", "upgrade", db=fresh, cwd=tmp_path).stdout
    assert "newest" in evo("db", "current", db=fresh, cwd=tmp_path).stdout


def test_bench_runs_a_benchmark_script_with_its_own_options(tmp_path: Path, db: str) -> None:
    helped = evo("bench", "savings", "--help", db=db, cwd=tmp_path)
    assert helped.returncode == 0 and "--crash-after" in helped.stdout
    unknown = evo("bench", "nope", db=db, cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown benchmark 'nope'" in unknown.stderr
