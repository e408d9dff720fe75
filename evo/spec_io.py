"""Reading a job spec: YAML or JSON, ``--set a.b=value`` overrides, and errors a person can act on.

Every problem is reported as a ``FieldError`` with the dotted path of the field and, when the spec
came from a YAML file, the line it is on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from evo.algorithms import REGISTRY, UnknownAlgorithm, get_algorithm
from evo.spec import JobSpec


@dataclass(frozen=True)
class FieldError:
    loc: tuple[str | int, ...]
    message: str
    line: int | None = None

    @property
    def path(self) -> str:
        return ".".join(str(p) for p in self.loc) or "(spec)"

    def __str__(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"{self.path}{where}: {self.message}"


class SpecError(ValueError):
    def __init__(self, errors: list[FieldError], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        head = f"invalid job spec{f' in {source}' if source else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  - {e}" for e in errors))


def parse_spec(
    data: Mapping[str, Any], *, lines: Mapping[tuple, int] | None = None, source: str | None = None
) -> JobSpec:
    """Validate a spec mapping, including the chosen algorithm's own parameters and templates."""
    lines = lines or {}

    def err(loc: tuple, message: str) -> FieldError:
        return FieldError(tuple(loc), message, _line_of(lines, tuple(loc)))

    if not isinstance(data, Mapping):
        raise SpecError([FieldError((), "a spec must be a mapping of fields")], source)
    try:
        spec = JobSpec.model_validate(dict(data))
    except ValidationError as exc:
        # a task given as a mapping is not wrong for failing to be a name: keep only the
        # errors of the branch the user meant
        task_is_mapping = isinstance(data.get("task"), Mapping)
        errors = [e for e in exc.errors()
                  if not (task_is_mapping and e["loc"][:2] == ("task", "str"))]
        raise SpecError(
            [err(_clean_loc(e["loc"]), e["msg"]) for e in errors or exc.errors()], source
        ) from None
    if isinstance(spec.task, str):
        from evo.task import builtin_tasks

        names = builtin_tasks()
        if spec.task not in names:
            known = ", ".join(sorted(names))
            raise SpecError(
                [err(("task",), f"unknown task {spec.task!r}; built-in tasks: {known} "
                                "(or give a task definition with data files)")],
                source,
            )
    try:
        cls = get_algorithm(spec.algorithm.name)
    except UnknownAlgorithm as exc:
        raise SpecError([err(("algorithm", "name"), str(exc))], source) from None
    problems = []
    kind = _task_kind(spec.task)
    if kind not in cls.kinds:
        fitting = ", ".join(sorted(n for n, c in REGISTRY.items() if kind in c.kinds))
        problems.append(err(("algorithm", "name"), f"{cls.name} searches {' or '.join(cls.kinds)}s "
                            f"but task {spec.task!r} is a {kind} task; use one of: {fitting}"))
    try:
        cls.params_model.model_validate(spec.algorithm.params)
    except ValidationError as exc:
        problems += [err(("algorithm", *_clean_loc(e["loc"])), e["msg"]) for e in exc.errors()]
    problems += [
        err(("algorithm", "templates"), p) for p in cls.check_templates(spec.algorithm.templates)
    ]
    if problems:
        raise SpecError(problems, source)
    return spec


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> JobSpec:
    """Load a YAML/JSON spec file, apply ``key.path=value`` overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(
            [FieldError((), f"cannot read spec file: {exc.strerror}")], str(path)
        ) from None
    data, lines = parse_text(text, str(path))
    data = apply_overrides(data, overrides, source=str(path))
    spec = parse_spec(data, lines=lines, source=str(path))
    spec._base_dir = str(path.resolve().parent)
    return _absolute_data(spec)


def _absolute_data(spec: JobSpec) -> JobSpec:
    """Data paths relative to the spec file, made absolute so the stored spec stands alone
    (a resumed job finds its data wherever it is resumed from)."""
    task = spec.task
    if isinstance(task, str) or task.data is None or spec._base_dir is None:
        return spec
    base = Path(spec._base_dir)

    def absolute(p: str) -> str:
        return p if Path(p).is_absolute() else str(base / p)

    data = {k: absolute(v) for k, v in task.data.items()} if isinstance(task.data, dict) else (
        absolute(task.data))
    spec.task = task.model_copy(update={"data": data})
    return spec


def parse_text(text: str, source: str = "<spec>") -> tuple[dict, dict[tuple, int]]:
    """YAML (JSON is YAML) into data plus the line of every key."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([FieldError((), f"not valid YAML/JSON: {problem}", line)], source) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise SpecError([FieldError((), "a spec must be a mapping of fields", 1)], source)
    lines: dict[tuple, int] = {}
    _walk(node, (), lines)
    return data, lines


def apply_overrides(data: dict, overrides: Iterable[str], source: str | None = None) -> dict:
    """``algorithm.population=8`` sets data["algorithm"]["population"] = 8 (a YAML value)."""
    data = json.loads(json.dumps(data))  # deep copy of plain data
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise SpecError([FieldError((), f"--set needs key=value, got {item!r}")], source)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        parts = key.strip().split(".")
        target = data
        for part in parts[:-1]:
            nxt = target.get(part)
            if isinstance(nxt, str) and part == "task":
                nxt = {"builtin": nxt}  # --set task.template=... refines a built-in task
            if not isinstance(nxt, dict):
                nxt = {}
            target[part] = nxt
            target = nxt
        target[parts[-1]] = value
    return data


def _walk(node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            sub = (*path, key_node.value)
            lines[sub] = key_node.start_mark.line + 1
            _walk(value_node, sub, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _walk(item, (*path, i), lines)


def _line_of(lines: Mapping[tuple, int], loc: tuple) -> int | None:
    """The line of the deepest part of ``loc`` that the file has (a missing field → its parent)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def _task_kind(task: object) -> str:
    from evo.problems import PROBLEMS

    return "program" if isinstance(task, str) and task in PROBLEMS else "prompt"


# pydantic names the validator of a union member in an error's path
# ("function-after[_check_parts(), TaskSpec]"); a person wants the field
_VALIDATOR_STEP = re.compile(r"^function-(after|before|wrap|plain)\[")


def _clean_loc(loc: tuple) -> tuple:
    # pydantic names union branches (task.TaskSpec.template, task.str) and validator steps in
    # the path; drop them
    return tuple(
        p for p in loc
        if not (isinstance(p, str) and (p[:1].isupper() or p == "str"
                                         or _VALIDATOR_STEP.match(p)))
    )
