"""Read queries behind ``Store``. Every function takes an open session and returns plain records
or candidates."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Integer, Select, bindparam, case, func, literal, select
from sqlalchemy.orm import Session, aliased

from evo.candidate import Candidate
from storage import bulk
from storage.convert import ancestor, evaluation_record, lineage_edge, to_candidate
from storage.models import CandidateRow, EvaluationRow, JobRow, LineageRow, LLMCallRow
from storage.records import (
    CANDIDATE_SORTS,
    CandidatePage,
    EvaluationRecord,
    GenerationSummary,
    LineageEdge,
    ScoredCandidate,
)

# Guards the ancestry walk against a cycle in the lineage (which only a corrupted batch could
# create); far deeper than any real run.
MAX_ANCESTRY_DEPTH = 100_000

# --- candidates --------------------------------------------------------------------------------


def parents_by_child(session: Session, child_ids: Select[Any] | Sequence[str]) -> dict[str, list]:
    """Parent ids per child, in operator order. ``child_ids`` may be a subquery, which keeps
    large reads to two statements instead of a parameter per candidate."""
    stmt = (
        select(LineageRow.child_id, LineageRow.parent_id)
        .where(LineageRow.child_id.in_(child_ids))
        .order_by(LineageRow.child_id, LineageRow.position)
    )
    parents: dict[str, list] = defaultdict(list)
    for child, parent in session.execute(stmt):
        parents[child].append(parent)
    return parents


def load_candidates(session: Session, *criteria: Any) -> list[Candidate]:
    """Candidates matching ``criteria``, in insertion order."""
    rows = session.scalars(
        select(CandidateRow).where(*criteria).order_by(CandidateRow.seq, CandidateRow.id)
    ).all()
    parents = parents_by_child(session, select(CandidateRow.id).where(*criteria))
    return [to_candidate(r, parents.get(r.id, ())) for r in rows]


def lock_job(session: Session, job_id: str) -> None:
    """Serialize a job's writers on Postgres, so that sequence numbers and generation summaries
    are handed out and computed once. (SQLite has one writer at a time anyway, from BEGIN
    IMMEDIATE on, and would ignore FOR UPDATE: no statement is sent.)"""
    if session.get_bind().dialect.name == "sqlite":
        return
    session.execute(select(JobRow.id).where(JobRow.id == job_id).with_for_update())


def next_seq(session: Session, job_id: str) -> int:
    current = session.scalar(
        select(func.max(CandidateRow.seq)).where(CandidateRow.job_id == job_id)
    )
    return 0 if current is None else current + 1


def ancestry(session: Session, candidate_id: str) -> list[Candidate]:
    """Every ancestor once, nearest first (then in insertion order): one statement (see
    ``_ancestry_statement``), its rows straight from the driver."""
    rows = bulk.driver_rows(session.connection(), _ANCESTRY, candidate_id=candidate_id)
    return _candidates_with_parents(rows)


# What ancestry's callers show of a candidate (besides its parents). ``meta`` is left out:
# decoding one JSON document per ancestor cost as much as the rest of the query.
_CANDIDATE_FIELDS = (
    CandidateRow.id,
    CandidateRow.text,
    CandidateRow.generation,
    CandidateRow.operator,
    CandidateRow.kind,
    CandidateRow.island,
)


def _ancestry_statement() -> Select[Any]:
    """One walk: it keeps (ancestor, depth) pairs distinct, so a family with many shared
    ancestors costs ancestors x depths rows, not one row per path; each ancestor then comes with
    its parents, one row per parent in operator order (one row with a NULL parent for a seed)."""
    walk = (
        select(LineageRow.parent_id.label("id"), literal(1, Integer).label("depth"))
        .where(LineageRow.child_id == bindparam("candidate_id"))
        .cte("walk", recursive=True)
    )
    step = (
        select(LineageRow.parent_id, walk.c.depth + 1)
        .join(walk, LineageRow.child_id == walk.c.id)
        .where(walk.c.depth < MAX_ANCESTRY_DEPTH)
    )
    walk = walk.union(step)
    nearest = (
        select(walk.c.id, func.min(walk.c.depth).label("depth")).group_by(walk.c.id).subquery()
    )
    return (
        select(*_CANDIDATE_FIELDS, LineageRow.parent_id)
        .join(nearest, nearest.c.id == CandidateRow.id)
        .outerjoin(LineageRow, LineageRow.child_id == CandidateRow.id)
        .order_by(nearest.c.depth, CandidateRow.seq, CandidateRow.id, LineageRow.position)
    )


_ANCESTRY = _ancestry_statement()


def _candidates_with_parents(rows: Iterable[tuple[Any, ...]]) -> list[Candidate]:
    """Candidates from rows of ``_CANDIDATE_FIELDS`` + parent_id, one row per parent (one with a
    NULL parent for a seed), a candidate's rows adjacent and in parent order."""
    out: list[Candidate] = []
    first: tuple[Any, ...] = ()  # the current candidate's first row
    parents: list[str] = []
    for row in rows:
        if not first or row[0] != first[0]:
            if first:
                out.append(ancestor(first, parents))
            first, parents = row, []
        if row[6] is not None:
            parents.append(row[6])
    if first:
        out.append(ancestor(first, parents))
    return out


# --- scores ------------------------------------------------------------------------------------


def leaderboard(
    session: Session, job_id: str, split: str, k: int, full_only: bool
) -> list[tuple[Candidate, EvaluationRecord]]:
    # n = 0: nothing could be scored (a program that failed to run), so no fitness to rank
    scope = [EvaluationRow.job_id == job_id, EvaluationRow.split == split, EvaluationRow.n > 0]
    if full_only:
        scope.append(EvaluationRow.subset.is_(None))
    # Ids grow with time, so an evaluation is a candidate's latest when no later one of the same
    # scope exists. Said as NOT EXISTS, the database walks the (job, split, value) index from
    # the top and stops after k rows, instead of grouping every evaluation of the job first.
    later = aliased(EvaluationRow)
    newer = (
        select(later.id)
        .where(
            later.candidate_id == EvaluationRow.candidate_id,
            later.split == EvaluationRow.split,
            later.n > 0,
            later.id > EvaluationRow.id,
            *([later.subset.is_(None)] if full_only else []),
        )
        .exists()
    )
    rows = session.execute(
        select(CandidateRow, EvaluationRow)
        .join(EvaluationRow, EvaluationRow.candidate_id == CandidateRow.id)
        .where(*scope, ~newer)
        .order_by(EvaluationRow.value.desc(), CandidateRow.seq, CandidateRow.id)
        .limit(k)
    ).all()
    parents = parents_by_child(session, [c.id for c, _ in rows])
    return [(to_candidate(c, parents.get(c.id, ())), evaluation_record(e)) for c, e in rows]


def generations(
    session: Session,
    job_id: str,
    split: str = "dev",
    only: Select[Any] | Sequence[int] | None = None,
) -> list[GenerationSummary]:
    """Per generation, from each candidate's best ``split`` evaluation (any subset), aggregated
    over the job's evaluations, and the number of distinct texts; ``only``: the generations to
    summarize (a list or a query; all when None). Call totals are not aggregates: they are what
    a generation's end recorded (``storage.summaries``)."""
    # what a generation made to be scored: not the mutation-prompts that wrote it (Promptbreeder)
    in_scope = [CandidateRow.job_id == job_id, CandidateRow.kind != "mutation_prompt"]
    if only is not None:
        in_scope.append(CandidateRow.generation.in_(only))
    scored = [EvaluationRow.job_id == job_id, EvaluationRow.split == split]
    if only is not None:  # only those generations' scores: probes of the candidate_id index
        scored.append(EvaluationRow.candidate_id.in_(select(CandidateRow.id).where(*in_scope)))
    best_score = (
        select(EvaluationRow.candidate_id, func.max(EvaluationRow.value).label("value"))
        .where(*scored)
        .group_by(EvaluationRow.candidate_id)
        .subquery()
    )
    # Rank candidates within their generation; rank 1 is the best scored one (earliest on ties).
    rank = func.row_number().over(
        partition_by=CandidateRow.generation,
        order_by=(best_score.c.value.is_(None), best_score.c.value.desc(), CandidateRow.seq),
    )
    ranked = (
        select(
            CandidateRow.generation,
            CandidateRow.id,
            CandidateRow.text,
            best_score.c.value,
            rank.label("rank"),
        )
        .outerjoin(best_score, best_score.c.candidate_id == CandidateRow.id)
        .where(*in_scope)
        .subquery()
    )
    top_id = case((ranked.c.rank == 1, ranked.c.id))
    stmt = (
        select(
            ranked.c.generation,
            func.count(),
            func.max(ranked.c.value),
            func.avg(ranked.c.value),
            func.max(top_id).filter(ranked.c.value.is_not(None)),
            func.count(func.distinct(ranked.c.text)),
        )
        .group_by(ranked.c.generation)
        .order_by(ranked.c.generation)
    )
    return [
        GenerationSummary(
            generation=gen,
            size=size,
            best=best,
            mean=None if mean is None else float(mean),
            best_candidate_id=best_id,
            distinct=distinct,
        )
        for gen, size, best, mean, best_id, distinct in session.execute(stmt)
    ]


# --- accounting --------------------------------------------------------------------------------


def call_totals(session: Session, job_id: str) -> dict[str, Any]:
    paid = LLMCallRow.cached.is_(False)

    def paid_sum(column: Any) -> Any:
        return func.coalesce(func.sum(case((paid, column), else_=0)), 0)

    stmt = select(
        func.count().filter(paid),
        func.count().filter(LLMCallRow.cached.is_(True)),
        paid_sum(LLMCallRow.prompt_tokens),
        paid_sum(LLMCallRow.completion_tokens),
        func.count().filter(LLMCallRow.error.is_not(None)),
        paid_sum(LLMCallRow.latency_s),
        paid_sum(LLMCallRow.usd),
    ).where(LLMCallRow.job_id == job_id)
    calls, cached, prompt, completion, errors, latency, usd = session.execute(stmt).one()
    return {
        "calls": calls,
        "cached": cached,
        "prompt_tokens": int(prompt),
        "completion_tokens": int(completion),
        "errors": errors,
        "latency_s": float(latency),
        "usd": float(usd),
    }


def lineage_edges(session: Session, job_id: str) -> list[LineageEdge]:
    stmt = (
        select(LineageRow)
        .join(CandidateRow, CandidateRow.id == LineageRow.child_id)
        .where(LineageRow.job_id == job_id)
        .order_by(CandidateRow.seq, LineageRow.position)
    )
    return [lineage_edge(r) for r in session.scalars(stmt)]


# --- listings for the REST API -----------------------------------------------------------------


def job_filters(
    *,
    status: str | None = None,
    owner: str | None = None,
    algorithm: str | None = None,
    task: str | None = None,
) -> list[Any]:
    """WHERE criteria of a job listing (each filter only when given)."""
    pairs = (
        (JobRow.status, status),
        (JobRow.owner, owner),
        (JobRow.algorithm, algorithm),
        (JobRow.task, task),
    )
    return [column == value for column, value in pairs if value is not None]


def count_jobs(session: Session, criteria: Sequence[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(JobRow).where(*criteria)) or 0)


def jobs_by_status(session: Session) -> dict[str, int]:
    stmt = select(JobRow.status, func.count()).group_by(JobRow.status)
    return {status: int(n) for status, n in session.execute(stmt)}


def candidate_page(
    session: Session,
    job_id: str,
    *,
    generation: int | None = None,
    operator: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    sort: str = "created",
    limit: int | None = 50,
    offset: int = 0,
) -> CandidatePage:
    """Filter, count, order and page a job's candidates in the database (a job may have tens of
    thousands); only the page's rows and their parents are loaded."""
    # Each candidate's latest dev score as a correlated lookup (one index probe per candidate
    # that is filtered or shown) rather than an aggregate over every evaluation of the job.
    value = (
        select(EvaluationRow.value)
        .where(
            EvaluationRow.candidate_id == CandidateRow.id,
            EvaluationRow.split == "dev",
            EvaluationRow.n > 0,
        )
        .order_by(EvaluationRow.id.desc())
        .limit(1)
        .correlate(CandidateRow)
        .scalar_subquery()
    )
    criteria: list[Any] = [CandidateRow.job_id == job_id]
    if generation is not None:
        criteria.append(CandidateRow.generation == generation)
    if operator is not None:
        criteria.append(CandidateRow.operator == operator)
    if min_score is not None:
        criteria.append(value >= min_score)
    if max_score is not None:
        criteria.append(value <= max_score)
    total = session.scalar(select(func.count()).select_from(CandidateRow).where(*criteria))
    stmt = (
        select(CandidateRow, value.label("value"))
        .where(*criteria)
        .order_by(*_candidate_order(sort, value))
        .offset(offset)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    rows = session.execute(stmt).all()
    parents = parents_by_child(session, [row.id for row, _ in rows])
    items = tuple(
        ScoredCandidate(job_id, to_candidate(row, parents.get(row.id, ())), value)
        for row, value in rows
    )
    return CandidatePage(int(total or 0), items)


def _candidate_order(sort: str, value: Any) -> list[Any]:
    if sort not in CANDIDATE_SORTS:
        raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(CANDIDATE_SORTS)}")
    seq, cid, gen = CandidateRow.seq, CandidateRow.id, CandidateRow.generation
    op, length = CandidateRow.operator, func.length(CandidateRow.text)
    # unscored candidates go last whichever way scores are ordered; ties in insertion order
    return {
        "created": [seq, cid],
        "-created": [seq.desc(), cid.desc()],
        "score": [value.is_(None), value, seq, cid],
        "-score": [value.is_(None), value.desc(), seq, cid],
        "generation": [gen, seq, cid],
        "-generation": [gen.desc(), seq, cid],
        "operator": [op, seq, cid],
        "-operator": [op.desc(), seq, cid],
        "length": [length, seq, cid],
        "-length": [length.desc(), seq, cid],
    }[sort]


def candidate_job_id(session: Session, candidate_id: str) -> str | None:
    return session.scalar(select(CandidateRow.job_id).where(CandidateRow.id == candidate_id))


def children(session: Session, candidate_id: str) -> list[str]:
    """Ids of the candidates made from this one, each once, in insertion order."""
    made_from = select(LineageRow.child_id).where(LineageRow.parent_id == candidate_id)
    stmt = (
        select(CandidateRow.id)
        .where(CandidateRow.id.in_(made_from))
        .order_by(CandidateRow.seq, CandidateRow.id)
    )
    return list(session.scalars(stmt))


def candidate_evaluations(session: Session, candidate_id: str) -> list[EvaluationRecord]:
    stmt = (
        select(EvaluationRow)
        .where(EvaluationRow.candidate_id == candidate_id)
        .order_by(EvaluationRow.id)
    )
    return [evaluation_record(r) for r in session.scalars(stmt)]


def evaluations_of(
    session: Session, candidate_ids: Sequence[str], split: str | None
) -> dict[str, list[EvaluationRecord]]:
    """Every evaluation of each candidate (on ``split`` only, if given), oldest first."""
    found: dict[str, list[EvaluationRecord]] = {cid: [] for cid in candidate_ids}
    if not found:
        return found
    stmt = select(EvaluationRow).where(EvaluationRow.candidate_id.in_(list(found)))
    if split is not None:
        stmt = stmt.where(EvaluationRow.split == split)
    for row in session.scalars(stmt.order_by(EvaluationRow.id)):
        found[row.candidate_id].append(evaluation_record(row))
    return found
