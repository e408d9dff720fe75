"""The command line over a real local Ray cluster: Ray's start-up notices and native stack dumps
stay out of its output, `evo serve` stops on SIGTERM with one line, and a job whose model
workers are killed fails in one line that says how to continue it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from storage import Store
from tests.ray_helpers import marked
from tests.servers import Reply, ScriptedOpenAIServer, chat_reply, free_port

pytestmark = pytest.mark.ray

EVO = [sys.executable, "-m", "evo.app.cli"]
# what Ray prints when left to itself: its authentication notice, the warning of a SIGTERM
# handler it cannot set from a thread, and the native stack dump of its signal handler
RAY_NOISE = ("Token authentication", "SIGTERM handler is not set", "SIGTERM received",
             "logging.cc", "Traceback")


def ray_env(tmp_path: Path, db: str, mark: str, **extra: str) -> dict[str, str]:
    env = {**os.environ, "EVO_EXECUTOR": "ray", "EVO_DATABASE_URL": db, "EVO_TEST_MARK": mark,
           "COLUMNS": "80", **extra}
    # Ray's default authentication mode, whose notice is one of those kept quiet; its token
    # goes under this HOME, not the user's
    env.pop("RAY_AUTH_MODE", None)
    env["HOME"] = str(tmp_path)
    return env


def wait_until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_stops_on_sigterm_with_one_line(tmp_path: Path) -> None:
    mark = uuid.uuid4().hex  # inherited by every process the server starts, Ray's included
    db = f"sqlite:///{tmp_path / 'serve.db'}"
    port = free_port()
    server = subprocess.Popen([*EVO, "serve", "--port", str(port)], cwd=tmp_path,
                              env=ray_env(tmp_path, db, mark), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: answers(f"http://127.0.0.1:{port}/api/v1/health") or
                   server.poll() is not None, 120, "the server to answer")
        assert server.poll() is None
        assert len(marked("EVO_TEST_MARK", mark)) > 3  # the server, Ray's head and its agents
    finally:
        server.send_signal(signal.SIGTERM)
        out, errs = server.communicate(timeout=90)
    assert server.returncode == 0, errs
    for noise in RAY_NOISE:
        assert noise not in out + errs, (noise, out, errs)
    # stderr: only the notice that there are no keys yet; stdout: where it serves, requests,
    # and one line for the stop
    assert errs == "no API keys yet: make one with `evo keys create NAME --admin`\n"
    lines = [line for line in out.splitlines() if '"GET /api/v1/health' not in line]
    assert lines[0].startswith(f"dashboard on http://127.0.0.1:{port}/")
    assert lines[-1] == ("evo serve stopped: running jobs were interrupted and resume at the "
                         "next start")
    assert not any("INFO" in line for line in lines)
    time.sleep(2)
    assert marked("EVO_TEST_MARK", mark) == []  # the cluster it started went with it


def test_a_job_whose_model_workers_are_killed_fails_in_one_line_and_resumes(
    tmp_path: Path,
) -> None:
    mark = uuid.uuid4().hex
    db = f"sqlite:///{tmp_path / 'run.db'}"
    # slow answers at first, so the job is still running when its workers are killed
    replies = [Reply(body=chat_reply("Which topic is this?"), delay_s=1.0)] * 8
    with ScriptedOpenAIServer([*replies, Reply(body=chat_reply("Which topic is this?"))]) as llm:
        spec = ["quickstart", "-q", "--set", "models.task.provider=openai",
                "--set", "models.task.model=m", "--set", f"models.task.base_url={llm.base_url}",
                "--set", "algorithm.population=3", "--set", "algorithm.generations=2",
                "--set", "algorithm.dev_subset=10", "--set", "evaluation.top_k=1"]
        env = ray_env(tmp_path, db, mark)
        run = subprocess.Popen([*EVO, "run", *spec], cwd=tmp_path, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_until(lambda: len(llm.received) >= 2 or run.poll() is not None, 120,
                       "the job's first calls")
            workers = [pid for pid in marked("EVO_TEST_MARK", mark)
                       if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::LLMWorker")]
            assert workers, "no model worker of this job is running"
            for pid in workers:  # as the kernel does to a process when memory runs out
                os.kill(pid, signal.SIGKILL)
        finally:
            out, errs = run.communicate(timeout=120)
        assert run.returncode == 2, (out, errs)
        with Store(db) as store:
            (job,) = store.list_jobs()
        assert job.status == "failed" and "every LLM worker failed" in job.reason
        for noise in RAY_NOISE:
            assert noise not in errs, (noise, errs)
        assert "class_name:" not in errs  # the pages of detail in Ray's error for a dead actor
        # the end of the output: the reason on one line, then how to go on
        assert errs.splitlines()[-2:] == [
            f"error: job {job.id} failed: {job.reason}",
            f"continue it with: evo resume {job.id[:8]}",
        ]

        resumed = subprocess.run([*EVO, "resume", job.id[:8], "-q"], cwd=tmp_path, env=env,
                                 capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        assert f"job {job.id} completed" in " ".join(resumed.stdout.split())
