"""Metric ``json_schema``: structured answers, scored field by field against a reference object.

An answer scores 0 unless the JSON found in it validates against the task's schema; a valid answer
scores the fraction of the reference's leaf fields it gets right. Validity is a gate, not a part of
the score, so that a prompt cannot earn credit with output a program reading it would reject.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evo.task_spec import TaskError

if TYPE_CHECKING:
    from jsonschema.protocols import Validator

    from evo.task import Example

_DECODER = json.JSONDecoder()
Path = tuple[str, ...]


def find_json(text: str) -> tuple[str, Any] | None:
    """The first ``{...}`` or ``[...]`` in ``text`` that is whole JSON, as (its text, its value).

    Models wrap JSON in code fences or prose ("Here it is: {...}"); decoding from each opening
    bracket in turn skips both, and a bracket that starts no JSON ("[sic]") is passed over.
    """
    for start, char in enumerate(text):
        if char not in "{[":
            continue
        try:
            value, end = _DECODER.raw_decode(text, start)
        except ValueError:
            continue
        return text[start:end], value
    return None


def leaves(value: Any, path: Path = ()) -> dict[Path, Any]:
    """Each leaf of nested objects by its path of keys; lists and scalars are leaves, whole."""
    if isinstance(value, dict) and (value or not path):
        out: dict[Path, Any] = {}
        for key, item in value.items():
            out.update(leaves(item, (*path, str(key))))
        return out
    return {path: value}


def _canonical(value: Any) -> Any:
    """A form in which equal answers compare equal: strings trimmed and case-folded, numbers as
    floats (30 == 30.0), booleans kept apart from numbers (``True == 1`` in Python)."""
    if isinstance(value, bool) or value is None:
        return ("const", value)
    if isinstance(value, (int, float)):
        return ("number", float(value))
    if isinstance(value, str):
        return ("string", value.strip().casefold())
    if isinstance(value, list):
        return ("list", tuple(_canonical(v) for v in value))
    if isinstance(value, dict):
        return ("object", tuple(sorted((str(k), _canonical(v)) for k, v in value.items())))
    return ("other", repr(value))


def same(got: Any, want: Any) -> bool:
    a, b = _canonical(got), _canonical(want)
    if a[0] == b[0] == "number":
        return math.isclose(a[1], b[1], rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def field_accuracy(answer: Any, reference: Any) -> float:
    """The fraction of the reference's leaf fields that the answer has, equal (1.0 when the
    reference has none: ``{}`` is matched by any valid answer)."""
    want = leaves(reference)
    got = leaves(answer)
    missing = object()
    right = sum(same(got.get(path, missing), value) for path, value in want.items())
    return right / len(want) if want else 1.0


def _validator(schema: Mapping[str, Any]) -> Validator:
    from jsonschema import validators

    # the class its "$schema" names (the latest draft when it names none); the spec reader has
    # already checked the schema against it
    return validators.validator_for(schema)(schema)


@dataclass(frozen=True)
class JsonSchemaMetric:
    """Scores a JSON answer: 0 unless it validates against ``schema``, else the fraction of the
    reference object's leaf fields (``example.target``, JSON text) it has equal.

    Nested objects are flattened by path (``address.city``); a list is one field, compared whole;
    strings are compared trimmed and case-folded, numbers by value. ``parse`` returns the JSON
    text found in the answer, or None when there is none (recorded as "unparsed"). So over
    examples the mean score is the valid fraction times the mean field accuracy of the valid
    answers; an answer that parses but fails the schema scores 0 like a wrong one.
    """

    schema: dict[str, Any]
    name: str = "json_schema"
    _check: Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_check", _validator(self.schema))

    def __reduce__(self) -> tuple[Any, ...]:  # the validator is rebuilt, not pickled
        return (type(self), (self.schema, self.name))

    def parse(self, prediction: str) -> str | None:
        found = find_json(prediction)
        return None if found is None else found[0]

    def valid(self, value: Any) -> bool:
        return bool(self._check.is_valid(value))

    def __call__(self, prediction: str, example: Example) -> float:
        found = find_json(prediction)
        if found is None or not self.valid(found[1]):
            return 0.0
        return field_accuracy(found[1], json.loads(example.target))


def check_json_targets(splits: Mapping[str, Iterable[Example]]) -> None:
    """Every target must be JSON text (the reference object), else the task is refused."""
    for split, examples in splits.items():
        for ex in examples:
            try:
                json.loads(ex.target)
            except ValueError as exc:
                raise TaskError(f"metric 'json_schema': split {split!r}, example {ex.id!r}: the "
                                f"target is not JSON ({exc})") from None
