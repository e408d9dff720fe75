"""The store's own exceptions, so callers need not import SQLAlchemy to tell them apart.

``StoreUnavailable``: the database could not be reached or used for now (refused, dropped,
gone, locked past the busy timeout). Every ``Store`` method raises it in place of SQLAlchemy's
``OperationalError``, ``InterfaceError`` or an error that invalidated its connection
(``translated`` does so at the store's boundary); other database errors (a duplicate id, an
unknown parent) propagate as they are.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError, SQLAlchemyError


class LeaseLost(RuntimeError):
    """A write under a lease was refused: the job was claimed again, taken over, cancelled or
    ended since the lease was granted. Nothing of the refused write is stored; its writer must
    stop, since another (or none) now runs the job."""

    def __init__(self, job_id: str, epoch: int) -> None:
        super().__init__(f"job {job_id}: the lease of epoch {epoch} is no longer held")
        self.job_id = job_id
        self.epoch = epoch


class StoreUnavailable(OperationalError):
    """The database cannot be reached (or used) now; the operation wrote nothing and may be
    tried again later. The driver's error is ``orig`` (and ``__cause__``).

    It is an ``OperationalError`` as well, so that code written against SQLAlchemy's error
    (a retry on a locked or restarting database) keeps working."""

    @classmethod
    def of(cls, exc: BaseException) -> StoreUnavailable:
        if isinstance(exc, DBAPIError):
            return cls(exc.statement, exc.params, exc.orig, hide_parameters=exc.hide_parameters,
                       connection_invalidated=exc.connection_invalidated)
        return cls(None, None, exc)  # type: ignore[arg-type]


def unreachable(exc: BaseException) -> bool:
    """Whether a database error means the database cannot be reached or used for now."""
    return isinstance(exc, OperationalError | InterfaceError) or (
        isinstance(exc, DBAPIError) and exc.connection_invalidated
    )


@contextmanager
def translated(*, everything: bool = False) -> Iterator[None]:
    """Raise ``StoreUnavailable`` for the errors of an unreachable database raised within
    (with ``everything``, for any SQLAlchemy error: what a health check wants)."""
    try:
        yield
    except StoreUnavailable:
        raise
    except SQLAlchemyError as exc:
        if everything or unreachable(exc):
            raise StoreUnavailable.of(exc) from exc
        raise
