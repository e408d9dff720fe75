"""Reading a job spec: YAML or JSON, ``--set a.b=value`` overrides, and errors a person can act on.

Every problem is reported as a ``FieldError`` with the dotted path of the field and, when the spec
came from a YAML file, the line it is on (or, for a value given with ``--set``, that item). All
the problems of a spec are reported at once: its fields, the task's name and the algorithm's own
parameters and templates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from evo.algorithms import REGISTRY, UnknownAlgorithm, get_algorithm
from evo.spec import AlgorithmSpec, JobSpec
from evo.spec_messages import Loc, closest, other_branch, problem
from evo.task import TaskSpec


@dataclass(frozen=True)
class FieldError:
    loc: Loc
    message: str
    line: int | None = None
    origin: str | None = None  # the ``--set`` item the value came from

    @property
    def path(self) -> str:
        return ".".join(str(p) for p in self.loc) or "(spec)"

    def __str__(self) -> str:
        if self.origin:
            where = f" (from --set {self.origin})"
        else:
            where = f" (line {self.line})" if self.line else ""
        return f"{self.path}{where}: {self.message}"


class SpecError(ValueError):
    def __init__(self, errors: list[FieldError], source: str | None = None) -> None:
        self.errors = errors
        self.source = source
        head = f"invalid job spec{f' in {source}' if source else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  - {e}" for e in errors))


def parse_spec(
    data: Mapping[str, Any],
    *,
    lines: Mapping[tuple, int] | None = None,
    source: str | None = None,
    origins: Mapping[tuple, str] | None = None,
) -> JobSpec:
    """Validate a spec mapping, including the chosen algorithm's own parameters and templates;
    every problem found is raised at once. ``lines``: the line of each key in the file;
    ``origins``: the ``--set`` item that set each path (see ``override_origins``)."""
    if not isinstance(data, Mapping):
        raise SpecError([FieldError((), "a spec must be a mapping of fields")], source)
    problems: list[tuple[Loc, str]] = []
    spec = None
    try:
        spec = JobSpec.model_validate(dict(data))
    except ValidationError as exc:
        errors = [e for e in exc.errors() if not other_branch(e["loc"], data)]
        problems += [problem(JobSpec, e) for e in errors or exc.errors()]
    problems += _task_problems(data.get("task"))
    problems += _algorithm_problems(data.get("algorithm", {}), data.get("task"))
    problems += _strategy_problems(data)
    if not problems and spec is not None:
        cls = get_algorithm(spec.algorithm.name)
        problems += cls.spec_problems(spec, _task_labels(spec.task))
    if problems:
        raise SpecError(_located(problems, lines or {}, origins or {}), source)
    assert spec is not None  # no problem means the model validated
    own = REGISTRY[spec.algorithm.name].strategy
    if own is not None and "strategy" not in spec.evaluation.model_fields_set:
        spec.evaluation.strategy = own  # type: ignore[assignment]  # one of the Literal's
    return spec


def _task_labels(task: str | TaskSpec) -> list[str] | None:
    """The labels of the spec's task as the spec gives them, without reading its data (None: a
    built-in that does not exist, which the task's own check reports)."""
    from evo.problems import PROBLEMS
    from evo.tasks import BUILTINS, builtin_definition

    name = task if isinstance(task, str) else task.builtin
    if not isinstance(task, str) and task.labels is not None:
        return list(task.labels)
    if name is None or name in PROBLEMS:
        return []  # a definition without labels, or a program task
    if name not in BUILTINS:
        return None
    return list(builtin_definition(name).get("labels") or [])


def _task_problems(task: object) -> list[tuple[Loc, str]]:
    """A task named by a name that is not a built-in one."""
    if not isinstance(task, str):
        return []  # a definition: the model checks it
    from evo.task import builtin_tasks

    names = builtin_tasks()
    if task in names:
        return []
    close = closest(task, names)
    hint = f" (did you mean {close}?)" if close else ""
    return [(("task",), f"unknown task {task!r}{hint}; built-in tasks: "
                        f"{', '.join(sorted(names))} (or give a task definition with data files)")]


def _algorithm_problems(raw: object, task: object) -> list[tuple[Loc, str]]:
    """The algorithm's name, its parameters and its templates, read from the spec as given, so
    that they are checked whatever else is wrong with it."""
    if not isinstance(raw, Mapping):
        return []  # not a mapping: the model says so
    name = raw.get("name", AlgorithmSpec.model_fields["name"].default)
    if not isinstance(name, str):
        return []  # the model says what is wrong with it
    try:
        cls = get_algorithm(name)
    except UnknownAlgorithm as exc:
        close = closest(name, REGISTRY)
        return [(("algorithm", "name"), f"{exc}{f'; did you mean {close}?' if close else ''}")]
    problems: list[tuple[Loc, str]] = []
    kind = _task_kind(task)
    if kind is not None and kind not in cls.kinds:
        fitting = ", ".join(sorted(n for n, c in REGISTRY.items() if kind in c.kinds))
        what = f"task {task!r}" if isinstance(task, str) else "the task"
        problems.append((("algorithm", "name"), f"{cls.name} searches {' or '.join(cls.kinds)}s "
                         f"but {what} is a {kind} task; use one of: {fitting}"))
    params = {k: v for k, v in raw.items() if k not in AlgorithmSpec.model_fields}
    try:
        cls.params_model.model_validate(params)
    except ValidationError as exc:
        shared = tuple(AlgorithmSpec.model_fields)
        problems += [problem(cls.params_model, e, ("algorithm",), shared) for e in exc.errors()]
    templates = raw.get("templates")
    if isinstance(templates, Mapping):
        texts = {k: v for k, v in templates.items() if isinstance(v, str)}
        problems += [(("algorithm", "templates"), p) for p in cls.check_templates(texts)]
    return problems


def _strategy_problems(data: Mapping[str, Any]) -> list[tuple[Loc, str]]:
    """An evaluation strategy other than the one the algorithm's candidates are made for."""
    raw, evaluation = data.get("algorithm", {}), data.get("evaluation", {})
    if not isinstance(raw, Mapping) or not isinstance(evaluation, Mapping):
        return []
    cls = REGISTRY.get(raw.get("name", AlgorithmSpec.model_fields["name"].default))
    given = evaluation.get("strategy")
    if cls is None or cls.strategy is None or given is None or given == cls.strategy:
        return []
    return [(("evaluation", "strategy"), f"{cls.name} makes candidates that are answered with "
                                         f"the {cls.strategy!r} strategy; leave "
                                         f"evaluation.strategy unset or set it to "
                                         f"{cls.strategy!r}")]


def _located(
    problems: list[tuple[Loc, str]], lines: Mapping[tuple, int], origins: Mapping[tuple, str]
) -> list[FieldError]:
    """Each problem with its ``--set`` item, or else its line; in the file's order."""
    out: list[FieldError] = []
    for loc, message in problems:
        origin = _origin_of(origins, loc)
        if origin and message.startswith("Input should be a valid string") and (
                origin.partition("=")[2].lstrip()[:1] in ("{", "[")):
            message += "; --set reads the value as YAML: quote it to give it as text"
        error = FieldError(loc, message, None if origin else _line_of(lines, loc), origin)
        if error not in out:
            out.append(error)
    return sorted(out, key=lambda e: (e.line is None, e.line or 0))


def _origin_of(origins: Mapping[tuple, str], loc: Loc) -> str | None:
    """The ``--set`` item that set ``loc`` or a field above it (the most specific one)."""
    path = tuple(str(p) for p in loc)
    found = [(len(key), item) for key, item in origins.items() if path[:len(key)] == key]
    return max(found)[1] if found else None


def load_spec(path: str | Path, overrides: Iterable[str] = ()) -> JobSpec:
    """Load a YAML/JSON spec file, apply ``key.path=value`` overrides, validate."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(
            [FieldError((), f"cannot read spec file: {exc.strerror}")], str(path)
        ) from None
    overrides = list(overrides)
    data, lines = parse_text(text, str(path))
    data = apply_overrides(data, overrides, source=str(path))
    data = _absolute_files(data, path.resolve().parent)
    spec = parse_spec(data, lines=lines, source=str(path), origins=override_origins(overrides))
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


def _absolute_files(data: dict, base: Path) -> dict:
    """The algorithm's file parameters (``Algorithm.file_params``) relative to the spec file,
    made absolute before they are checked, so the stored spec stands alone."""
    raw = data.get("algorithm")
    name = raw.get("name") if isinstance(raw, dict) else None
    if not isinstance(name, str) or name not in REGISTRY:
        return data
    for key in REGISTRY[name].file_params:
        value = raw.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            raw[key] = str(base / value)
    return data


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
        parts, raw = _split_override(item, source)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
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


def override_origins(overrides: Iterable[str]) -> dict[tuple[str, ...], str]:
    """The path each ``--set`` item sets, and the item as its errors quote it (a key's value
    hidden); a later item for the same path wins, as it does in ``apply_overrides``."""
    out: dict[tuple[str, ...], str] = {}
    for item in overrides:
        parts, raw = _split_override(item)
        shown = "…" if parts[-1] == "api_key" else raw
        out.pop(parts, None)  # keep the order in which they were given
        out[parts] = f"{'.'.join(parts)}={shown}"
    return out


def _split_override(item: str, source: str | None = None) -> tuple[tuple[str, ...], str]:
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise SpecError([FieldError((), f"--set needs key=value, got {item!r}")], source)
    return tuple(key.strip().split(".")), raw


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


def _task_kind(task: object) -> str | None:
    """"program" or "prompt" for a task the spec names or defines (None: neither)."""
    from evo.problems import PROBLEMS
    from evo.task import builtin_tasks

    if isinstance(task, Mapping):
        return "prompt"
    if isinstance(task, str) and task in builtin_tasks():
        return "program" if task in PROBLEMS else "prompt"
    return None


