"""``LeaseStore``: the lease methods of the job part of ``Store`` (claims, renewals, takeovers,
cancels enforced, the lease history). The statements themselves, and why they are safe, are in
``storage.leases``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import select

from storage import leases
from storage.base import StoreBase
from storage.models import JobLeaseRow, utcnow
from storage.records import JOB_STATUSES, HeldJob, Lease


def check_status(status: str) -> None:
    if status not in JOB_STATUSES:
        raise ValueError(f"unknown job status {status!r}; expected one of {sorted(JOB_STATUSES)}")


class LeaseStore(StoreBase):
    """Who runs which job, under which epoch; see ``storage.leases``."""

    def claim_job(
        self,
        job_id: str,
        holder: str,
        ttl_s: float,
        *,
        from_status: Iterable[str] = ("queued",),
        take_over: bool = False,
    ) -> Lease | None:
        """Run the job under a new epoch held by ``holder`` if its status is one of
        ``from_status`` (a running one only once its lease has expired, or with ``take_over``);
        None when it is not to be had."""
        allowed = list(from_status)
        for status in allowed:
            check_status(status)
        with self._write() as session:
            return leases.claim(session, job_id, holder, ttl_s, allowed, now=utcnow(),
                                take_over=take_over)

    def renew_leases(self, holder: str, ttl_s: float) -> list[HeldJob]:
        """Extend every lease ``holder`` has; the running jobs it still holds."""
        with self._write() as session:
            return leases.renew(session, holder, ttl_s, now=utcnow())

    def stop_running(self, job_id: str, epoch: int, status: str, reason: str) -> str | None:
        """End the epoch of a job running under ``epoch`` from outside its driver (which is
        fenced out from then on): the job moves to ``status`` with ``reason`` and a JobEnded
        event; one stopped as interrupted ends as a pending cancel or pause asked. The status
        it moved to; None when it had moved on already."""
        check_status(status)
        with self._write() as session:
            return leases.stop_running(session, job_id, epoch, status, reason, now=utcnow())

    def take_over_expired(
        self, reason: str, *, silent_for_s: float | None = None
    ) -> list[tuple[str, str]]:
        """Running jobs whose lease ran out (or, with ``silent_for_s``, was last renewed that
        long ago) leave ``running``: as interrupted (with ``reason``), or as a pending request
        asked (cancelled, paused). (id, new status) of each."""
        now = utcnow()
        silent = None if silent_for_s is None else now - timedelta(seconds=silent_for_s)
        with self._read() as session:
            found = leases.expired(session, now=now, renewed_before=silent)
        out = []
        for job_id, epoch in found:
            if status := self.stop_running(job_id, epoch, "interrupted", reason):
                out.append((job_id, status))
        return out

    def enforce_cancels(self, grace_s: float) -> list[str]:
        """Cancel running jobs whose cancel has waited over ``grace_s`` for their driver."""
        before = utcnow() - timedelta(seconds=grace_s)
        with self._read() as session:
            found = leases.unheeded_cancels(session, before=before)
        return [job_id for job_id, epoch in found
                if self.stop_running(job_id, epoch, "cancelled", "cancelled by request")]

    def lease_history(self, job_id: str) -> list[tuple[int, str]]:
        """(epoch, holder) of every claim of the job, oldest first."""
        with self._read() as session:
            rows = session.execute(
                select(JobLeaseRow.epoch, JobLeaseRow.holder)
                .where(JobLeaseRow.job_id == job_id)
                .order_by(JobLeaseRow.epoch)
            )
            return [(r.epoch, r.holder) for r in rows]
