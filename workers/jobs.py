"""Job state changes requested from outside a job (CLI, REST): submit, cancel, pause, resume.

States: queued → running → completed | failed | cancelled | paused | interrupted; paused,
interrupted, failed and cancelled jobs go back to queued when resumed. Every move is one
conditional UPDATE (``Store.transition``), so two processes never make the same move twice. A
running job is not changed here: its driver is asked (``control``) and acts within a second; a
cancel it does not act on is enforced by the job services (``Store.enforce_cancels``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from evo.spec import JobSpec
from storage import JobRecord, Store
from storage.jobs import AmbiguousJobId, missing_job
from workers.capacity import Capacity

# from which states each request may act, and on a job that is not running, what it does
CANCELLABLE = ("queued", "paused", "interrupted")
PAUSABLE = ("queued",)
RESUMABLE = ("paused", "interrupted", "failed", "cancelled")


class JobNotFound(LookupError):
    """No such job (or not one the caller may see)."""


class JobConflict(ValueError):
    """The request does not fit the job's current state (e.g. resuming a completed job)."""


def submit(
    store: Store, spec: JobSpec, *, owner: str | None = None, capacity: Capacity | None = None
) -> JobRecord:
    """Queue a job for a service to run. The spec must already be validated; its task is loaded
    and the job checked here (``TaskError``, ``SpecError``: budget, samples, context, and with
    the ``capacity`` of the cluster that will run it, its model workers), so that a job that
    cannot run is refused now rather than failing later. What is stored is the spec's public
    form (inline keys are never stored)."""
    from evo.task import load_task
    from workers.admission import check_job

    task = load_task(spec.task, base_dir=spec._base_dir)
    check_job(spec, task, capacity=capacity)
    return create(store, spec, task.name, owner=owner)


def create(
    store: Store,
    spec: JobSpec,
    task_name: str,
    *,
    job_id: str | None = None,
    owner: str | None = None,
    lease: tuple[str, float] | None = None,
) -> JobRecord:
    """Store a new job for ``spec``: queued, or, with ``lease`` (holder, seconds), running and
    claimed by that holder under epoch 1."""
    return store.create_job(
        job_id=job_id or uuid.uuid4().hex,
        name=spec.name or f"{spec.algorithm.name} on {task_name}",
        task=task_name,
        algorithm=spec.algorithm.name,
        spec=spec.public_dict(),
        seed=spec.seed,
        status="running" if lease else "queued",
        owner=owner,
        lease=lease,
    )


def get(store: Store, job_ref: str) -> JobRecord:
    """The job with this id or unique prefix of one; ``JobNotFound`` says why there is none (an
    ambiguous prefix lists the ids it matches)."""
    try:
        job = store.get_job(job_ref)
    except AmbiguousJobId as exc:
        raise JobNotFound(str(exc)) from exc
    if job is None:
        raise JobNotFound(missing_job(job_ref))
    return job


def cancel(store: Store, job_ref: str) -> JobRecord:
    """A job not running is cancelled at once; a running one is asked to stop, and its driver
    stops its fan-out within a second, keeping everything it recorded."""
    job = get(store, job_ref)
    if store.transition(job.id, CANCELLABLE, status="cancelled", reason="cancelled by request",
                        ended_at=_now(), control=None):
        return get(store, job.id)
    if store.request_control(job.id, "cancel"):
        return get(store, job.id)
    raise JobConflict(
        f"job {job.id} is {get(store, job.id).status}; only queued, running, paused or "
        "interrupted jobs can be cancelled"
    )


def pause(store: Store, job_ref: str) -> JobRecord:
    """A queued job is held; a running one stops after its next generation's checkpoint."""
    job = get(store, job_ref)
    if store.transition(job.id, PAUSABLE, status="paused", reason="paused by request"):
        return get(store, job.id)
    if store.request_control(job.id, "pause"):
        return get(store, job.id)
    raise JobConflict(
        f"job {job.id} is {get(store, job.id).status}; only queued or running jobs can be paused"
    )


def requeue(store: Store, job_ref: str) -> JobRecord:
    """Queue a stopped job again; the service resumes it from its last checkpoint."""
    job = get(store, job_ref)
    if store.transition(job.id, RESUMABLE, status="queued", reason=None, control=None,
                        ended_at=None):
        return get(store, job.id)
    raise JobConflict(
        f"job {job.id} is {get(store, job.id).status}; only "
        f"{', '.join(RESUMABLE)} jobs can be resumed"
    )


def _now() -> datetime:
    return datetime.now(UTC)
