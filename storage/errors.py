"""The store's own exceptions, so callers need not import SQLAlchemy to tell them apart."""

from __future__ import annotations


class LeaseLost(RuntimeError):
    """A write under a lease was refused: the job was claimed again, taken over, cancelled or
    ended since the lease was granted. Nothing of the refused write is stored; its writer must
    stop, since another (or none) now runs the job."""

    def __init__(self, job_id: str, epoch: int) -> None:
        super().__init__(f"job {job_id}: the lease of epoch {epoch} is no longer held")
        self.job_id = job_id
        self.epoch = epoch
