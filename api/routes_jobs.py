"""Jobs: submit, list, show, cancel, pause, resume, per-generation summary, export."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.auth import CallerDep, StateDep, visible_job
from api.errors import InvalidInput, responses, spec_problems
from api.limits import enforce, parse_json
from api.params import NoNul
from api.schemas import GenerationOut, JobOut, JobPage, fields_of
from evo.app.export import NoBestPrompt, render_export
from evo.app.settings import Settings
from evo.spec import JobSpec
from evo.spec_io import SpecError, parse_spec
from evo.task import TaskError
from storage import JobStatus
from workers import jobs

router = APIRouter(tags=["jobs"])

MAX_OFFSET = 1_000_000_000
MAX_GENERATION = 1_000_000_000
MAX_GENERATIONS_PAGE = 10_000
EXPORT_TYPES = {
    "json": "application/json",
    "yaml": "application/yaml",
    "md": "text/markdown; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}
ExportFormat = Literal["json", "yaml", "md", "txt"]

_SPEC_BODY = {
    "requestBody": {
        "required": True,
        "description": "a job spec: the same fields as a YAML spec file, as JSON",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/JobSpec"}}},
    }
}


def _prepare(data: Any, settings: Settings) -> JobSpec:
    try:
        spec = parse_spec(data)
    except SpecError as exc:
        raise spec_problems(exc) from None
    return enforce(spec, settings)


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobOut,
    summary="Submit a job",
    responses=responses(401, 413, 422),
    openapi_extra=_SPEC_BODY,
)
async def submit_job(request: Request, response: Response, caller: CallerDep,
                     state: StateDep) -> JobOut:
    """Queue a job owned by the caller's key; the server's job service runs it. Inline model
    keys (`models.task.api_key`) are held in memory for the run, never stored or shown."""
    data = parse_json(await request.body())
    spec = await run_in_threadpool(_prepare, data, state.settings)
    try:
        job = await run_in_threadpool(state.service.submit, spec, owner=caller.name)
    except TaskError as exc:
        raise InvalidInput([(("body", "task"), str(exc))]) from None
    response.headers["Location"] = f"{request.url.path}/{job.id}"
    return JobOut.of(job)


@router.get("/jobs", response_model=JobPage, summary="List jobs", responses=responses(401, 422))
def list_jobs(
    caller: CallerDep,
    state: StateDep,
    status: JobStatus | None = None,
    algorithm: Annotated[NoNul | None, Query(max_length=64)] = None,
    task: Annotated[NoNul | None, Query(max_length=255)] = None,
    owner: Annotated[
        NoNul | None, Query(max_length=64, description="admin keys: only this owner's jobs")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobPage:
    """Newest first. A key sees its own jobs; an admin key sees all (or one owner's)."""
    if not caller.admin:
        if owner is not None and owner != caller.name:
            return JobPage(total=0, limit=limit, offset=offset, items=[])
        owner = caller.name
    filters = {"status": status, "owner": owner, "algorithm": algorithm, "task": task}
    found = state.store.list_jobs(**filters, limit=limit, offset=offset)
    total = state.store.count_jobs(**filters)
    return JobPage(total=total, limit=limit, offset=offset, items=[JobOut.of(j) for j in found])


@router.get("/jobs/{job_id}", response_model=JobOut, summary="Show a job",
            responses=responses(401, 404))
def get_job(job_id: str, caller: CallerDep, state: StateDep) -> JobOut:
    return JobOut.of(visible_job(state, caller, job_id))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, summary="Cancel a job",
             responses=responses(401, 404, 409))
def cancel_job(job_id: str, caller: CallerDep, state: StateDep) -> JobOut:
    """A job not running is cancelled at once; a running one is asked to stop (see
    `pending_control`) and stops within a second, keeping what it recorded. 409 when the job
    has already ended."""
    job = visible_job(state, caller, job_id)
    return JobOut.of(jobs.cancel(state.store, job.id))


@router.post("/jobs/{job_id}/pause", response_model=JobOut, summary="Pause a job",
             responses=responses(401, 404, 409))
def pause_job(job_id: str, caller: CallerDep, state: StateDep) -> JobOut:
    """A queued job is held; a running one stops after its next generation's checkpoint."""
    job = visible_job(state, caller, job_id)
    return JobOut.of(jobs.pause(state.store, job.id))


@router.post("/jobs/{job_id}/resume", response_model=JobOut, summary="Resume a job",
             responses=responses(401, 404, 409))
def resume_job(job_id: str, caller: CallerDep, state: StateDep) -> JobOut:
    """Queue a paused, interrupted, failed or cancelled job again; it continues from its last
    checkpoint. 409 for a job that is queued, running or completed."""
    job = visible_job(state, caller, job_id)
    return JobOut.of(state.service.resume(job.id))


@router.get("/jobs/{job_id}/generations", response_model=list[GenerationOut],
            summary="Per-generation fitness, diversity and cost", responses=responses(401, 404))
def generations(
    job_id: str,
    caller: CallerDep,
    state: StateDep,
    after: Annotated[int | None, Query(
        ge=-1, le=MAX_GENERATION, description="only the generations after this one"
    )] = None,
    limit: Annotated[int | None, Query(
        ge=1, le=MAX_GENERATIONS_PAGE, description="at most this many generations (default: all)"
    )] = None,
) -> list[GenerationOut]:
    """Best and mean dev score, distinct texts, and the calls and tokens paid for during each
    generation, in generation order. Page through a long job with ``after`` (the last
    generation already read) and ``limit``; a generation still in progress has no calls yet."""
    job = visible_job(state, caller, job_id)
    summaries = state.store.generations(job.id, after=after, limit=limit)
    previous: tuple[int, int] = (0, 0)
    if after is not None and after >= 0 and summaries:
        previous = state.store.totals_upto(job.id, after) or previous
    out = []
    for g in summaries:
        total = None if g.calls_total is None else (g.calls_total, g.tokens_total or 0)
        spent = None if total is None else (total[0] - previous[0], total[1] - previous[1])
        previous = total or previous
        out.append(GenerationOut.model_validate({
            **fields_of(g),
            "diversity": g.distinct / g.size if g.size else 0.0,
            "calls": None if spent is None else spent[0],
            "tokens": None if spent is None else spent[1],
            "calls_total": None if total is None else total[0],
            "tokens_total": None if total is None else total[1],
        }))
    return out


@router.get(
    "/jobs/{job_id}/export",
    summary="Export the best prompt(s)",
    response_class=Response,
    responses={
        200: {
            "description": "the export, in the asked format",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/yaml": {"schema": {"type": "object"}},
                "text/markdown": {"schema": {"type": "string"}},
                "text/plain": {"schema": {"type": "string"}},
            },
        },
        **responses(401, 404, 409, 422),
    },
)
def export(
    job_id: str,
    caller: CallerDep,
    state: StateDep,
    format: ExportFormat = "json",
    top: Annotated[int, Query(ge=1, le=100, description="how many of the best prompts")] = 1,
) -> Response:
    """The best `top` prompts on the full dev split with their scores, task, model, algorithm
    and a lineage summary, as `evo export` writes them. 409, in every format, for a job with no
    best prompt (yet): one not scored on the whole dev split, e.g. queued, failed, or cancelled
    before its final scoring."""
    job = visible_job(state, caller, job_id)
    try:
        text = render_export(state.store, job, format, top)
    except NoBestPrompt as exc:
        raise HTTPException(409, str(exc)) from None
    filename = f"evo-{job.id[:8]}.{format}"
    return Response(
        text,
        media_type=EXPORT_TYPES[format],
        headers={"Content-Disposition": f'inline; filename="{filename}"'},
    )
