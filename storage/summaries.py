"""Per-generation dev summaries kept as rows (``generation_summaries``), so that the job page
reads one row per generation instead of aggregating every evaluation of the job.

Invariant: every generation that has candidates has a row. A row is ``stale`` when its figures
may differ from the aggregate: a batch added candidates to the generation or dev scores to its
candidates after it was computed. Rows are computed when a generation ends (a batch with a
checkpoint); readers aggregate the stale ones themselves, so what they get is always what the
full aggregate (``queries.generations``) gives.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Select, Table, bindparam, select, update
from sqlalchemy.orm import Session

from evo.candidate import Candidate
from storage import bulk
from storage import queries as q
from storage.models import CandidateRow, GenerationSummaryRow
from storage.records import GenerationSummary

SPLIT = "dev"  # the split the rows summarize (the one the job page shows)
_CHUNK = 500  # ids per statement, well under every backend's parameter limit
_ROW = GenerationSummaryRow
_new = object.__new__
_COLUMNS = ("job_id", "generation", "stale", "size", "best", "mean", "best_candidate_id")
_STALE_COLUMNS = _COLUMNS[:3]  # a placeholder, or marking a computed row stale
_READ = (
    select(_ROW.generation, _ROW.stale, _ROW.size, _ROW.best, _ROW.mean, _ROW.best_candidate_id)
    .where(_ROW.job_id == bindparam("job_id"))
    .order_by(_ROW.generation)
)


def note_writes(
    session: Session, job_id: str, candidates: Sequence[Candidate], scored: Iterable[str]
) -> None:
    """Mark stale the generations a batch changes: those of its new ``candidates`` (a row is
    made for a new generation) and those of the candidates with new dev scores (``scored``)."""
    new = {c.id for c in candidates}
    if gens := sorted({c.generation for c in candidates}):
        _upsert(session, _STALE_COLUMNS, [(job_id, g, True) for g in gens])
    # candidates of this batch are covered above; others need their generation looked up
    earlier = sorted(set(scored) - new)
    for start in range(0, len(earlier), _CHUNK):
        generations = select(CandidateRow.generation).where(
            CandidateRow.id.in_(earlier[start : start + _CHUNK])
        )
        session.execute(
            update(_ROW)
            .where(_ROW.job_id == job_id, _ROW.generation.in_(generations), ~_ROW.stale)
            .values(stale=True),
            execution_options={"synchronize_session": False},
        )


def refresh(session: Session, job_id: str, *, everything: bool = False) -> int:
    """Compute the stale rows of a job (every generation when ``everything``) from its scores;
    returns how many rows were written."""
    only = None if everything else _stale_generations(job_id)
    rows = [
        (job_id, s.generation, False, s.size, s.best, s.mean, s.best_candidate_id)
        for s in q.generations(session, job_id, SPLIT, only)
    ]
    _upsert(session, _COLUMNS, rows)
    return len(rows)


def read(session: Session, job_id: str) -> list[GenerationSummary]:
    """The job's summaries, in generation order: stored rows, the aggregate for stale ones."""
    rows = _stored(session.connection(), job_id)
    if not rows:  # candidates written outside the store (a bulk load), or none at all
        return q.generations(session, job_id, SPLIT)
    kept = [
        _summary(gen, size, best, mean, best_id)
        for gen, is_stale, size, best, mean, best_id in rows
        if not is_stale
    ]
    stale = [gen for gen, is_stale, *_ in rows if is_stale]
    if not stale:
        return kept
    if len(stale) > _CHUNK:  # mostly stale (an old job): the whole aggregate costs no more
        return q.generations(session, job_id, SPLIT)
    # the stale generations as read above, not re-read: a row computed in between must not
    # drop out of both halves
    fresh = q.generations(session, job_id, SPLIT, stale)
    return sorted(kept + fresh, key=lambda s: s.generation)


def _stored(conn: Connection, job_id: str) -> list[tuple[Any, ...]]:
    """(generation, stale, size, best, mean, best_candidate_id) of a job's rows, in generation
    order, as plain tuples: a long job has tens of thousands of generations, and SQLAlchemy's
    per-row result handling cost more than the query itself."""
    return bulk.driver_rows(conn, _READ, job_id=job_id)


def _summary(
    generation: int, size: int, best: float | None, mean: float | None, best_id: str | None
) -> GenerationSummary:
    """``GenerationSummary(...)`` at 60% of the cost: a frozen dataclass's ``__init__`` sets
    each field through ``object.__setattr__``, which dominates reading a long job's rows (tens
    of thousands). The instance is the same: its fields live in its ``__dict__``, which is what
    equality, hashing and repr read."""
    summary = _new(GenerationSummary)
    summary.__dict__.update(
        generation=generation, size=size, best=best, mean=mean, best_candidate_id=best_id
    )
    return summary


def _stale_generations(job_id: str) -> Select[Any]:
    return select(_ROW.generation).where(_ROW.job_id == job_id, _ROW.stale)


def _upsert(session: Session, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    """Insert rows (tuples in ``columns`` order), or on an existing (job, generation) set the
    other columns."""
    update = columns[2:]
    table: Table = _ROW.__table__  # type: ignore[assignment]
    conn = session.connection()
    if bulk.upsert_rows(conn, table, columns, rows, keys=columns[:2], update=update):
        return
    for values in rows:  # any other backend: emulate with the ORM
        session.merge(_ROW(**dict(zip(columns, values, strict=True))))
