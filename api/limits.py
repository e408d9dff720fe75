"""What the API accepts: a bounded body of plain JSON, and job specs within the server's limits.

A spec from the API is held to more than one from the command line, because the server, not the
person submitting it, pays for it and runs it:

- its budget must fit the server's maxima (``EVO_MAX_BUDGET_*``); a limit the spec leaves open
  (``budget.calls: null``) is set to the server's maximum, so no API job runs unbounded;
- it may read task data and local model files only inside ``EVO_API_DATA_DIR`` (and none when
  that is unset), and name a ``module:function`` metric only with ``EVO_API_CUSTOM_METRICS``;
- a key held by the server (``api_key_env``) must be one of ``EVO_API_KEY_ENVS`` and is only sent
  to the server's own endpoint: a spec that picks its ``base_url`` brings its own ``api_key``.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import InvalidInput, Loc
from evo.app.settings import Settings
from evo.spec import JobSpec, ModelSpec
from evo.task import TaskSpec

MAX_DEPTH = 32
INT64 = 1 << 63
NAME_LEN = 255  # the store's column for job and task names
# a job's default name is "<algorithm> on <task>": leave room for the algorithm
TASK_NAME_LEN = 180
# Given to a model whose key came inline: no environment has it, so a job resumed after a
# restart (inline keys are kept in memory only) never falls back to a key the server holds.
NO_SERVER_KEY = "EVO_INLINE_KEY_NOT_KEPT"


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """Refuse bodies over ``max_bytes`` with 413: by Content-Length before any of the body is
    read, else as soon as the chunks read so far pass the limit (chunked uploads declare no
    length). The body is never held beyond the limit: the rest is read and dropped, up to
    ``DRAIN_BYTES``, because closing a socket with unread data resets it and the client would
    never see the 413."""

    DRAIN_BYTES = 8 << 20

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or ())
        # a client that waits for "100 Continue" has sent nothing yet: nothing to drop
        waiting = headers.get(b"expect", b"").lower() == b"100-continue"
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_bytes:
            if not waiting:
                await self._drain(receive, 0)
            await self._refuse(send)
            return
        seen = 0
        ended = False
        started = False

        async def counted() -> Message:
            nonlocal seen, ended
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                ended = not message.get("more_body", False)
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if started:
                raise
            if not ended:
                await self._drain(receive, seen)
            await self._refuse(send)

    async def _drain(self, receive: Receive, seen: int) -> None:
        while seen <= self.DRAIN_BYTES:
            message = await receive()
            if message["type"] != "http.request":
                return
            seen += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {"detail": f"request body is larger than {self.max_bytes} bytes"}
        ).encode()
        await send({
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        })
        await send({"type": "http.response.body", "body": body})


# --- plain JSON ----------------------------------------------------------------------------------


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes) -> Any:
    """JSON that the store can keep as it is: finite numbers, 64-bit integers, text without NUL
    or unpaired surrogates, nesting at most ``MAX_DEPTH`` deep. Raises ``InvalidInput``."""
    if not body.strip():
        raise InvalidInput([(("body",), "the body is empty; send a job spec as a JSON object")])
    try:
        data = json.loads(body, parse_float=_finite, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise InvalidInput([(("body",), f"not valid JSON: {exc.msg} ({where})")],
                           "json_invalid") from None
    except (ValueError, RecursionError) as exc:  # bad UTF-8, a huge number, deep nesting
        msg = str(exc) if not isinstance(exc, RecursionError) else "nested too deeply"
        raise InvalidInput([(("body",), f"not valid JSON: {msg}")], "json_invalid") from None
    _check_plain(data)
    return data


def _check_plain(data: Any) -> None:
    problems: list[tuple[Loc, str]] = []
    stack: list[tuple[tuple[str | int, ...], Any]] = [(("body",), data)]
    while stack and len(problems) < 20:
        loc, value = stack.pop()
        if len(loc) > MAX_DEPTH + 1:
            problems.append((loc, f"nested more than {MAX_DEPTH} levels deep"))
        elif isinstance(value, dict):
            for key, item in value.items():
                if (why := _text_problem(key)) is not None:
                    problems.append((loc, f"a key {why}"))
                else:
                    stack.append(((*loc, key), item))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item) for i, item in enumerate(value))
        elif isinstance(value, str):
            if (why := _text_problem(value)) is not None:
                problems.append((loc, f"text {why}"))
        elif isinstance(value, int) and not isinstance(value, bool) and not (
            -INT64 <= value < INT64
        ):
            problems.append((loc, "integer out of range (64-bit signed)"))
    if problems:
        raise InvalidInput(problems)


def _text_problem(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains an unpaired surrogate (not valid Unicode)"
    return None


# --- the server's rules for specs ----------------------------------------------------------------


def enforce(spec: JobSpec, settings: Settings) -> JobSpec:
    """Check an API spec against the server's limits and rules (module docstring) and fill open
    budget limits with the server's maxima. Raises ``InvalidInput`` naming each field."""
    problems: list[tuple[Loc, str]] = []
    problems += _budget(spec, settings)
    if not -INT64 <= spec.seed < INT64:
        problems.append((("seed",), "must be a 64-bit signed integer"))
    if spec.name is not None and len(spec.name) > NAME_LEN:
        problems.append((("name",), f"at most {NAME_LEN} characters"))
    if isinstance(spec.task, TaskSpec):
        problems += _task(spec, spec.task, settings)
    for role, model in (("task", spec.models.task), ("meta", spec.models.meta)):
        if model is not None:
            problems += _model(("models", role), model, settings)
    if problems:
        raise InvalidInput((("body", *loc), msg) for loc, msg in problems)
    return spec


def _budget(spec: JobSpec, settings: Settings) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    caps = (
        ("calls", settings.max_budget_calls),
        ("tokens", settings.max_budget_tokens),
        ("seconds", settings.max_budget_seconds),
    )
    for field, cap in caps:
        if cap is None:
            continue
        value = getattr(spec.budget, field)
        if value is None:
            setattr(spec.budget, field, cap)
        elif value > cap:
            problems.append((
                ("budget", field),
                f"{value} is over this server's maximum of {cap} "
                f"(EVO_MAX_BUDGET_{field.upper()}); ask for at most {cap}",
            ))
    return problems


def _task(spec: JobSpec, task: TaskSpec, settings: Settings) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    if task.name is not None and len(task.name) > TASK_NAME_LEN:
        problems.append((("task", "name"), f"at most {TASK_NAME_LEN} characters"))
    elif task.name is None and task.data is not None:
        first = task.data if isinstance(task.data, str) else task.data.get("train", "")
        if len(Path(first).stem) > TASK_NAME_LEN:  # the task is named after its data file
            problems.append((("task", "name"), "give the task a name of at most "
                             f"{TASK_NAME_LEN} characters (its file name is longer)"))
    if task.metric is not None and ":" in task.metric and not settings.api_custom_metrics:
        problems.append((
            ("task", "metric"),
            "this server does not import metric functions from API specs "
            "(EVO_API_CUSTOM_METRICS); use a built-in metric",
        ))
    if task.data is not None:
        paths = task.data if isinstance(task.data, dict) else {"": task.data}
        inside: dict[str, str] = {}
        for split, path in paths.items():
            loc = ("task", "data", split) if split else ("task", "data")
            resolved, why = _inside_data_dir(path, settings)
            if resolved is not None:
                inside[split] = resolved
            else:
                problems.append((loc, str(why)))
        if not problems:
            data = inside if isinstance(task.data, dict) else inside[""]
            spec.task = task.model_copy(update={"data": data})
    return problems


def _model(loc: Loc, model: ModelSpec, settings: Settings) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    if model.provider == "local" and model.model is not None:
        resolved, why = _inside_data_dir(model.model, settings)
        if resolved is not None:
            model.model = resolved
        else:
            problems.append(((*loc, "model"), str(why)))
    if model.provider != "openai":
        return problems
    if model.api_key is not None:
        model.api_key_env = NO_SERVER_KEY
        return problems
    if model.api_key_env not in settings.api_key_envs:
        allowed = ", ".join(settings.api_key_envs) or "none"
        problems.append((
            (*loc, "api_key_env"),
            f"this server lends only the keys in {allowed} (EVO_API_KEY_ENVS); "
            "or give your own api_key",
        ))
    own = {u.rstrip("/") for u in (settings.llm_base_url, os.environ.get("EVO_LLM_BASE_URL")) if u}
    if model.base_url is not None and model.base_url.rstrip("/") not in own:
        problems.append((
            (*loc, "base_url"),
            "a job that uses a key held by the server cannot choose the endpoint; "
            "give your own api_key with this base_url (any text for a server without keys)",
        ))
    return problems


def _inside_data_dir(path: str, settings: Settings) -> tuple[str | None, str | None]:
    """(the absolute path of a file inside ``api_data_dir``, None), or (None, why not)."""
    if settings.api_data_dir is None:
        return None, ("this server reads no files named in API specs (EVO_API_DATA_DIR is "
                      "unset); use a built-in task (GET /api/v1/tasks) and model")
    root = Path(settings.api_data_dir).resolve()
    try:
        resolved = (root / path).resolve()
    except (OSError, ValueError):
        return None, "not a usable path"
    if resolved == root or root not in resolved.parents:
        return None, "must name a file inside the server's data folder, relative to it"
    return str(resolved), None
