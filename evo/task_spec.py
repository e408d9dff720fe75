"""A task as a job spec describes it (``TaskSpec``), and the checks that need no data: what the
spec reader validates before a task is loaded (``evo.task`` builds the task from it)."""

from __future__ import annotations

import string
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from evo.metrics import BUILTIN_METRICS
from evo.rubric import Rubric

SPLIT_NAMES = ("train", "dev", "test")


class TaskError(ValueError):
    """A task definition or its data is wrong; the message says what and where."""


def check_template(template: str) -> str:
    """The template must use exactly the fields {prompt} and {input} (literal braces doubled)."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as exc:
        raise TaskError(f"template: {exc} (write literal braces as '{{{{' and '}}}}')") from exc
    missing = {"prompt", "input"} - fields
    extra = fields - {"prompt", "input"}
    if missing:
        raise TaskError(f"template: missing {', '.join('{' + m + '}' for m in sorted(missing))}")
    if extra:
        raise TaskError(f"template: unknown field(s) {', '.join(sorted(extra))!s}; only {{prompt}} "
                        "and {input} are filled in (write literal braces as '{{' and '}}')")
    return template


def metric_parts_problem(spec: TaskSpec) -> str | None:
    """What is wrong with the parts a metric needs (a rubric, a JSON Schema), if anything."""
    for metric, part in {"judge": "rubric", "json_schema": "json_schema"}.items():
        given = getattr(spec, part) is not None
        if spec.metric == metric and not given:
            return f"metric '{metric}' needs task.{part}"
        if given and spec.metric != metric:
            return (f"task.{part} is only used with metric '{metric}' (metric is "
                    f"{spec.metric or 'the default'!r})")
    return None


# --- specs -------------------------------------------------------------------------------------


class ColumnMap(BaseModel):
    """Which column (JSONL key, CSV header, dataset feature) holds each part of an example."""

    model_config = ConfigDict(extra="forbid")

    input: str = "input"
    target: str = "target"
    id: str | None = Field(None, description="unique id column; default: split name + row number")


class TaskSpec(BaseModel):
    """A task as a job spec describes it: a built-in to adapt, or data files plus the parts."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    description: str | None = None
    builtin: str | None = Field(None, description="start from this built-in task")
    data: str | dict[str, str] | None = Field(
        None, description="{train: path, dev: path, test: path}, or one path split by fractions")
    format: Literal["jsonl", "csv", "hf"] | None = Field(
        None, description="default from the extension; a directory is read as 'hf'")
    columns: ColumnMap = Field(default_factory=ColumnMap)
    split_fractions: dict[str, float] | None = Field(
        None, description="for a single data path: share of rows per split (sum <= 1)")
    split_seed: int = 0
    template: str | None = None
    labels: list[str] | None = None
    verbalizers: dict[str, str] | None = None
    seed_prompts: list[str] | None = None
    metric: str | None = Field(None, description=f"{' | '.join(BUILTIN_METRICS)} | module:function")
    rubric: Rubric | None = Field(None, description="metric judge: what the judge model weighs")
    json_schema: dict[str, Any] | None = Field(
        None, description="metric json_schema: the JSON Schema an answer must validate against")
    max_answer_tokens: int | None = Field(None, ge=1, le=8192)
    system: str | None = None
    stop: list[str] | None = None

    @field_validator("data")
    @classmethod
    def _check_data(cls, v: str | dict[str, str] | None) -> str | dict[str, str] | None:
        if isinstance(v, dict) and set(v) != set(SPLIT_NAMES):
            raise ValueError(f"give a path for each of {', '.join(SPLIT_NAMES)} (got "
                             f"{', '.join(v) or 'none'}), or one path with split_fractions")
        return v

    @field_validator("split_fractions")
    @classmethod
    def _check_fractions(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        if set(v) != set(SPLIT_NAMES):
            raise ValueError(f"needs exactly the keys {', '.join(SPLIT_NAMES)}")
        if any(not 0 < f <= 1 for f in v.values()) or sum(v.values()) > 1 + 1e-9:
            raise ValueError("each fraction must be in (0, 1] and together at most 1")
        return v

    @field_validator("template")
    @classmethod
    def _check_template(cls, v: str | None) -> str | None:
        return None if v is None else check_template(v)

    @field_validator("labels")
    @classmethod
    def _check_labels(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or len(set(v)) != len(v) or not all(s.strip() for s in v)):
            raise ValueError("labels must be a non-empty list of distinct names")
        return v

    @field_validator("seed_prompts")
    @classmethod
    def _check_seeds(cls, v: list[str] | None) -> list[str] | None:
        if v is not None and (not v or not all(s.strip() for s in v)):
            raise ValueError("seed_prompts must be a non-empty list of non-empty prompts")
        return v

    @field_validator("metric")
    @classmethod
    def _check_metric(cls, v: str | None) -> str | None:
        if v is not None and v not in BUILTIN_METRICS:
            module, sep, attr = v.partition(":")
            if not (sep and module and attr):
                raise ValueError(f"use one of {', '.join(BUILTIN_METRICS)} or 'module:function'")
        return v

    @field_validator("json_schema")
    @classmethod
    def _check_schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        if v is None:
            return v
        from jsonschema import SchemaError, validators

        try:
            validators.validator_for(v).check_schema(v)
        except SchemaError as exc:
            where = "/".join(str(p) for p in exc.path)
            raise ValueError(f"not a valid JSON Schema{f' (at {where})' if where else ''}: "
                             f"{exc.message}") from None
        return v

    @model_validator(mode="after")
    def _check_metric_parts(self) -> TaskSpec:
        if self.builtin is None:  # else checked once the built-in's own parts are in
            problem = metric_parts_problem(self)
            if problem:
                raise ValueError(problem)
        return self

    @model_validator(mode="after")
    def _check_parts(self) -> TaskSpec:
        if self.builtin is None and self.data is None:
            raise ValueError("a task needs 'data' (or 'builtin' to start from a built-in task)")
        if self.split_fractions is not None and isinstance(self.data, dict):
            raise ValueError("split_fractions only apply when 'data' is a single path")
        if self.labels is not None and self.verbalizers is not None:
            unknown = set(self.verbalizers) - set(self.labels)
            if unknown:
                raise ValueError(f"verbalizers for unknown labels: {', '.join(sorted(unknown))}")
        return self
