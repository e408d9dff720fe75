"""The REST API application: ``create_app(store, settings)``.

The app owns a ``JobService`` (started and stopped with the app), so a job submitted here runs
exactly as one submitted with ``evo submit`` would; any other service on the same store may run
it too. Everything is under ``/api/v1``; the schema is at ``/api/v1/openapi.json``. The web
dashboard (``api/dashboard.py``) is served at ``/``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from api import (
    errors,
    routes_candidates,
    routes_dataset,
    routes_events,
    routes_jobs,
    routes_meta,
    routes_predict,
)
from api.dashboard import mount_dashboard
from api.limits import BodySizeLimit
from api.metrics import ApiMetrics, MetricsMiddleware
from api.state import ApiState
from evo import __version__
from evo.app.settings import Settings
from evo.spec import JobSpec
from storage import Store
from workers.service import JobService

PREFIX = "/api/v1"
DESCRIPTION = """Evolutionary prompt optimization as a service: submit a job spec, follow its
generations live, inspect candidates and their lineage, export the best prompt.

Every route but `/health` needs an API key (`Authorization: Bearer <key>`, made with
`evo keys create`). A key sees only its own jobs; anything else is answered 404."""


def create_app(
    store: Store,
    settings: Settings,
    service: JobService | None = None,
    *,
    events_poll_s: float = 0.5,
    dashboard_dir: Path | None = None,
) -> FastAPI:
    service = service or JobService(store, settings)
    state = ApiState(
        store=store,
        settings=settings,
        service=service,
        metrics=ApiMetrics(store, service),
        events_poll_s=events_poll_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(service.start)
        try:
            yield
        finally:
            await asyncio.to_thread(service.stop)

    app = FastAPI(
        title="Evo",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_url=f"{PREFIX}/openapi.json",
        docs_url=f"{PREFIX}/docs",
        redoc_url=None,
        responses=errors.responses(503),
    )
    app.state.evo = state
    errors.install(app)
    for module in (routes_jobs, routes_predict, routes_candidates, routes_events, routes_meta,
                   routes_dataset):
        app.include_router(module.router, prefix=PREFIX)
    mount_dashboard(app, dashboard_dir)  # the web dashboard at /, over the routes above
    # the last added runs first: count every request, 413s included
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=state.metrics, prefix=PREFIX)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The generated schema plus the job spec's, which POST /jobs validates itself (so that a
    spec's errors name its fields the same way whether from a file or over HTTP), with the
    task names this server knows."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            spec = JobSpec.model_json_schema(ref_template="#/components/schemas/{model}")
            shared = schema.setdefault("components", {}).setdefault("schemas", {})
            for name, definition in spec.pop("$defs", {}).items():
                shared.setdefault(name, definition)
            shared["JobSpec"] = spec
            _known_tasks(shared)
            app.openapi_schema = schema
        return app.openapi_schema

    return build


def _known_tasks(schemas: dict[str, Any]) -> None:
    """A task named by a string is one of the built-in tasks (a program problem included), and
    ``task.builtin`` one of the built-in prompt tasks; the spec's own schema says only "a string"
    (a CLI user gets the list in the error), so name them here, as ``GET /tasks`` does."""
    from evo.task import builtin_tasks
    from evo.tasks import BUILTINS

    _only(schemas["JobSpec"]["properties"]["task"], list(builtin_tasks()))
    _only(schemas["TaskSpec"]["properties"]["builtin"], list(BUILTINS))


def _only(prop: dict[str, Any], names: list[str]) -> None:
    for branch in prop.get("anyOf", [prop]):
        if branch.get("type") == "string":
            branch["enum"] = names
