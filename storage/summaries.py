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
from dataclasses import replace
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
# the aggregate's columns; a generation's call totals are written apart (``note_totals``)
_COLUMNS = ("job_id", "generation", "stale", "size", "best", "mean", "best_candidate_id",
            "distinct_texts")
_STALE_COLUMNS = _COLUMNS[:3]  # a placeholder, or marking a computed row stale
_FIELDS = (_ROW.generation, _ROW.stale, _ROW.size, _ROW.best, _ROW.mean, _ROW.best_candidate_id,
           _ROW.distinct_texts, _ROW.calls_total, _ROW.tokens_total)
_READ = select(*_FIELDS).where(_ROW.job_id == bindparam("job_id")).order_by(_ROW.generation)
_READ_AFTER = (
    select(*_FIELDS)
    .where(_ROW.job_id == bindparam("job_id"), _ROW.generation > bindparam("after"))
    .order_by(_ROW.generation)
    .limit(bindparam("limit"))
)
_TOTALS_UPTO = (
    select(_ROW.calls_total, _ROW.tokens_total)
    .where(
        _ROW.job_id == bindparam("job_id"),
        _ROW.generation <= bindparam("upto"),
        _ROW.calls_total.is_not(None),
    )
    .order_by(_ROW.generation.desc())
    .limit(1)
)
_TABLE: Table = _ROW.__table__  # type: ignore[assignment]
_SET_TOTALS = (  # Core, not ORM: an executemany of UPDATEs by key
    _TABLE.update()
    .where(_TABLE.c.job_id == bindparam("j"), _TABLE.c.generation == bindparam("g"))
    .values(calls_total=bindparam("c"), tokens_total=bindparam("t"))
)
_ALL = 1 << 62  # "no limit" as a LIMIT every backend takes
GENERATION_DONE = "GenerationDone"  # the event whose totals a row keeps


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


def note_totals(session: Session, job_id: str, events: Iterable[dict[str, Any]]) -> None:
    """Keep on each generation's row what the job had paid for when it ended, from the batch's
    GenerationDone events (a generation without candidates has no row, and nothing to keep)."""
    if done := [
        {"j": job_id, "g": int(e["generation"]), "c": int(e["calls"]), "t": int(e["tokens"])}
        for e in events
        if e.get("kind") == GENERATION_DONE
    ]:
        session.connection().execute(_SET_TOTALS, done)


def refresh(session: Session, job_id: str, *, everything: bool = False) -> int:
    """Compute the stale rows of a job (every generation when ``everything``) from its scores;
    returns how many rows were written."""
    only = None if everything else _stale_generations(job_id)
    rows = [
        (job_id, s.generation, False, s.size, s.best, s.mean, s.best_candidate_id, s.distinct)
        for s in q.generations(session, job_id, SPLIT, only)
    ]
    _upsert(session, _COLUMNS, rows)
    return len(rows)


def read(
    session: Session, job_id: str, *, after: int | None = None, limit: int | None = None
) -> list[GenerationSummary]:
    """The job's summaries in generation order (those after generation ``after``, at most
    ``limit`` of them): stored rows, the aggregate for stale ones."""
    paged = after is not None or limit is not None
    conn = session.connection()
    if paged:
        rows = bulk.driver_rows(conn, _READ_AFTER, job_id=job_id,
                                after=-1 if after is None else after, limit=limit or _ALL)
    else:
        rows = bulk.driver_rows(conn, _READ, job_id=job_id)
    if not rows:
        if paged and _has_rows(conn, job_id):  # past the last generation
            return []
        # candidates written outside the store (a bulk load), or none at all
        found = q.generations(session, job_id, SPLIT)
        if paged:
            found = [s for s in found if after is None or s.generation > after]
            return found[:limit] if limit else found
        return found
    kept = [_summary(*row[:1], *row[2:]) for row in rows if not row[1]]
    stale = [row for row in rows if row[1]]
    if not stale:
        return kept
    if not paged and len(stale) > _CHUNK:  # mostly stale (an old job): one aggregate is cheaper
        fresh = q.generations(session, job_id, SPLIT)
    else:
        # the stale generations as read above, not re-read: a row computed in between must
        # not drop out of both halves
        gens = [row[0] for row in stale]
        fresh = [
            s
            for start in range(0, len(gens), _CHUNK)
            for s in q.generations(session, job_id, SPLIT, gens[start : start + _CHUNK])
        ]
    totals = {row[0]: row[-2:] for row in rows}
    fresh = [
        replace(s, calls_total=totals[s.generation][0], tokens_total=totals[s.generation][1])
        for s in fresh
        if s.generation in totals
    ]
    if len(fresh) == len(rows):
        return fresh
    return sorted(kept + fresh, key=lambda s: s.generation)


def totals_upto(session: Session, job_id: str, generation: int) -> tuple[int, int] | None:
    """(calls, tokens) paid for by the end of the last generation up to ``generation`` that
    ended: where the spend of a page of later generations counts from."""
    rows = bulk.driver_rows(session.connection(), _TOTALS_UPTO, job_id=job_id, upto=generation)
    return (rows[0][0], rows[0][1]) if rows else None


def _has_rows(conn: Connection, job_id: str) -> bool:
    return bool(conn.execute(select(_ROW.generation).where(_ROW.job_id == job_id).limit(1)).all())


def _summary(
    generation: int,
    size: int,
    best: float | None,
    mean: float | None,
    best_id: str | None,
    distinct: int | None,
    calls_total: int | None,
    tokens_total: int | None,
) -> GenerationSummary:
    """``GenerationSummary(...)`` at 60% of the cost: a frozen dataclass's ``__init__`` sets
    each field through ``object.__setattr__``, which dominates reading a long job's rows (tens
    of thousands). The instance is the same: its fields live in its ``__dict__``, which is what
    equality, hashing and repr read."""
    summary = _new(GenerationSummary)
    summary.__dict__.update(
        generation=generation, size=size, best=best, mean=mean, best_candidate_id=best_id,
        distinct=distinct or 0, calls_total=calls_total, tokens_total=tokens_total,
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
