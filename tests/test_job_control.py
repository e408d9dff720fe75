"""Cancel, pause and resume requests: the state rules, and a running driver acting on them."""

from __future__ import annotations

import asyncio
import time

import pytest

from evo.spec import JobSpec
from storage import Store
from tests.driver_helpers import run_toy, snapshot
from workers import jobs
from workers.driver import Driver

LONG = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 40}, "seed": 3}


def slow_driver(store: Store, spec: dict, job_id: str, latency_s: float = 0.01) -> Driver:
    driver = run_toy(store, spec, job_id=job_id)
    for worker in driver.search.task_pool.workers:
        worker.client.latency_s = latency_s
    return driver


async def until(check, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


def generations_done(store: Store, job_id: str) -> int:
    return len(store.events(job_id, kind="GenerationDone"))


async def test_cancel_stops_a_running_job_promptly_and_keeps_its_work(store: Store) -> None:
    driver = slow_driver(store, LONG, "c" * 32)
    run = asyncio.create_task(driver.run())
    await until(lambda: generations_done(store, driver.job_id) >= 1)
    job = jobs.cancel(store, driver.job_id)
    assert job.status == "running" and job.control == "cancel"
    asked = time.monotonic()
    result = await asyncio.wait_for(run, 10)
    assert time.monotonic() - asked < 3 * Driver.CONTROL_POLL_S + 1.0
    assert result.status == "cancelled" and result.reason == "cancelled by request"
    job = store.get_job(driver.job_id)
    assert (job.status, job.control, job.reason) == ("cancelled", None, "cancelled by request")
    assert job.ended_at is not None
    # what was done is kept: every candidate written, every paid call in the ledger
    assert len(store.candidates(driver.job_id)) >= 4
    paid = [c for c in store.llm_calls(driver.job_id) if not c.cached]
    assert len(paid) == job.stats["calls"] > 0
    ended = store.events(driver.job_id, kind="JobEnded")
    assert [p["status"] for _, p in ended] == ["cancelled"]


async def test_pause_stops_at_a_generation_boundary_and_resume_gives_the_same_job(
    tmp_path,
) -> None:
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 6}, "seed": 9}
    with Store(f"sqlite:///{tmp_path / 'straight.db'}") as store:
        straight = run_toy(store, spec, job_id="s" * 32)
        await straight.run()
        expected = snapshot(store, straight.job_id)
    with Store(f"sqlite:///{tmp_path / 'paused.db'}") as store:
        # slow enough that generations remain when the watch next polls (every 0.5 s)
        driver = slow_driver(store, spec, "p" * 32, latency_s=0.03)
        run = asyncio.create_task(driver.run())
        await until(lambda: generations_done(store, driver.job_id) >= 1)
        assert jobs.pause(store, driver.job_id).control == "pause"
        result = await asyncio.wait_for(run, 20)
        assert result.status == "paused"
        job = store.get_job(driver.job_id)
        assert job.status == "paused" and job.control is None
        done = generations_done(store, driver.job_id)
        assert 1 <= done < 6
        assert store.latest_checkpoint(driver.job_id)[0] == done - 1
        assert jobs.requeue(store, driver.job_id).status == "queued"
        again = run_toy(store, spec, job_id=driver.job_id)
        final = await again.run(resume=True)
        assert final.status == "completed"
        assert snapshot(store, driver.job_id) == expected


def queued(store: Store, job_id: str = "q" * 32) -> str:
    store.create_job(job_id=job_id, name="n", task="toy", algorithm="opro", spec={}, seed=1,
                     status="queued")
    return job_id


def test_state_rules(store: Store) -> None:
    job_id = queued(store)
    assert jobs.pause(store, job_id).status == "paused"
    with pytest.raises(jobs.JobConflict, match="only queued or running"):
        jobs.pause(store, job_id)
    assert jobs.requeue(store, job_id).status == "queued"
    job = jobs.cancel(store, job_id)
    assert (job.status, job.reason) == ("cancelled", "cancelled by request")
    with pytest.raises(jobs.JobConflict, match="can be cancelled"):
        jobs.cancel(store, job_id)
    store.set_status(job_id, "completed")
    with pytest.raises(jobs.JobConflict, match="is completed; only paused, interrupted"):
        jobs.requeue(store, job_id)
    with pytest.raises(jobs.JobNotFound):
        jobs.cancel(store, "nope" * 8)


def test_transition_is_taken_once(store: Store) -> None:
    job_id = queued(store)
    moves = [store.transition(job_id, ("queued",), status="running") for _ in range(3)]
    assert moves == [True, False, False]
    assert store.transition("x" * 32, ("queued",), status="running") is False
    with pytest.raises(ValueError, match="unknown job status"):
        store.transition(job_id, ("nonsense",), status="queued")


async def test_a_job_queued_by_submit_runs_under_its_stored_id(store: Store) -> None:
    spec = JobSpec.model_validate({"task": "sentiment", "models": {"task": {"provider":
                                   "scripted"}}, "algorithm": {"name": "opro", "steps": 1}})
    job = jobs.submit(store, spec, owner="alice")
    assert (job.status, job.owner, job.started_at) == ("queued", "alice", None)
    assert store.transition(job.id, ("queued",), status="running")
    driver = run_toy(store, {"algorithm": {"name": "opro", "steps": 1}}, job_id=job.id)
    result = await driver.run(resume=True)
    stored = store.get_job(job.id)
    assert result.status == stored.status == "completed"
    assert stored.owner == "alice" and stored.started_at is not None



class CancelDuringMetaWrites(Store):
    """Asks for the job's cancel from inside the first meta-LLM ledger write, then makes that
    write and those after it slow (each a little slower), so the cancel reaches the driver while
    one is on its way and the rounds that returned meanwhile wait behind it."""

    slow = 0

    def write_paid(self, job_id, calls, responses, **fenced) -> None:
        calls = list(calls)
        if any(c.purpose != "evaluate" for c in calls) and self.get_job(job_id):
            if self.slow == 0:
                jobs.cancel(self, job_id)
            self.slow += 1
            time.sleep(Driver.CONTROL_POLL_S + 0.2 + 0.1 * self.slow)
        super().write_paid(job_id, calls, responses, **fenced)


async def test_a_cancel_during_ledger_writes_ends_only_after_they_land(tmp_path) -> None:
    with CancelDuringMetaWrites(f"sqlite:///{tmp_path / 'slow.db'}") as store:
        driver = slow_driver(store, LONG, "w" * 32)
        result = await asyncio.wait_for(driver.run(), 20)
        assert result.status == "cancelled" and store.slow >= 1
        # read at once: nothing may still be on its way to the store, nor waiting to be written
        paid = [c for c in store.llm_calls(driver.job_id) if not c.cached]
        assert len(paid) == store.get_job(driver.job_id).stats["calls"] > 0


async def test_a_driver_whose_job_was_taken_over_stops_and_writes_nothing_more(
    store: Store,
) -> None:
    driver = slow_driver(store, LONG, "t" * 32)
    run = asyncio.create_task(driver.run())
    await until(lambda: generations_done(store, driver.job_id) >= 1)
    epoch = store.get_job(driver.job_id).lease_epoch
    # another service found its lease expired: the job leaves running under a new epoch
    assert store.stop_running(driver.job_id, epoch, "interrupted", "its lease ran out")
    taken = (len(store.candidates(driver.job_id)), len(store.events(driver.job_id)),
             len(store.llm_calls(driver.job_id)))
    result = await asyncio.wait_for(run, 5)
    assert result.status == "lost"
    await asyncio.sleep(2 * Driver.CONTROL_POLL_S)
    job = store.get_job(driver.job_id)
    assert (job.status, job.reason, job.lease_epoch) == ("interrupted", "its lease ran out",
                                                         epoch + 1)
    assert (len(store.candidates(driver.job_id)), len(store.events(driver.job_id)),
            len(store.llm_calls(driver.job_id))) == taken


async def test_a_newer_claim_fences_out_the_older_driver_and_the_job_is_the_same(
    tmp_path,
) -> None:
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 6}, "seed": 4}
    with Store(f"sqlite:///{tmp_path / 'straight.db'}") as store:
        straight = run_toy(store, spec, job_id="s" * 32)
        await straight.run()
        expected = snapshot(store, straight.job_id)
    with Store(f"sqlite:///{tmp_path / 'two.db'}") as store:
        first = slow_driver(store, spec, "d" * 32, latency_s=0.03)
        running = asyncio.create_task(first.run())
        await until(lambda: generations_done(store, first.job_id) >= 1)
        second = run_toy(store, spec, job_id=first.job_id)
        final = await second.run(resume=True)  # claims the job: the first driver is fenced
        assert (await asyncio.wait_for(running, 5)).status == "lost"
        assert final.status == "completed"
        assert snapshot(store, first.job_id) == expected
        drivers = {p["epoch"]: set() for _, p in store.events(first.job_id)}
        for _, p in store.events(first.job_id):
            if p.get("driver"):
                drivers[p["epoch"]].add(p["driver"])
        assert [len(d) for e, d in sorted(drivers.items())] == [1, 1]
        paid = [c for c in store.llm_calls(first.job_id) if not c.cached]
        assert len(paid) == store.get_job(first.job_id).stats["calls"]
