"""Each job runs once, is paid for once and ends in one final state, on a real Ray cluster.

Job services run drivers as Ray tasks. A job the cluster cannot hold is refused at submission,
or, submitted elsewhere, fails once with the reason; a cancel stops a job whose workers are
still starting; an inline key reaches the Ray workers. Then the chaos test: `evo worker`
processes on PostgreSQL are killed with SIGKILL and restarted, a driver is killed, a job is
cancelled and one cannot be scheduled, and the store must show that every job ended once, that
no epoch of a job had two drivers, that the ledger agrees with each job's stats, and that every
completed job is the one an uninterrupted run makes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from evo.app.settings import Settings
from evo.spec_io import SpecError, parse_spec
from storage import Store
from tests.helpers import inline_key_spec
from tests.ray_helpers import drivers, ray_cluster
from tests.servers import Reply, ScriptedOpenAIServer, chat_reply
from workers import jobs
from workers.runner import optimize
from workers.service import JobService

pytestmark = pytest.mark.ray

FINAL = ("completed", "failed", "cancelled")


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One node of two CPUs."""
    with ray_cluster(2) as address:
        yield address


def scripted(seed: int, generations: int = 60) -> dict[str, Any]:
    return {
        "task": "sentiment",
        "models": {"task": {"provider": "scripted"}},
        "algorithm": {"name": "evoprompt-ga", "population": 4, "generations": generations,
                      "dev_subset": 12},
        "evaluation": {"top_k": 2},
        "budget": {"calls": 100_000},
        "seed": seed,
    }


# a local model whose one worker asks for more CPUs than any node has
TOO_BIG = {
    "task": "sentiment",
    "models": {"task": {"provider": "local", "threads": 64, "workers": 1}},
    "algorithm": {"name": "opro", "steps": 1},
    "evaluation": {"top_k": 1},
    "budget": {"calls": 5000},
}


def until(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while not (found := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return found


@pytest.fixture
def service(cluster: str, tmp_path: Path) -> Iterator[Callable[..., JobService]]:
    made: list[JobService] = []

    def make(**kw: Any) -> JobService:
        conf = Settings(database_url=f"sqlite:///{tmp_path / 'jobs.db'}", executor="ray",
                        ray_address=cluster, lease_s=3.0, **kw)
        svc = JobService(Store(conf.database_url), conf, poll_s=0.1)
        made.append(svc)
        svc.start()
        return svc

    yield make
    for svc in made:
        svc.stop()
        svc.store.close()


def test_a_job_the_cluster_cannot_hold_is_refused_at_submission(service) -> None:
    svc = service()
    with pytest.raises(SpecError) as err:
        svc.submit(parse_spec(TOO_BIG))
    (problem,) = err.value.errors
    assert problem.loc == ("models", "task", "threads")
    assert "64 CPUs" in problem.message and "largest node has 2" in problem.message
    assert svc.store.list_jobs() == []


def test_a_job_queued_elsewhere_that_the_cluster_cannot_hold_fails_once(service) -> None:
    svc = service(start_timeout_s=2.0)
    job = jobs.submit(svc.store, parse_spec(TOO_BIG))  # as `evo submit` queues it: unchecked
    svc.wake()
    done = until(lambda: (j := svc.store.get_job(job.id)).status in FINAL and j, 60, "the end")
    assert done.status == "failed"
    assert done.reason == ("could not start: the model workers could not start within 2 s: "
                           "each worker asks for 64 CPUs on one node, and the cluster's largest "
                           "node has 2")
    time.sleep(2.5)  # a few reaps later: still failed, never queued again
    assert svc.store.get_job(job.id).status == "failed"
    assert [e for e, _ in svc.store.lease_history(job.id)] == [1]
    ended = [p for _, p in svc.store.events(job.id, kind="JobEnded")]
    assert [(p["status"], p["epoch"]) for p in ended] == [("failed", 1)]
    until(lambda: not drivers(), 10, "its driver to exit")


def test_a_cancel_stops_a_job_whose_workers_are_still_starting(service) -> None:
    svc = service(start_timeout_s=600.0)
    job = jobs.submit(svc.store, parse_spec(TOO_BIG))
    svc.wake()
    until(lambda: drivers(), 30, "its driver to start")
    time.sleep(1.0)  # waiting for its workers, which never come
    asked = time.monotonic()
    jobs.cancel(svc.store, job.id)
    done = until(lambda: (j := svc.store.get_job(job.id)).status in FINAL and j, 10, "cancel")
    assert time.monotonic() - asked < 3.0  # found by the driver's watch, not by enforcement
    assert (done.status, done.reason) == ("cancelled", "cancelled by request")
    until(lambda: not drivers(), 10, "its driver to exit")
    time.sleep(1.5)
    assert svc.store.get_job(job.id).status == "cancelled"
    assert len(svc.store.lease_history(job.id)) == 1  # no other driver was started


def test_an_inline_key_reaches_the_ray_workers(service) -> None:
    secret = "sk-inline-ray-0123456789"
    reply = Reply(body=chat_reply("positive", logprobs=[("positive", -0.2), ("negative", -2)]))
    with ScriptedOpenAIServer([reply]) as server:
        spec = inline_key_spec(server.base_url, secret)
        svc = service()
        job = svc.submit(spec)
        done = until(lambda: (j := svc.store.get_job(job.id)).status in FINAL and j, 90, "end")
        assert done.status == "completed", done.reason
        assert server.received
        assert all(r.headers["authorization"] == f"Bearer {secret}" for r in server.received)
    assert secret not in repr(svc.store.get_job(job.id))


# --- chaos -------------------------------------------------------------------------------------


def snapshot(store: Store, job_id: str) -> dict[str, Any]:
    """What a job left, with candidate ids replaced by their position."""
    cands = store.candidates(job_id)
    index = {c.id: i for i, c in enumerate(cands)}
    job = store.get_job(job_id)
    calls = store.llm_calls(job_id)
    return {
        "candidates": [(c.text, c.operator, c.generation, tuple(index[p] for p in c.parents))
                       for c in cands],
        "scores": sorted((index[e.candidate_id], e.split, e.subset or "", e.value, e.n)
                         for e in store.evaluations(job_id)),
        "paid": Counter((c.purpose, c.prompt_tokens) for c in calls if not c.cached),
        "stats": {k: job.stats.get(k) for k in ("calls", "cached", "tokens", "best_dev",
                                                "best_test", "seed_dev", "best_search")},
    }


class Workers:
    """`evo worker` processes on one store and cluster, started and killed as the test says."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.proc: subprocess.Popen | None = None
        self.started = 0

    def start(self) -> None:
        self.started += 1
        log = (self.logs / f"worker-{self.started}.log").open("w")
        self.proc = subprocess.Popen([sys.executable, "-m", "evo.app.cli", "worker"], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT)

    def kill(self) -> None:
        assert self.proc is not None and self.proc.poll() is None, self.tail()
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                raise

    def tail(self) -> str:
        return (self.logs / f"worker-{self.started}.log").read_text()[-3000:]


def test_chaos_every_job_runs_once_and_ends_once(cluster: str, pg_url: str,
                                                 tmp_path: Path) -> None:
    seeds = [1, 2, 3, 4, 5]
    reference = {}
    for seed in seeds:  # each job uninterrupted, in process
        url = f"sqlite:///{tmp_path / f'ref-{seed}.db'}"
        with Store(url) as ref:
            result = optimize(scripted(seed), store=ref,
                              settings=Settings(database_url=url, executor="inprocess"))
            reference[seed] = snapshot(ref, result.job_id)
    env = {**os.environ, "EVO_DATABASE_URL": pg_url, "EVO_RAY_ADDRESS": cluster,
           "EVO_EXECUTOR": "ray", "EVO_LEASE_S": "3", "EVO_CANCEL_GRACE_S": "2",
           "EVO_START_TIMEOUT_S": "3", "EVO_MAX_JOBS": "4", "RAY_AUTH_MODE": "disabled"}
    env.pop("EVO_FAULTS", None)
    workers = Workers(env, tmp_path)
    faults: list[str] = []
    with Store(pg_url) as store:
        ids = {seed: jobs.submit(store, parse_spec(scripted(seed))).id for seed in seeds[:-1]}
        long = jobs.submit(store, parse_spec(scripted(9, generations=1000))).id
        stuck = jobs.submit(store, parse_spec(TOO_BIG)).id
        everything = [*ids.values(), long, stuck]

        def generations() -> int:
            return sum(len(store.events(j, kind="GenerationDone")) for j in everything)

        def progressed(after: int) -> bool:
            return generations() > after

        try:
            workers.start()
            # 1: the service dies mid-job and is restarted at once
            until(lambda: progressed(0), 90, "a generation")
            workers.kill()
            faults.append("SIGKILL service")
            workers.start()
            # 2: one job's driver dies
            mark = generations()
            running = until(lambda: progressed(mark + 3) and drivers(), 90, "a running driver")
            os.kill(running[0], signal.SIGKILL)
            faults.append("SIGKILL driver")
            # 3: a running job is cancelled
            until(lambda: store.get_job(long).status == "running"
                  and store.events(long, kind="GenerationDone"), 120, "the long job running")
            jobs.cancel(store, long)
            faults.append("cancel")
            # 4: the service dies again, right after it claimed a job (its driver starting)
            late = jobs.submit(store, parse_spec(scripted(seeds[-1]))).id
            ids[seeds[-1]] = late
            everything.append(late)
            until(lambda: store.lease_history(late), 120, "the late job's claim")
            workers.kill()
            faults.append("SIGKILL service just after a claim")
            workers.start()
            # 5: and once more mid-job
            mark = generations()
            until(lambda: progressed(mark + 2) or all(
                store.get_job(j).status in FINAL for j in everything), 120, "progress")
            workers.kill()
            faults.append("SIGKILL service")
            workers.start()
            until(lambda: all(store.get_job(j).status in FINAL for j in everything), 180,
                  "every job to end")
        finally:
            workers.stop()
        until(lambda: not drivers(), 15, "no driver process left")

        duplicates = 0
        for job_id in everything:
            job = store.get_job(job_id)
            events = [p for _, p in store.events(job_id)]
            by_epoch: dict[int, set[str]] = defaultdict(set)
            for p in events:
                if p.get("driver"):
                    by_epoch[p["epoch"]].add(p["driver"])
            duplicates += sum(len(d) - 1 for d in by_epoch.values())
            started = [p["epoch"] for p in events if p["kind"] == "JobStarted"]
            assert len(started) == len(set(started)), (job_id, started)
            granted = [e for e, _ in store.lease_history(job_id)]
            assert set(by_epoch) <= set(granted)
            calls = store.llm_calls(job_id)
            assert sum(not c.cached for c in calls) == job.stats.get("calls", 0), job_id
            assert sum(c.cached for c in calls) == job.stats.get("cached", 0), job_id
            ends = [p["status"] for p in events if p["kind"] == "JobEnded"]
            assert ends[-1] == job.status
            if job.status == "completed":
                assert "failed" not in ends
        epochs = sorted(store.get_job(j).lease_epoch for j in everything)
        print(f"\nchaos: {len(faults)} rounds ({', '.join(faults)}), {len(everything)} jobs, "
              f"{workers.started} service starts, final epochs {epochs}, "
              f"duplicates found: {duplicates}")
        assert duplicates == 0
        for seed, job_id in ids.items():
            job = store.get_job(job_id)
            assert job.status == "completed", (job.reason, workers.tail())
            assert snapshot(store, job_id) == reference[seed]
        assert store.get_job(long).status == "cancelled"
        failed = store.get_job(stuck)
        assert failed.status == "failed" and "64 CPUs" in failed.reason
        # the chaos did happen: jobs ran under more than one epoch
        assert sum(len(store.lease_history(j)) for j in everything) > len(everything)
