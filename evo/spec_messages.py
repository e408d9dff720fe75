"""Pydantic's errors as a person reads them: the field's path without pydantic's own steps, the
message without a validator's prefix, and for an unknown field the closest known one."""

from __future__ import annotations

import difflib
import re
import typing
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from evo.spec import JobSpec

Loc = tuple[str | int, ...]

# what pydantic puts before the message of an error raised by a validator
_PREFIXES = ("Value error, ", "Assertion failed, ")


def user_message(error: ErrorDetails | Mapping[str, Any]) -> str:
    """A pydantic error's message as a person should read it: without the validator's prefix
    ("Value error, ") and without repeating the field it is already shown beside."""
    message = str(error.get("msg", "invalid value"))
    for prefix in _PREFIXES:
        message = message.removeprefix(prefix)
    loc = tuple(error.get("loc", ()))
    if loc and isinstance(loc[-1], str):
        message = message.removeprefix(f"{loc[-1]}: ")
    return message


def problem(
    model: type[BaseModel], error: ErrorDetails, prefix: Loc = (), also: Iterable[str] = ()
) -> tuple[Loc, str]:
    """One pydantic error as (path, message); an unknown field gets the closest known one."""
    loc = clean_loc(error["loc"])
    if error["type"] == "extra_forbidden" and loc:
        known = [*_fields_at(model, loc[:-1]), *(also if not loc[:-1] else ())]
        close = closest(str(loc[-1]), known)
        message = "unknown field" + (f"; did you mean {close}?" if close else
                                     f"; known fields: {', '.join(known)}" if known else "")
    else:
        message = user_message({**error, "loc": loc})
    return (*prefix, *loc), message


def _fields_at(model: type[BaseModel], path: Loc) -> list[str]:
    """The field names of the model found at ``path`` under ``model`` ([] where none is)."""
    current: type[BaseModel] | None = model
    for step in path:
        if isinstance(step, int):
            continue  # an item of a list: the list's own annotation named its model
        field = current.model_fields.get(step) if current else None
        current = next(iter(_models_of(field.annotation)), None) if field else None
        if current is None:
            return []
    return list(current.model_fields) if current else []


def closest(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, [str(k) for k in known], n=1)
    return close[0] if close else None


# pydantic names union members ("str", "dict[str,str]", "TaskSpec") and the validators of union
# members ("function-after[_check_parts(), TaskSpec]") in an error's path; a person wants the field
_TYPE_STEP = re.compile(r"^[a-z-]+\[")
_SCALAR_STEPS = frozenset({"str", "int", "float", "bool", "none"})


def _model_names(model: type[BaseModel], seen: set[str] | None = None) -> set[str]:
    """The names of ``model`` and of every model its fields hold."""
    seen = set() if seen is None else seen
    seen.add(model.__name__)
    for field in model.model_fields.values():
        for inner in _models_of(field.annotation):
            if inner.__name__ not in seen:
                _model_names(inner, seen)
    return seen


def _models_of(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_of(arg)]


_MODEL_STEPS = frozenset(_model_names(JobSpec))


def _is_type_step(part: object) -> bool:
    return isinstance(part, str) and (part in _SCALAR_STEPS or part in _MODEL_STEPS
                                      or _TYPE_STEP.match(part) is not None)


def clean_loc(loc: Iterable[str | int]) -> Loc:
    return tuple(p for p in loc if not _is_type_step(p))


def other_branch(loc: Iterable[str | int], data: object) -> bool:
    """An error of a union's text branch where a mapping was given: the user meant another
    branch (``task: {data: ...}`` is not wrong for not being a task name)."""
    value = data
    for step in loc:
        if step == "str":
            return isinstance(value, Mapping)
        if _is_type_step(step):
            continue
        found = (isinstance(value, Mapping) and step in value) or (
            isinstance(value, list) and isinstance(step, int) and 0 <= step < len(value))
        if not found:
            return False
        value = value[step]  # type: ignore[index]
    return False
