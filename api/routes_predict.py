"""A job's prompt applied to new inputs (``evo predict`` over HTTP)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.auth import NO_CANDIDATE, CallerDep, StateDep, visible_job
from api.errors import InvalidInput, responses
from api.limits import parse_json
from api.schemas import PredictIn, PredictionOut, PredictOut
from evo.llm import LLMUnavailable
from workers.predict import (
    AmbiguousCandidate,
    CandidateNotFound,
    CannotPredict,
    NoBestPrompt,
    Predictor,
    pick_candidate,
)

router = APIRouter(tags=["jobs"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": PredictIn.model_json_schema()}},
    }
}


async def predict_body(request: Request) -> PredictIn:
    """The body read as the other routes read theirs: anything that is not the right JSON (bad
    syntax, bad UTF-8, wrong fields) is a 422 naming where."""
    raw = await request.body()
    if not raw.strip():
        raise InvalidInput([(("body",), 'the body is empty; send {"inputs": ["..."]}')])
    try:
        return PredictIn.model_validate(parse_json(raw))
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


@router.post(
    "/jobs/{job_id}/predict",
    response_model=PredictOut,
    summary="Apply the best prompt to new inputs",
    responses=responses(401, 404, 409, 413, 422, 503),
    openapi_extra=_BODY,
)
def predict(job_id: str, body: Annotated[PredictIn, Depends(predict_body)], caller: CallerDep,
            state: StateDep) -> PredictOut:
    """The job's best prompt on the full dev split (or `candidate_id`) applied to each input with
    the job's model and template, read as the job read its examples: a label task answers the
    label, a generative task the model's text. 409 for a job with no best prompt yet, or a
    candidate that is not a prompt (a program); 503 when the job's model cannot be reached (an
    endpoint's key is read from the server's environment). These calls are not added to the job
    or its budget."""
    job = visible_job(state, caller, job_id)
    try:
        candidate = pick_candidate(state.store, job, body.candidate_id)
        with Predictor.of_job(job, state.settings) as predictor:
            found = predictor.predict(candidate, body.inputs)
    except NoBestPrompt as exc:
        raise HTTPException(409, str(exc)) from None
    except CandidateNotFound:
        raise HTTPException(404, NO_CANDIDATE) from None
    except AmbiguousCandidate as exc:
        raise InvalidInput([(("body", "candidate_id"), str(exc))]) from None
    except CannotPredict as exc:
        raise HTTPException(409, str(exc)) from None
    except LLMUnavailable as exc:
        raise HTTPException(503, f"the job's model is unavailable: {exc}") from None
    return PredictOut(
        job_id=job.id,
        candidate_id=candidate.id,
        kind=candidate.kind,
        prompt=candidate.text,
        items=[PredictionOut(input=p.input, output=p.output, error=p.error) for p in found],
    )
