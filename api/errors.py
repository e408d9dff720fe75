"""Error responses: one shape per kind, documented in the OpenAPI schema.

- 422: ``{"detail": [{"loc": ["body", "budget", "calls"], "msg": ..., "type": ...,
  "field": "budget.calls"}]}``, the shape FastAPI uses for its own validation errors (with the
  field's dotted path added), also for a job spec's problems, every one of them at once;
- 401, 404, 405, 409, 413, 503: ``{"detail": "what went wrong"}``; a 405 (OPTIONS included)
  lists in ``Allow`` every method the path takes, from all of its routes.

Input is never echoed back (a spec may carry an API key), and an unexpected failure is logged and
answered with a bare 500.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.routing import Match

from evo.spec_io import SpecError
from evo.spec_messages import user_message
from storage import StoreUnavailable
from workers.jobs import JobConflict, JobNotFound

log = logging.getLogger(__name__)

Loc = Sequence[str | int]
METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


class ErrorOut(BaseModel):
    detail: str


class FieldProblem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str
    field: str = Field(description="the dotted path of the field within the body or query "
                                   "(budget.calls), or where the input is at fault (body)")

    @classmethod
    def at(cls, loc: Loc, msg: str, kind: str) -> FieldProblem:
        parts = [p if isinstance(p, int) else str(p) for p in loc]
        return cls(loc=parts, msg=msg, type=kind,
                   field=".".join(map(str, parts[1:] or parts)))


class ValidationErrorOut(BaseModel):
    detail: list[FieldProblem]


class InvalidInput(Exception):
    """Input that fails a check: one (location, message) per problem, answered with 422."""

    def __init__(self, problems: Iterable[tuple[Loc, str]], kind: str = "value_error") -> None:
        self.problems = [FieldProblem.at(loc, msg, kind) for loc, msg in problems]
        super().__init__("; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in self.problems))


def spec_problems(exc: SpecError) -> InvalidInput:
    """A spec's field errors (``evo.spec_io`` gives every one, its path already cleaned of
    pydantic's own steps), located in the request body."""
    return InvalidInput((("body", *e.loc), e.message) for e in exc.errors)


_DESCRIPTIONS = {
    401: "no API key, or an invalid or revoked one",
    403: "the key is valid but this needs an admin key",
    404: "no such resource (or not one this key may see)",
    409: "the request does not fit the job's current state",
    413: "the request body is larger than the server accepts",
    422: "invalid input: the location and a message for each bad field",
    503: "the store (or Redis) is unreachable; for a prediction, the job's model",
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses."""
    return {
        code: {
            "model": ValidationErrorOut if code == 422 else ErrorOut,
            "description": _DESCRIPTIONS[code],
        }
        for code in codes
    }


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(InvalidInput, _invalid)
    app.add_exception_handler(SpecError, _spec_error)
    app.add_exception_handler(JobNotFound, _not_found)
    app.add_exception_handler(JobConflict, _conflict)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(StoreUnavailable, _store_down)
    app.add_exception_handler(Exception, _unexpected)


def _problems(items: list[FieldProblem]) -> JSONResponse:
    body = ValidationErrorOut(detail=items).model_dump()
    return JSONResponse(body, status_code=422)


async def _request_invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    items = [
        FieldProblem.at(tuple(e.get("loc", ())), user_message(e), str(e.get("type", "value_error")))
        for e in exc.errors()
    ]
    return _problems(items)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidInput)
    return _problems(exc.problems)


async def _spec_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SpecError)
    return _problems(spec_problems(exc).problems)


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    # the job service's message names the id it was given: say only what is missing
    return JSONResponse({"detail": "no such job"}, status_code=404)


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=409)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names the methods of the first route that matched the path only (POST
        # /jobs, not GET /jobs too): list those of every route of the path
        headers["Allow"] = _allowed_methods(request)
    return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code,
                        headers=headers or None)


def _allowed_methods(request: Request) -> str:
    """The methods some route takes at this path: each asked of the app's routes as if the
    request had used it (an included router answers for all of its routes)."""
    allowed = [
        method for method in METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
               for route in request.app.router.routes)
    ]
    return ", ".join(allowed)


async def _store_down(request: Request, exc: Exception) -> JSONResponse:
    # the log says why (refused, gone, locked); the caller learns only that the store is out
    why = getattr(exc, "orig", None) or exc
    log.warning("store unreachable on %s %s: %s: %s", request.method, request.url.path,
                type(why).__name__, str(why).splitlines()[0] if str(why) else "")
    return JSONResponse({"detail": "the store is unreachable; try again later"},
                        status_code=503)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal server error"}, status_code=500)
