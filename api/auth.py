"""Who is calling: the API key in ``Authorization: Bearer <key>``.

A key acts for a tenant, its name: it sees and changes only the jobs it owns (``jobs.owner``), and
everything else answers 404 exactly like a missing id, so ids cannot be probed. An admin key sees
and acts on every job. A 404 says only what kind of thing is missing, never the id asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api import keys
from api.state import ApiState, api_state
from storage import JobRecord

bearer = HTTPBearer(
    auto_error=False, description="an API key made with `evo keys create NAME [--admin]`"
)
# Ids the store hands out are hex (jobs, candidates); anything else cannot name a record, and is
# answered as missing without a query.
_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
NO_JOB = "no such job"
NO_CANDIDATE = "no such candidate"


@dataclass(frozen=True)
class Caller:
    name: str
    admin: bool

    def may_see(self, owner: str | None) -> bool:
        return self.admin or owner == self.name


def unauthorized(detail: str, error: str | None = None) -> HTTPException:
    challenge = "Bearer" if error is None else f'Bearer error="{error}"'
    return HTTPException(401, detail, headers={"WWW-Authenticate": challenge})


def current_caller(
    state: Annotated[ApiState, Depends(api_state)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None or not credentials.credentials:
        raise unauthorized("missing API key: send the header 'Authorization: Bearer <key>'")
    record = keys.lookup(state.store, credentials.credentials)
    if record is None:
        raise unauthorized("invalid or revoked API key", "invalid_token")
    return Caller(record.name, record.admin)


CallerDep = Annotated[Caller, Depends(current_caller)]
StateDep = Annotated[ApiState, Depends(api_state)]


def visible_job(state: ApiState, caller: Caller, job_id: str) -> JobRecord:
    """The job with exactly this id if the caller may see it; else 404 (never 403)."""
    job = None
    well_formed = _ID.fullmatch(job_id) is not None
    if well_formed:
        try:
            job = state.store.get_job(job_id)
        except ValueError:  # an ambiguous prefix: ids must be given whole here
            job = None
    if job is None or job.id != job_id or not caller.may_see(job.owner):
        raise HTTPException(404, NO_JOB)
    return job


def visible_candidate_job(state: ApiState, caller: Caller, candidate_id: str) -> JobRecord:
    """The job of a candidate the caller may see; else 404."""
    well_formed = _ID.fullmatch(candidate_id) is not None
    job_id = state.store.candidate_job_id(candidate_id) if well_formed else None
    job = state.store.get_job(job_id) if job_id is not None else None
    if job is None or not caller.may_see(job.owner):
        raise HTTPException(404, NO_CANDIDATE)
    return job
