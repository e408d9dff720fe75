"""Job life and control: ``JobStore`` creates jobs, moves their status and fields, passes control
requests to their drivers, and finds them (one by id or prefix, or a filtered listing).

A job's fields change only through typed methods (``set_status``, ``set_control``,
``transition``, ``request_control``) or a ``JobUpdate`` written with a run's batch
(``RecorderStore.write_batch``); a lease's fields only by claims and takeovers
(``storage.job_leases``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from storage import convert, leases
from storage.base import StoreBase
from storage.job_leases import LeaseStore, check_status
from storage.models import ID_LEN, JobRow, utcnow
from storage.records import (
    CONTROL_REQUESTS,
    KEEP,
    ControlRequest,
    JobRecord,
    JobState,
    JobStatus,
    JobUpdate,
    Keep,
    Lease,
)

MIN_PREFIX = 4  # shorter prefixes match too many jobs to be worth typing
SHOWN_MATCHES = 5  # ids an ambiguous prefix lists


class AmbiguousJobId(ValueError):
    """A prefix that more than one job id starts with; ``matches``: some of those ids."""

    def __init__(self, prefix: str, matches: list[str], total: int) -> None:
        self.prefix, self.matches, self.total = prefix, matches, total
        more = f", and {total - len(matches)} more" if total > len(matches) else ""
        super().__init__(f"job id prefix {prefix!r} is ambiguous: it matches {total} jobs "
                         f"({', '.join(matches)}{more}); give more of the id")


def missing_job(ref: str) -> str:
    """Why no job was found for ``ref``: a short one is taken as a whole id only."""
    if len(ref) < MIN_PREFIX:
        return (f"no job {ref!r} (a job id may be shortened to a prefix of at least "
                f"{MIN_PREFIX} characters)")
    return f"no job {ref!r}"


class JobStore(LeaseStore, StoreBase):
    """Jobs: created, moved, asked to stop, found. Leases: see ``LeaseStore``."""

    def create_job(
        self,
        *,
        job_id: str,
        name: str,
        task: str,
        algorithm: str,
        spec: dict[str, Any],
        seed: int,
        status: JobStatus = "queued",
        owner: str | None = None,
        lease: tuple[str, float] | None = None,
    ) -> JobRecord:
        """A new job. With ``lease`` (holder, seconds) it is created running, claimed by that
        holder under epoch 1."""
        if not job_id or len(job_id) > ID_LEN:
            raise ValueError(f"job id must be 1..{ID_LEN} characters, got {job_id!r}")
        check_status(status)
        if lease is not None and status != "running":
            raise ValueError("only a job created running is created with a lease")
        now = utcnow()
        row = JobRow(
            id=job_id, name=name, task=task, algorithm=algorithm, spec=dict(spec), seed=seed,
            status=status, stats={}, owner=owner, created_at=now, lease_epoch=0,
        )
        if lease is not None:
            holder, ttl_s = lease
            row.lease_holder, row.lease_epoch = holder, 1
            row.lease_expires_at = now + timedelta(seconds=ttl_s)
            row.started_at = row.heartbeat_at = now
        with self._write() as session:
            session.add(row)
            if lease is not None:
                session.flush()
                leases.record(session, Lease(job_id, 1, lease[0]), now)
        return convert.job_record(row)

    # --- typed updates (each raises ``LookupError`` when there is no such job) -----------------

    def set_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        reason: str | Keep | None = KEEP,
        started_at: datetime | Keep | None = KEEP,
        ended_at: datetime | Keep | None = KEEP,
    ) -> None:
        """Move the job to ``status`` whatever its status is (``transition`` moves it only from
        given ones)."""
        self._update(job_id, JobUpdate(status=status, reason=reason, started_at=started_at,
                                       ended_at=ended_at))

    def set_control(
        self, job_id: str, control: ControlRequest | None, *, at: datetime | None
    ) -> None:
        """Set (or clear) the pending control request as it is, whatever the job's status:
        ``request_control`` is how a request is made."""
        self._update(job_id, JobUpdate(control=control, control_at=at))

    def transition(
        self,
        job_id: str,
        from_status: Iterable[str],
        *,
        status: JobStatus,
        reason: str | Keep | None = KEEP,
        started_at: datetime | Keep | None = KEEP,
        ended_at: datetime | Keep | None = KEEP,
        control: ControlRequest | Keep | None = KEEP,
    ) -> bool:
        """Move the job to ``status`` only if its status is one of ``from_status``, atomically
        (one conditional UPDATE), so that two processes cannot both make the same move. True when
        it moved; False when the job is in another state or does not exist."""
        allowed = list(from_status)
        for old in allowed:
            check_status(old)
        changes = JobUpdate(status=status, reason=reason, started_at=started_at,
                            ended_at=ended_at, control=control)
        with self._write() as session:
            return apply_update(session, job_id, changes, only_from=allowed) > 0

    def _update(self, job_id: str, changes: JobUpdate) -> None:
        with self._write() as session:
            apply_update(session, job_id, changes)

    # --- control -------------------------------------------------------------------------------

    def job_control(self, job_id: str) -> JobState | None:
        """(status, pending control request, epoch) of a job: what a running driver polls."""
        with self._read() as session:
            row = session.execute(
                select(JobRow.status, JobRow.control, JobRow.lease_epoch).where(
                    JobRow.id == job_id
                )
            ).first()
        return None if row is None else JobState(row.status, row.control, row.lease_epoch)

    def request_control(self, job_id: str, control: ControlRequest) -> bool:
        """Ask a running job's driver to ``cancel``, ``pause`` or ``interrupt``. A cancel replaces
        any other request (and keeps the time of an earlier cancel, from which an unheeded one
        is enforced); the others wait behind one already pending. False when the job is not
        running."""
        if control not in CONTROL_REQUESTS:
            raise ValueError(f"unknown control request {control!r}")
        stmt = update(JobRow).where(JobRow.id == job_id, JobRow.status == "running")
        if control == "cancel":
            stmt = stmt.where(or_(JobRow.control.is_(None), JobRow.control != "cancel"))
        else:
            stmt = stmt.where(JobRow.control.is_(None))
        with self._write() as session:
            moved = session.execute(
                stmt.values(control=control, control_at=utcnow()),
                execution_options={"synchronize_session": False},
            ).rowcount  # type: ignore[attr-defined]
            if moved:
                return True
            status = session.scalar(select(JobRow.status).where(JobRow.id == job_id))
        return status == "running"

    # --- finding jobs --------------------------------------------------------------------------

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job with this id, or with this unique prefix of an id (at least ``MIN_PREFIX``
        characters); ``AmbiguousJobId`` (a ``ValueError``) when several ids start so."""
        with self._read() as session:
            row = session.get(JobRow, job_id)
            if row is None and len(job_id) >= MIN_PREFIX:
                row = _by_prefix(session, job_id)
            return None if row is None else convert.job_record(row)

    def list_jobs(
        self,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        owner: str | None = None,
        algorithm: str | None = None,
        task: str | None = None,
        oldest_first: bool = False,
    ) -> list[JobRecord]:
        """Newest first (or oldest first), optionally filtered by status, owner, algorithm,
        task."""
        if oldest_first:
            stmt = select(JobRow).order_by(JobRow.created_at, JobRow.id)
        else:
            stmt = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc())
        for column, value in (
            (JobRow.status, status),
            (JobRow.owner, owner),
            (JobRow.algorithm, algorithm),
            (JobRow.task, task),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        with self._read() as session:
            rows = session.scalars(stmt.limit(limit).offset(offset)).all()
            return [convert.job_record(r) for r in rows]


def job_update(changes: JobUpdate | Mapping[str, Any]) -> JobUpdate:
    """``changes`` as a ``JobUpdate``; a mapping (the older way to say it) names its fields."""
    if isinstance(changes, JobUpdate):
        return changes
    try:
        return JobUpdate(**changes)
    except TypeError:
        unknown = sorted(set(changes) - set(JobUpdate.__dataclass_fields__))
        raise ValueError(f"cannot update job field(s) {unknown}") from None


def apply_update(
    session: Session, job_id: str, changes: JobUpdate, *, only_from: list[str] | None = None
) -> int:
    """Write ``changes`` to the job (only while its status is one of ``only_from``, when
    given); how many rows moved. Without ``only_from``, a missing job raises ``LookupError``."""
    values = changes.values()
    if "status" in values:
        check_status(values["status"])
    if not values:
        return 0
    stmt = update(JobRow).where(JobRow.id == job_id)
    if only_from is not None:
        stmt = stmt.where(JobRow.status.in_(only_from))
    result = session.execute(
        stmt.values(**values), execution_options={"synchronize_session": False}
    )
    moved: int = result.rowcount  # type: ignore[attr-defined]
    if moved == 0 and only_from is None:
        raise LookupError(f"no job {job_id!r}")
    return moved


def _by_prefix(session: Session, prefix: str) -> JobRow | None:
    # a few ids at most: one is an answer, more are listed as the ambiguity
    matching = JobRow.id.startswith(prefix, autoescape=True)
    ids = session.scalars(
        select(JobRow.id).where(matching).order_by(JobRow.id).limit(SHOWN_MATCHES + 1)
    ).all()
    if len(ids) > 1:
        total = len(ids) if len(ids) <= SHOWN_MATCHES else session.scalar(
            select(func.count()).select_from(JobRow).where(matching))
        raise AmbiguousJobId(prefix, list(ids[:SHOWN_MATCHES]), int(total or 0))
    return session.get(JobRow, ids[0]) if ids else None
