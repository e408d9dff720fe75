"""Orders of a job's candidates beyond the store's own: by operator and by text length, which the
dashboard's table sorts on. Filtered, counted, ordered and paged in the database, like the
store's listing, so a job of any size answers fast."""

from __future__ import annotations

from typing import Any, Literal, get_args

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage import CANDIDATE_SORTS, CandidatePage, ScoredCandidate, Store
from storage.convert import to_candidate
from storage.models import CandidateRow
from storage.queries import latest_dev_scores, parents_by_child

ExtraSort = Literal["operator", "-operator", "length", "-length"]
EXTRA_SORTS: tuple[str, ...] = get_args(ExtraSort)
# the store's orders, then these
ListSort = Literal[
    "created", "-created", "score", "-score", "generation", "-generation",
    "operator", "-operator", "length", "-length",
]
assert get_args(ListSort) == (*CANDIDATE_SORTS, *EXTRA_SORTS), "keep ListSort in step"


def candidate_page(
    store: Store,
    job_id: str,
    *,
    sort: str,
    generation: int | None = None,
    operator: str | None = None,
    min_score: float | None = None,
    max_score: float | None = None,
    limit: int = 50,
    offset: int = 0,
) -> CandidatePage:
    """Like ``Store.candidate_page`` for one of ``EXTRA_SORTS``; ties go in insertion order."""
    if sort not in EXTRA_SORTS:
        raise ValueError(f"unknown sort {sort!r}; expected one of {', '.join(EXTRA_SORTS)}")
    score = latest_dev_scores(job_id)
    criteria: list[Any] = [CandidateRow.job_id == job_id]
    if generation is not None:
        criteria.append(CandidateRow.generation == generation)
    if operator is not None:
        criteria.append(CandidateRow.operator == operator)
    if min_score is not None:
        criteria.append(score.c.value >= min_score)
    if max_score is not None:
        criteria.append(score.c.value <= max_score)
    key = CandidateRow.operator if sort.endswith("operator") else func.length(CandidateRow.text)
    order = [key.desc() if sort.startswith("-") else key, CandidateRow.seq, CandidateRow.id]
    with Session(store.engine) as session:
        total = session.scalar(
            select(func.count())
            .select_from(CandidateRow)
            .outerjoin(score, score.c.candidate_id == CandidateRow.id)
            .where(*criteria)
        )
        rows = session.execute(
            select(CandidateRow, score.c.value)
            .outerjoin(score, score.c.candidate_id == CandidateRow.id)
            .where(*criteria)
            .order_by(*order)
            .offset(offset)
            .limit(limit)
        ).all()
        parents = parents_by_child(session, [row.id for row, _ in rows])
        items = tuple(
            ScoredCandidate(job_id, to_candidate(row, parents.get(row.id, ())), value)
            for row, value in rows
        )
    return CandidatePage(int(total or 0), items)
