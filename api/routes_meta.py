"""What the server offers, who is asking and how it is doing: tasks, algorithms, the caller's
key, health, metrics."""

from __future__ import annotations

from functools import cache
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CONTENT_TYPE_LATEST

from api.auth import CallerDep, StateDep, bearer, current_caller
from api.errors import responses
from api.schemas import AlgorithmOut, CallerOut, HealthOut, TaskOut, plain
from api.state import ApiState, api_state
from storage import StoreUnavailable

router = APIRouter(tags=["server"])


@cache
def _tasks() -> tuple[TaskOut, ...]:
    # built-in tasks do not change while the server runs; loading them reads their data files
    from evo.task import builtin_tasks, load_task

    out = []
    for name, description in builtin_tasks().items():
        task = load_task(name)
        program = getattr(task, "kind", "prompt") == "program"
        metric = getattr(task, "metric", None)
        out.append(TaskOut(
            name=name,
            description=description,
            kind="program" if program else "prompt",
            metric=metric.name if metric is not None else
            f"{getattr(task, 'objective', '')} ({getattr(task, 'direction', '')})",
            splits={s: len(task.split(s)) for s in ("train", "dev", "test")},
            labels=list(task.labels),
            rubric=rubric.model_dump() if (rubric := getattr(metric, "rubric", None)) else None,
            json_schema=getattr(metric, "schema", None),
        ))
    return tuple(out)


@router.get("/tasks", response_model=list[TaskOut], summary="The built-in tasks",
            responses=responses(401))
def tasks(caller: CallerDep) -> list[TaskOut]:
    return list(_tasks())


@router.get("/algorithms", response_model=list[AlgorithmOut],
            summary="The search methods and their parameters", responses=responses(401))
def algorithms(caller: CallerDep) -> list[AlgorithmOut]:
    """Each method's parameters as a JSON schema, with their defaults: what `algorithm:` in a
    spec takes besides `name` and `templates`."""
    from evo.algorithms import REGISTRY

    return [
        AlgorithmOut(
            name=name,
            summary=cls.summary,
            kinds=list(cls.kinds),
            result=cls.result,
            parameters=cls.params_model.model_json_schema(),
            defaults=plain(cls.params_model().model_dump(mode="json")),
            templates=sorted(cls.templates),
        )
        for name, cls in sorted(REGISTRY.items())
    ]


@router.get("/me", response_model=CallerOut, summary="Who the key acts for",
            responses=responses(401))
def me(caller: CallerDep) -> CallerOut:
    """The key's name and whether it is an admin key. A key sees the jobs its name owns: those
    submitted with a key of that name, and those run or submitted from the command line with
    `EVO_OWNER` set to it (by default the login name); an admin key sees every job."""
    return CallerOut(name=caller.name, admin=caller.admin)


@router.get(
    "/health",
    response_model=HealthOut,
    summary="Is the server able to work",
    responses={503: {"model": HealthOut, "description": "the store or Redis is unreachable"}},
)
def health(state: Annotated[ApiState, Depends(api_state)]) -> JSONResponse:
    """No key needed. 200 when the store answers (and Redis, when configured); else 503."""
    try:
        state.store.ping()
        store = "ok"
    except StoreUnavailable:
        store = "error"
    redis_state = "not configured"
    if state.settings.redis_url:
        redis_state = _redis(state.settings.redis_url)
    ok = store == "ok" and redis_state != "error"
    body = HealthOut(status="ok" if ok else "unavailable", store=store,  # type: ignore[arg-type]
                     redis=redis_state)  # type: ignore[arg-type]
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


def _redis(url: str) -> str:
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        client.ping()
        return "ok"
    except (redis.RedisError, OSError):
        return "error"
    finally:
        client.close()


def _metrics_access(
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    if state.settings.metrics_public:
        return
    if not current_caller(state, credentials).admin:
        raise HTTPException(403, "metrics need an admin key (or EVO_METRICS_PUBLIC=true)")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {"description": "Prometheus text format",
              "content": {"text/plain": {"schema": {"type": "string"}}}},
        **responses(401, 403),
    },
)
def metrics(state: StateDep, access: Annotated[None, Depends(_metrics_access)]) -> Response:
    """Jobs by status, HTTP requests by route and status, request latency. Needs an admin key
    unless EVO_METRICS_PUBLIC is set."""
    return Response(state.metrics.render(), media_type=CONTENT_TYPE_LATEST)
