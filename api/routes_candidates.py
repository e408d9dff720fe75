"""Candidates: a job's filtered listing, one candidate in full, its ancestry, the job's lineage."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query

from api.auth import NO_CANDIDATE, CallerDep, StateDep, visible_candidate_job, visible_job
from api.errors import responses
from api.params import NoNul
from api.schemas import (
    PREVIEW_CHARS,
    AncestryOut,
    CandidateBrief,
    CandidateDetail,
    CandidateOut,
    CandidatePageOut,
    LineageEdgeOut,
    LineageNode,
    LineageOut,
    MetaCallOut,
    OutcomeOut,
    OutcomesOut,
    ScoreOut,
    plain,
)
from storage import CandidateSort, ScoredCandidate

router = APIRouter(tags=["candidates"])

MAX_OFFSET = 1_000_000_000
Score = Annotated[float | None, Query(allow_inf_nan=False)]


@router.get(
    "/jobs/{job_id}/candidates",
    response_model=CandidatePageOut,
    summary="List a job's candidates",
    responses=responses(401, 404, 422),
)
def list_candidates(
    job_id: str,
    caller: CallerDep,
    state: StateDep,
    generation: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
    operator: Annotated[NoNul | None, Query(max_length=64)] = None,
    min_score: Annotated[Score, Query(description="latest dev score at least this")] = None,
    max_score: Annotated[Score, Query(description="latest dev score at most this")] = None,
    sort: Annotated[
        CandidateSort,
        Query(description="created (insertion order), score, generation, operator, length "
                          "(of the text); '-' reverses; unscored candidates come last"),
    ] = "created",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> CandidatePageOut:
    """Filtered, ordered and paged by the database, so a job of any size answers fast. Filters
    that nothing can meet (`min_score` above `max_score`) answer an empty page. Each `score` is
    the latest on dev, on the search's sample or (finalists) on the whole split: `score_on`
    says which and on how many examples, `search_score` gives the sample's."""
    job = visible_job(state, caller, job_id)
    filters = {"generation": generation, "operator": operator, "min_score": min_score,
               "max_score": max_score, "sort": sort, "limit": limit, "offset": offset}
    page = state.store.candidate_page(job.id, **filters)
    # one read for the page's dev evaluations, to say which split each score is on
    dev = state.store.evaluations_of([i.candidate.id for i in page.items], split="dev")
    return CandidatePageOut(
        total=page.total,
        limit=limit,
        offset=offset,
        items=[CandidateOut.scored(item, dev[item.candidate.id]) for item in page.items],
    )


@router.get(
    "/candidates/{candidate_id}",
    response_model=CandidateDetail,
    summary="Show a candidate",
    responses=responses(401, 404),
)
def get_candidate(candidate_id: str, caller: CallerDep, state: StateDep) -> CandidateDetail:
    """Its text, every evaluation and the latest per split, parents and children, and the
    meta-LLM call that wrote it (the messages sent and the answer)."""
    job = visible_candidate_job(state, caller, candidate_id)
    cand = state.store.candidate(candidate_id)
    if cand is None:  # deleted between the two reads
        raise HTTPException(404, NO_CANDIDATE)
    records = state.store.candidate_evaluations(candidate_id)
    evaluations = [ScoreOut.of(e) for e in records]
    latest = {e.split: e for e in evaluations}
    dev = next((e.value for e in reversed(evaluations) if e.split == "dev" and e.n > 0), None)
    made_by = None
    key = cand.meta.get("made_by")
    if isinstance(key, str):
        response = state.store.paid_response(job.id, key)
        made_by = None if response is None else MetaCallOut.of(key, response)
    base = CandidateOut.scored(ScoredCandidate(job.id, cand, dev), records)
    return CandidateDetail(
        **base.model_dump(),
        scores=latest,
        evaluations=evaluations,
        children=state.store.children(candidate_id),
        made_by=made_by,
    )


@router.get(
    "/candidates/{candidate_id}/ancestry",
    response_model=AncestryOut,
    summary="A candidate's ancestors",
    responses=responses(401, 404),
)
def ancestry(candidate_id: str, caller: CallerDep, state: StateDep) -> AncestryOut:
    visible_candidate_job(state, caller, candidate_id)
    return AncestryOut(
        candidate_id=candidate_id,
        ancestors=[CandidateBrief.of(c) for c in state.store.ancestry(candidate_id)],
    )


@router.get(
    "/candidates/{candidate_id}/outcomes",
    response_model=OutcomesOut,
    summary="A candidate's per-example results",
    responses=responses(401, 404, 422),
)
def outcomes(
    candidate_id: str,
    caller: CallerDep,
    state: StateDep,
    split: Annotated[Literal["dev", "test", "search"], Query(
        description="which split; search: its last scoring in the search (metric judge)")] = "test",
) -> OutcomesOut:
    """What it scored on each example of the split, for the prompts scored in the final phase:
    two candidates' lists pair up by `example_id` for a paired comparison. Under metric judge,
    every candidate's last scoring in the search too (`search`), with the judge's verdicts."""
    visible_candidate_job(state, caller, candidate_id)
    found = state.store.outcomes(candidate_id, split)
    return OutcomesOut(candidate_id=candidate_id, split=split,
                       items=[OutcomeOut.model_validate(o, from_attributes=True) for o in found])


@router.get(
    "/jobs/{job_id}/lineage",
    response_model=LineageOut,
    summary="A job's lineage graph",
    responses=responses(401, 404),
)
def lineage(job_id: str, caller: CallerDep, state: StateDep) -> LineageOut:
    """Every candidate as a node (with its latest dev score) and every parent → child link as
    an edge, ready for a graph view."""
    job = visible_job(state, caller, job_id)
    page = state.store.candidate_page(job.id, limit=None)
    nodes = [
        LineageNode(
            id=item.candidate.id,
            generation=item.candidate.generation,
            operator=item.candidate.operator,
            kind=item.candidate.kind,
            score=plain(item.score),
            label=item.candidate.text[:PREVIEW_CHARS],
        )
        for item in page.items
    ]
    edges = [LineageEdgeOut.of(e) for e in state.store.lineage(job.id)]
    return LineageOut(job_id=job.id, nodes=nodes, edges=edges)
