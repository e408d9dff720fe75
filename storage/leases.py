"""Leases with fencing tokens: the store's half of "each job runs once".

A job is run under a lease: a holder (a service, or a CLI process), an epoch and an expiry, all
on the job's row. Taking a job is one conditional UPDATE that also raises the epoch (``claim``);
the holder renews the expiry while it runs the job (``renew``). Every write a driver makes starts
with ``fence``: it locks the job's row and goes on only while the job is running under the
driver's epoch, so a driver whose job was claimed again, taken over or cancelled can no longer
write anything, and learns so from the refusal (``LeaseLost``). On PostgreSQL the lock holds
until the transaction commits, so a takeover either lands before a write (the write is refused)
or waits for it (the write belongs to the epoch that made it); SQLite has one writer at a time
anyway.

Any move of a running job that its own driver does not make (a takeover of an expired lease, a
cancel its driver did not act on, a service stopping, a driver found dead) goes through
``stop_running``: the job leaves ``running`` and its epoch rises, in one statement, with a
``JobEnded`` event in the same transaction.

This is the scheme of fencing tokens (each grant of the lock carries a number that only grows,
and the resource refuses writes that carry an older one), with the store as the resource; the
holder and expiry fields follow a Kubernetes Lease. Expiry is judged on the clock of the process
that looks, so machines sharing a store must agree on time to well within a lease's length.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import case, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from storage.errors import LeaseLost
from storage.models import EventRow, JobLeaseRow, JobRow
from storage.queries import call_totals
from storage.records import HeldJob, Lease

_NO_SYNC = {"synchronize_session": False}

# what a pending control request makes of a running job stopped from outside its driver
_ASKED = {
    "cancel": ("cancelled", "cancelled by request"),
    "pause": ("paused", "paused by request"),
}


def fence(session: Session, lease: Lease) -> None:
    """The first statement of a write made under ``lease``; raises ``LeaseLost`` when the job is
    no longer running under its epoch (and then the transaction writes nothing). The job's row
    stays locked until the write commits (FOR UPDATE: no new row version, as an UPDATE would
    leave on PostgreSQL at every write; SQLite's write transaction is exclusive already)."""
    row = session.execute(
        select(JobRow.status, JobRow.lease_epoch)
        .where(JobRow.id == lease.job_id)
        .with_for_update()
    ).first()
    if row is None or row.status != "running" or row.lease_epoch != lease.epoch:
        raise LeaseLost(lease.job_id, lease.epoch)


def claim(
    session: Session,
    job_id: str,
    holder: str,
    ttl_s: float,
    from_status: Iterable[str],
    *,
    now: datetime,
    take_over: bool = False,
) -> Lease | None:
    """Move the job to ``running`` under a new epoch held by ``holder``, if its status is one of
    ``from_status``; a running job only when its lease has expired (or with ``take_over``)."""
    allowed = set(from_status)
    row = session.execute(
        select(JobRow.status, JobRow.lease_epoch, JobRow.lease_expires_at).where(
            JobRow.id == job_id
        )
    ).first()
    if row is None or row.status not in allowed:
        return None
    if row.status == "running" and not take_over and not _expired(row.lease_expires_at, now):
        return None
    epoch = row.lease_epoch + 1
    moved = session.execute(
        update(JobRow)
        .where(
            JobRow.id == job_id,
            JobRow.status == row.status,
            JobRow.lease_epoch == row.lease_epoch,
        )
        .values(
            status="running",
            reason=None,
            ended_at=None,
            started_at=func.coalesce(JobRow.started_at, now),
            heartbeat_at=now,
            lease_holder=holder,
            lease_epoch=epoch,
            lease_expires_at=now + timedelta(seconds=ttl_s),
        ),
        execution_options=_NO_SYNC,
    ).rowcount  # type: ignore[attr-defined]
    if moved == 0:
        return None  # another claim was first
    record(session, Lease(job_id, epoch, holder), now)
    return Lease(job_id, epoch, holder)


def record(session: Session, lease: Lease, now: datetime) -> None:
    """Keep the grant in the lease history (an epoch granted twice violates its key)."""
    session.execute(
        insert(JobLeaseRow).values(
            job_id=lease.job_id, epoch=lease.epoch, holder=lease.holder, claimed_at=now
        )
    )


def renew(session: Session, holder: str, ttl_s: float, *, now: datetime) -> list[HeldJob]:
    """Extend every lease ``holder`` has on a running job; the jobs it still holds."""
    rows = session.execute(
        update(JobRow)
        .where(JobRow.lease_holder == holder, JobRow.status == "running")
        .values(lease_expires_at=now + timedelta(seconds=ttl_s), heartbeat_at=now)
        .returning(JobRow.id, JobRow.lease_epoch, JobRow.control),
        execution_options=_NO_SYNC,
    )
    return [HeldJob(r.id, r.lease_epoch, r.control) for r in rows]


def expired(
    session: Session, *, now: datetime, renewed_before: datetime | None = None
) -> list[tuple[str, int]]:
    """(id, epoch) of running jobs whose lease has run out (or was last renewed before
    ``renewed_before``)."""
    late = [JobRow.lease_expires_at.is_(None), JobRow.lease_expires_at < now]
    if renewed_before is not None:
        late += [JobRow.heartbeat_at.is_(None), JobRow.heartbeat_at < renewed_before]
    rows = session.execute(
        select(JobRow.id, JobRow.lease_epoch).where(
            JobRow.status == "running", or_(*late)
        )
    )
    return [(r.id, r.lease_epoch) for r in rows]


def unheeded_cancels(session: Session, *, before: datetime) -> list[tuple[str, int]]:
    """(id, epoch) of running jobs asked to cancel before ``before`` that still run."""
    rows = session.execute(
        select(JobRow.id, JobRow.lease_epoch).where(
            JobRow.status == "running",
            JobRow.control == "cancel",
            JobRow.control_at < before,
        )
    )
    return [(r.id, r.lease_epoch) for r in rows]


def stop_running(
    session: Session,
    job_id: str,
    epoch: int,
    status: str,
    reason: str,
    *,
    now: datetime,
) -> str | None:
    """Move a job running under ``epoch`` to ``status`` and raise its epoch, fencing out its
    driver; with a ``JobEnded`` event. A job stopped as interrupted that was asked to cancel or
    pause ends as asked instead: cancel always wins, and a pause is not lost to a crash. The
    status it moved to, or None when it had moved on already."""
    if status == "interrupted":
        outcome = case(
            *((JobRow.control == control, literal(s)) for control, (s, _) in _ASKED.items()),
            else_=literal(status),
        )
        why = case(
            *((JobRow.control == control, literal(r)) for control, (_, r) in _ASKED.items()),
            else_=literal(reason),
        )
    else:
        outcome, why = literal(status), literal(reason)
    ends = outcome.in_(("cancelled", "failed", "completed"))
    moved = session.execute(
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status == "running", JobRow.lease_epoch == epoch)
        .values(
            status=outcome,
            reason=why,
            ended_at=case((ends, literal(now, JobRow.ended_at.type)), else_=JobRow.ended_at),
            control=None,
            control_at=None,
            lease_holder=None,
            lease_epoch=epoch + 1,
            lease_expires_at=None,
        )
        .returning(JobRow.status, JobRow.reason, JobRow.stats),
        execution_options=_NO_SYNC,
    ).first()
    if moved is None:
        return None
    # The driver's last stored stats, with what was paid from the ledger: its calls paid after
    # its last step count too, so that stats and ledger agree however the job stopped.
    totals = call_totals(session, job_id)
    stats = {**(moved.stats or {}), "calls": totals["calls"], "cached": totals["cached"],
             "tokens": totals["prompt_tokens"] + totals["completion_tokens"],
             "usd": totals["usd"]}
    session.execute(update(JobRow).where(JobRow.id == job_id).values(stats=stats),
                    execution_options=_NO_SYNC)
    payload = {"kind": "JobEnded", "job_id": job_id, "status": moved.status,
               "reason": moved.reason, "best_candidate_id": None, "stats": stats,
               "epoch": epoch, "driver": None}
    session.execute(
        insert(EventRow).values(job_id=job_id, kind="JobEnded", payload=payload, created_at=now)
    )
    return str(moved.status)


def _expired(expires_at: datetime | None, now: datetime) -> bool:
    return expires_at is None or expires_at < now
