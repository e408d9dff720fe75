"""The job service: runs queued jobs, at most max_jobs at once, recovers interrupted ones at
start-up, interrupts its jobs when it stops, and never runs one job twice."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from evo.app.settings import Settings
from evo.spec import JobSpec
from evo.spec_io import parse_spec
from storage import Store
from tests.helpers import inline_key_spec
from tests.servers import Reply, ScriptedOpenAIServer, chat_reply
from workers import jobs
from workers.service import JobService


def scripted_spec(generations: int = 2, seed: int = 1, **algorithm) -> JobSpec:
    return parse_spec({
        "task": "sentiment",
        "models": {"task": {"provider": "scripted"}},
        "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": generations,
                      "dev_subset": 6, **algorithm},
        "evaluation": {"top_k": 1},
        "budget": {"calls": 100_000},
        "seed": seed,
    })


def wait_for(store: Store, ids: list[str], statuses: tuple[str, ...], timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while True:
        found = [store.get_job(i) for i in ids]
        if all(j.status in statuses for j in found):
            return found
        assert time.monotonic() < deadline, [(j.id[:6], j.status, j.reason) for j in found]
        time.sleep(0.1)


@pytest.fixture
def service(store: Store, settings: Settings):
    made = []

    def make(**kw) -> JobService:
        svc = JobService(store, settings.model_copy(update=kw), poll_s=0.1)
        made.append(svc)
        return svc

    yield make
    for svc in made:
        svc.stop()


def test_service_runs_queued_jobs_at_most_max_jobs_at_once(store: Store, service) -> None:
    svc = service(max_jobs=2)
    svc.start()
    ids = [svc.submit(scripted_spec(seed=s), owner="alice").id for s in range(4)]
    done = wait_for(store, ids, ("completed",), timeout_s=60)
    # from the stored run times, not by sampling: how many jobs ran at once at the most
    edges = sorted([(j.started_at, 1) for j in done] + [(j.ended_at, -1) for j in done],
                   key=lambda e: (e[0], e[1]))
    running = [sum(step for _, step in edges[: i + 1]) for i in range(len(edges))]
    assert max(running) == 2
    assert all(j.best_candidate_id and j.owner == "alice" and j.started_at for j in done)
    for job_id in ids:
        assert [p["kind"] for _, p in store.events(job_id, kind="JobStarted")] == ["JobStarted"]


def test_cancel_and_resume_through_the_service(store: Store, service) -> None:
    svc = service()
    svc.start()
    job = svc.submit(scripted_spec(generations=400))
    deadline = time.monotonic() + 30
    while not store.events(job.id, kind="GenerationDone"):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    jobs.cancel(store, job.id)
    (stopped,) = wait_for(store, [job.id], ("cancelled",), timeout_s=10)
    assert stopped.reason == "cancelled by request"
    kept = len(store.candidates(job.id))
    assert kept >= 3
    with pytest.raises(jobs.JobConflict):
        jobs.cancel(store, job.id)
    # resumed: continues from its checkpoint (nothing recorded is lost or repeated)
    svc.resume(job.id)
    deadline = time.monotonic() + 30
    while len(store.candidates(job.id)) <= kept + 3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    jobs.cancel(store, job.id)
    wait_for(store, [job.id], ("cancelled",), timeout_s=10)
    cands = store.candidates(job.id)
    assert len({c.id for c in cands}) == len(cands)


def test_startup_requeues_interrupted_and_dead_jobs(store: Store, settings: Settings,
                                                   service) -> None:
    first = service()
    first.start()
    job = first.submit(scripted_spec(generations=400))
    deadline = time.monotonic() + 30
    while len(store.events(job.id, kind="GenerationDone")) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.stop()  # its job stops as interrupted, with its checkpoint
    interrupted = store.get_job(job.id)
    assert interrupted.status == "interrupted" and "service stopped" in interrupted.reason
    checkpoint = store.latest_checkpoint(job.id)[0]
    # a second job whose driver died without a word: "running", heartbeat long ago
    dead = jobs.submit(store, scripted_spec(generations=1, seed=5))
    store.transition(dead.id, ("queued",), status="running")
    second = JobService(store, settings, poll_s=0.1)
    try:
        assert sorted(second.recover()) == sorted([job.id, dead.id])
        jobs.cancel(store, job.id)  # the long one need not run to its end here
        second.start()
        (revived,) = wait_for(store, [dead.id], ("completed",))
        assert revived.best_candidate_id
    finally:
        second.stop()
    assert store.latest_checkpoint(job.id)[0] == checkpoint


def test_two_services_never_run_the_same_job(pg_url: str, settings: Settings) -> None:
    conf = settings.model_copy(update={"database_url": pg_url, "max_jobs": 3})
    with Store(pg_url) as store:
        services = [JobService(Store(pg_url), conf, poll_s=0.05) for _ in range(2)]
        ids = [jobs.submit(store, scripted_spec(seed=s)).id for s in range(6)]
        for svc in services:
            svc.start()
        try:
            wait_for(store, ids, ("completed",))
        finally:
            for svc in services:
                svc.stop()
                svc.store.close()
        starts = Counter(job_id for job_id in ids for _ in store.events(job_id,
                                                                          kind="JobStarted"))
        assert starts == Counter({i: 1 for i in ids})


def test_inline_key_is_held_in_memory_and_used(store: Store, service) -> None:
    secret = "sk-inline-service-0123456789"
    reply = Reply(body=chat_reply("positive", logprobs=[("positive", -0.2), ("negative", -2)]))
    with ScriptedOpenAIServer([reply]) as server:
        spec = inline_key_spec(server.base_url, secret)
        svc = service()
        svc.start()
        job = svc.submit(spec)
        (done,) = wait_for(store, [job.id], ("completed", "failed"))
        assert done.status == "completed", done.reason
        assert server.received
        assert all(r.headers["authorization"] == f"Bearer {secret}" for r in server.received)
    assert secret not in repr(store.get_job(job.id))
    assert all(secret not in repr(p) for _, p in store.events(job.id))


@pytest.mark.ray
def test_service_runs_jobs_as_ray_tasks(tmp_path) -> None:
    import ray

    conf = Settings(database_url=f"sqlite:///{tmp_path / 'ray.db'}", executor="ray")
    with Store(conf.database_url) as store:
        svc = JobService(store, conf, poll_s=0.1)
        svc.start()
        try:
            job = svc.submit(scripted_spec())
            (done,) = wait_for(store, [job.id], ("completed",), timeout_s=120)
            assert done.best_candidate_id
        finally:
            svc.stop()
            ray.shutdown()


def test_a_job_that_cannot_start_fails_with_its_reason(store: Store, service,
                                                        tmp_path) -> None:
    data = tmp_path / "data.jsonl"
    data.write_text("".join(f'{{"input": "item {i}", "target": "{"ab"[i % 2]}"}}\n'
                            for i in range(30)))
    spec = parse_spec({"task": {"name": "mine", "data": {"train": str(data), "dev": str(data),
                                                         "test": str(data)},
                                "metric": "label_accuracy", "labels": ["a", "b"]},
                       "models": {"task": {"provider": "scripted"}},
                       "algorithm": {"name": "opro", "steps": 1}, "budget": {"calls": 1000}})
    job = jobs.submit(store, spec)
    data.unlink()  # gone before the service gets to it
    svc = service()
    svc.start()
    (failed,) = wait_for(store, [job.id], ("failed",))
    assert failed.reason.startswith("could not start:") and "data.jsonl" in failed.reason


def test_submit_refuses_a_budget_that_cannot_pay_for_final_scoring(store: Store) -> None:
    from evo.spec_io import SpecError

    with pytest.raises(SpecError) as err:
        jobs.submit(store, scripted_spec().model_copy(update={"budget": parse_spec(
            {"task": "sentiment", "budget": {"calls": 10}}).budget}))
    assert err.value.errors[0].loc == ("budget", "calls")
    assert store.list_jobs() == []


def test_start_fails_at_once_when_the_store_is_unreachable(tmp_path) -> None:
    from sqlalchemy.exc import OperationalError

    conf = Settings(database_url=f"sqlite:///{tmp_path / 'gone.db'}", executor="inprocess")
    store = Store(conf.database_url)
    (tmp_path / "gone.db").unlink()
    (tmp_path / "gone.db").mkdir()  # a directory where the database file was: unusable
    store.close()
    svc = JobService(store, conf)
    started = time.monotonic()
    with pytest.raises(OperationalError):
        svc.start()
    assert time.monotonic() - started < 10
