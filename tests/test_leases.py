"""Leases with fencing tokens, in the store, on SQLite and PostgreSQL: a claim grants one epoch,
a write under an epoch that is no longer the job's is refused whole, only an expired lease is
taken over, and a cancel its driver leaves unheeded is enforced."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from evo.candidate import Candidate
from storage import EvaluationRecord, LeaseLost, LLMCallRecord, Store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> Iterator[Store]:
    url = (f"sqlite:///{tmp_path}/leases.db" if request.param == "sqlite"
           else request.getfixturevalue("pg_url"))
    with Store(url) as s:
        yield s


def queued(store: Store, job_id: str = "j" * 32) -> str:
    store.create_job(job_id=job_id, name="n", task="toy", algorithm="opro", spec={}, seed=1)
    return job_id


def call(job_id: str) -> LLMCallRecord:
    return LLMCallRecord(job_id=job_id, candidate_id=None, purpose="evaluate", model="m",
                         prompt_tokens=3, completion_tokens=1, latency_s=0.1, usd=0.25)


def test_a_claim_raises_the_epoch_once_and_keeps_its_holder(store: Store) -> None:
    job_id = queued(store)
    lease = store.claim_job(job_id, "service-a", 30)
    assert (lease.epoch, lease.holder) == (1, "service-a")
    assert store.claim_job(job_id, "service-b", 30) is None  # running, lease not expired
    job = store.get_job(job_id)
    assert (job.status, job.lease_epoch, job.lease_holder) == ("running", 1, "service-a")
    assert job.started_at is not None and job.lease_expires_at > datetime.now(UTC)
    assert store.lease_history(job_id) == [(1, "service-a")]


def test_a_new_job_created_running_holds_epoch_one(store: Store) -> None:
    store.create_job(job_id="n" * 32, name="n", task="t", algorithm="a", spec={}, seed=1,
                     status="running", lease=("cli-x", 30))
    assert store.job_control("n" * 32) == ("running", None, 1)
    assert store.lease_history("n" * 32) == [(1, "cli-x")]
    with pytest.raises(ValueError, match="created running"):
        store.create_job(job_id="q" * 32, name="n", task="t", algorithm="a", spec={}, seed=1,
                         lease=("cli-x", 30))


def test_a_write_under_an_epoch_that_moved_on_is_refused_whole(store: Store) -> None:
    job_id = queued(store)
    old = store.claim_job(job_id, "a", 30)
    store.write_batch(job_id, candidates=[Candidate("c1", "first", 0, "seed")],
                      events=[{"kind": "JobStarted"}], lease=old)
    store.write_paid(job_id, [call(job_id)], [(0, "k0", {"text": "x"})], lease=old)
    # taken over: the job leaves "running" under a new epoch; then claimed again
    assert store.stop_running(job_id, old.epoch, "interrupted", "taken over")
    assert store.transition(job_id, ("interrupted",), status="queued")
    new = store.claim_job(job_id, "b", 30)
    assert new.epoch == old.epoch + 2
    before = (len(store.candidates(job_id)), len(store.events(job_id)),
              len(store.llm_calls(job_id)), len(store.paid_responses(job_id)))
    with pytest.raises(LeaseLost):
        store.write_batch(
            job_id, candidates=[Candidate("c2", "second", 1, "mutate", ("c1",))],
            evaluations=[EvaluationRecord("c1", "dev", 0.5, 4)], llm_calls=[call(job_id)],
            checkpoint=(0, {"state": 1}), events=[{"kind": "GenerationDone"}],
            job={"status": "completed"}, lease=old)
    with pytest.raises(LeaseLost):
        store.write_paid(job_id, [call(job_id)], [(1, "k1", {"text": "y"})], lease=old)
    after = (len(store.candidates(job_id)), len(store.events(job_id)),
             len(store.llm_calls(job_id)), len(store.paid_responses(job_id)))
    assert after == before
    assert store.latest_checkpoint(job_id) is None
    assert store.get_job(job_id).status == "running"
    store.write_batch(job_id, candidates=[Candidate("c2", "second", 1, "mutate", ("c1",))],
                      lease=new)  # the holder of the current epoch writes as before
    assert [c.id for c in store.candidates(job_id)] == ["c1", "c2"]


def test_a_write_after_the_job_ended_is_refused(store: Store) -> None:
    job_id = queued(store)
    lease = store.claim_job(job_id, "a", 30)
    store.write_batch(job_id, job={"status": "completed"}, lease=lease)
    with pytest.raises(LeaseLost):
        store.write_batch(job_id, events=[{"kind": "late"}], lease=lease)


def test_only_an_expired_lease_is_taken_over(store: Store) -> None:
    live, dead = queued(store, "l" * 32), queued(store, "d" * 32)
    store.claim_job(live, "alive", 30)
    lease = store.claim_job(dead, "gone", 0.2)
    assert store.take_over_expired("ran out") == []
    time.sleep(0.3)
    assert store.take_over_expired("ran out") == [(dead, "interrupted")]
    job = store.get_job(dead)
    assert (job.status, job.reason, job.lease_epoch, job.lease_holder) == (
        "interrupted", "ran out", lease.epoch + 1, None)
    ((_, ended),) = store.events(dead, kind="JobEnded")
    assert (ended["status"], ended["epoch"], ended["driver"]) == ("interrupted", 1, None)
    assert store.get_job(live).status == "running"
    # a resumed claim takes the job from where the takeover left it
    assert store.claim_job(dead, "next", 30, from_status=("interrupted",)).epoch == 3


def test_renewal_extends_the_holders_running_leases_only(store: Store) -> None:
    mine, other, ended = queued(store, "m" * 32), queued(store, "o" * 32), queued(store, "e" * 32)
    store.claim_job(mine, "me", 0.2)
    store.claim_job(other, "someone", 0.2)
    last = store.claim_job(ended, "me", 0.2)
    store.write_batch(ended, job={"status": "completed"}, lease=last)
    held = store.renew_leases("me", 30)
    assert [(h.job_id, h.epoch, h.control) for h in held] == [(mine, 1, None)]
    time.sleep(0.3)
    assert store.take_over_expired("ran out") == [(other, "interrupted")]


@pytest.mark.parametrize(("control", "status", "reason"), [
    ("cancel", "cancelled", "cancelled by request"),
    ("pause", "paused", "paused by request"),
])
def test_a_takeover_honours_the_request_that_was_pending(store: Store, control: str,
                                                         status: str, reason: str) -> None:
    job_id = queued(store)
    store.claim_job(job_id, "gone", 0.1)
    assert store.request_control(job_id, control)
    time.sleep(0.2)
    assert store.take_over_expired("ran out") == [(job_id, status)]
    job = store.get_job(job_id)
    assert (job.reason, job.control) == (reason, None)


def test_a_job_whose_driver_died_ends_as_its_pending_cancel_asked(store: Store) -> None:
    job_id = queued(store)
    lease = store.claim_job(job_id, "service", 30)
    store.write_batch(job_id, job={"stats": {"calls": 1, "cached": 0, "tokens": 4,
                                             "best_search": 0.5}}, lease=lease)
    store.write_paid(job_id, [call(job_id), call(job_id)], [], lease=lease)  # after that step
    assert store.request_control(job_id, "cancel")
    # its service finds the driver process gone: the cancel is not lost to the crash
    assert store.stop_running(job_id, lease.epoch, "interrupted", "driver gone") == "cancelled"
    job = store.get_job(job_id)
    assert (job.status, job.reason, job.control) == ("cancelled", "cancelled by request", None)
    assert job.ended_at is not None
    # what it paid after its last step counts: stats agree with the ledger
    assert job.stats == {"calls": 2, "cached": 0, "tokens": 8, "usd": 0.5, "best_search": 0.5}
    ((_, ended),) = store.events(job_id, kind="JobEnded")
    assert (ended["status"], ended["stats"]) == ("cancelled", job.stats)
    assert store.stop_running(job_id, lease.epoch, "interrupted", "again") is None


def test_an_unheeded_cancel_is_enforced_after_its_grace(store: Store) -> None:
    job_id = queued(store)
    lease = store.claim_job(job_id, "stuck", 30)
    assert store.request_control(job_id, "pause")
    assert store.request_control(job_id, "cancel")  # a cancel replaces a pending pause
    asked = store.get_job(job_id).control_at
    assert store.request_control(job_id, "cancel")  # asked again: the first time counts
    assert store.get_job(job_id).control_at == asked
    assert store.request_control(job_id, "pause")  # running: but the cancel stays
    assert store.get_job(job_id).control == "cancel"
    assert store.enforce_cancels(grace_s=10) == []
    store.set_control(job_id, "cancel", at=datetime.now(UTC) - timedelta(seconds=11))
    assert store.enforce_cancels(grace_s=10) == [job_id]
    job = store.get_job(job_id)
    assert (job.status, job.reason, job.lease_epoch) == ("cancelled", "cancelled by request",
                                                         lease.epoch + 1)
    assert job.ended_at is not None
    with pytest.raises(LeaseLost):  # the stuck driver can write nothing more
        store.write_batch(job_id, events=[{"kind": "GenerationDone"}], lease=lease)


def test_requests_reach_only_running_jobs(store: Store) -> None:
    job_id = queued(store)
    assert not store.request_control(job_id, "cancel")
    with pytest.raises(ValueError, match="unknown control"):
        store.request_control(job_id, "explode")


def test_concurrent_claims_grant_one_lease(pg_url: str) -> None:
    with Store(pg_url) as first:
        job_id = queued(first)
        stores = [Store(pg_url) for _ in range(6)]
        start = threading.Barrier(len(stores))
        won: list = []

        def claim(s: Store, i: int) -> None:
            start.wait()
            won.append(s.claim_job(job_id, f"service-{i}", 30))

        threads = [threading.Thread(target=claim, args=(s, i)) for i, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for s in stores:
            s.close()
        granted = [lease for lease in won if lease is not None]
        assert len(granted) == 1 and granted[0].epoch == 1
        assert first.lease_history(job_id) == [(1, granted[0].holder)]


def test_a_rewind_keeps_what_the_checkpoint_knew_and_is_fenced(store: Store) -> None:
    from evo.candidate import Outcome

    job_id = queued(store)
    lease = store.claim_job(job_id, "a", 30)
    store.write_batch(job_id, candidates=[Candidate("c1", "first", 0, "seed")],
                      evaluations=[EvaluationRecord("c1", "dev", v, 4) for v in (0.1, 0.2, 0.3)],
                      outcomes=[("c1", "dev", Outcome(f"e{i}", "", "x", 1.0)) for i in range(4)],
                      lease=lease)
    assert store.rewind(job_id, evaluations=2, outcomes=1, lease=lease) == 1 + 3
    assert [e.value for e in store.evaluations(job_id)] == [0.1, 0.2]
    assert [o.example_id for o in store.outcomes("c1", "dev")] == ["e0"]
    assert store.rewind(job_id, evaluations=2, outcomes=1, lease=lease) == 0  # idempotent
    assert store.stop_running(job_id, lease.epoch, "interrupted", "taken over")
    with pytest.raises(LeaseLost):  # a driver that lost its job deletes nothing
        store.rewind(job_id, evaluations=0, outcomes=0, lease=lease)
    assert len(store.evaluations(job_id)) == 2
