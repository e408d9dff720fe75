"""A job's events as server-sent events, read from the store's events table.

Reading the table (rather than an in-process bus) means the stream works whichever process runs
the job. Each message carries the row id as its ``id``, so a client that reconnects with
``Last-Event-ID`` gets only what it missed. The stream ends once the job has stopped (its
JobEnded event sent), or right after the replay when it had already stopped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from api.auth import CallerDep, StateDep, visible_job
from api.errors import responses
from api.schemas import plain
from api.state import ApiState

router = APIRouter(tags=["jobs"])

LIVE = frozenset({"queued", "running"})  # a job in these states may still write events
MAX_EVENT_ID = (1 << 63) - 1
# Last-Event-ID as it is sent: the decimal digits of an event id, nothing else (an id past the
# last possible one resumes after everything)
EVENT_ID = r"^[0-9]{1,19}$"


def sse(event_id: int, kind: str, payload: dict[str, Any]) -> str:
    data = json.dumps(plain(payload), ensure_ascii=False, separators=(",", ":"))
    return f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"


@router.get(
    "/jobs/{job_id}/events",
    summary="Follow a job's events (server-sent events)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "an event stream: `id` = event id, `event` = kind (JobStarted, "
            "GenerationDone, SearchWarning, JobEnded), `data` = the event as JSON",
            "content": {"text/event-stream": {"schema": {
                # one event of the stream
                "type": "object",
                "required": ["id", "event", "data"],
                "properties": {
                    "id": {"type": "string", "description": "the event's id"},
                    "event": {"type": "string", "description": "its kind"},
                    "data": {"type": "string", "contentMediaType": "application/json"},
                },
            }}},
        },
        **responses(401, 404, 422),
    },
)
def events(
    job_id: str,
    request: Request,
    caller: CallerDep,
    state: StateDep,
    last_event_id: Annotated[
        str,
        Header(pattern=EVENT_ID, description="resume after this event id (the `id` of the last "
               "event read); 0, or no header, for the whole history"),
    ] = "0",
) -> StreamingResponse:
    job = visible_job(state, caller, job_id)
    return StreamingResponse(
        _follow(state, request, job.id, min(int(last_event_id), MAX_EVENT_ID)),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def _follow(state: ApiState, request: Request, job_id: str, after: int) -> AsyncIterator[str]:
    last = after
    quiet = 0.0
    while True:
        rows = await run_in_threadpool(state.store.events, job_id, after=last)
        for event_id, payload in rows:
            last = event_id
            yield sse(event_id, str(payload.get("kind", "event")), payload)
        if not rows or rows[-1][1].get("kind") == "JobEnded":
            control = await run_in_threadpool(state.store.job_control, job_id)
            if control is None or control[0] not in LIVE:
                # its last events are written with its final status: read once more
                for event_id, payload in await run_in_threadpool(
                    state.store.events, job_id, after=last
                ):
                    yield sse(event_id, str(payload.get("kind", "event")), payload)
                return
        quiet = 0.0 if rows else quiet + state.events_poll_s
        if quiet >= state.events_keepalive_s:
            quiet = 0.0
            yield ": keep-alive\n\n"  # a comment: keeps proxies from closing a quiet stream
        if await request.is_disconnected():
            return
        await asyncio.sleep(state.events_poll_s)
