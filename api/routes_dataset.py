"""A data-set job's result (Evol-Instruct): its items, failed evolutions and per-round counts."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query

from api.auth import CallerDep, StateDep, visible_job
from api.errors import responses
from api.schemas import DataSetItemOut, DataSetOut, EliminatedOut, RoundOut
from evo.app.dataset import NotADataSet, job_dataset

router = APIRouter(tags=["candidates"])


@router.get(
    "/jobs/{job_id}/dataset",
    response_model=DataSetOut,
    summary="A data-set job's items",
    responses=responses(401, 404, 409, 422),
)
def dataset(
    job_id: str,
    caller: CallerDep,
    state: StateDep,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0, le=1_000_000_000)] = 0,
) -> DataSetOut:
    """Each item (instruction, response, the round and evolution that made it, its parent and
    seed), a page at a time, with every failed evolution and its reason and, per round, how
    many items were kept and eliminated. 409 for a job whose result is a best prompt."""
    job = visible_job(state, caller, job_id)
    try:
        data = job_dataset(state.store, job)
    except NotADataSet as exc:
        raise HTTPException(409, str(exc)) from None
    return DataSetOut(
        job_id=job.id,
        total=len(data.items),
        limit=limit,
        offset=offset,
        items=[DataSetItemOut.model_validate(i, from_attributes=True)
               for i in data.items[offset : offset + limit]],
        eliminated=[EliminatedOut.model_validate(e, from_attributes=True)
                    for e in data.eliminated],
        rounds=[RoundOut.model_validate(r, from_attributes=True) for r in data.rounds],
    )
