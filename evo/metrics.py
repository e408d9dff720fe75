"""Metrics: how a model's answer to one example is scored.

A metric is any object with a ``name`` and ``__call__(prediction, example) -> float`` (usually 0 or
1). Built-in metrics also have ``parse(prediction) -> str | None``, which returns the answer they
found in the raw text (a label, a number, the normalized text) or ``None`` when there is none; the
task uses it to tell a wrong answer from an unparsable one.
"""

from __future__ import annotations

import importlib
import math
import re
import string
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from evo.rubric import Rubric
    from evo.task import Example

BUILTIN_METRICS = ("label_accuracy", "exact_match", "numeric", "contains", "f1", "judge",
                   "json_schema")


@runtime_checkable
class Metric(Protocol):
    @property
    def name(self) -> str: ...

    def __call__(self, prediction: str, example: Example) -> float: ...


@runtime_checkable
class ParsingMetric(Metric, Protocol):
    def parse(self, prediction: str) -> str | None: ...


# --- text helpers ------------------------------------------------------------------------------

_PUNCT = str.maketrans({ch: " " for ch in string.punctuation})


def normalize(text: str) -> str:
    """Lower case, punctuation as spaces, whitespace collapsed: 'The  Answer!' -> 'the answer'."""
    return " ".join(text.lower().translate(_PUNCT).split())


# A number: optional minus, optional currency sign, digits with or without thousands commas,
# optional decimals. The look-behind keeps "5-3" from reading as "-3" and "v2" from matching.
_NUMBER = re.compile(r"(?<![\w.])(-)?\$?((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?)(?![\d])")


def parse_number(text: str) -> float | None:
    """The last number in ``text`` ("1,234", "-3", "3.50", "$12"), or None."""
    matches = _NUMBER.findall(text.replace("\u2212", "-"))  # typographic minus
    if not matches:
        return None
    sign, digits = matches[-1]
    value = float(digits.replace(",", ""))
    return -value if sign else value


def format_number(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


# --- metrics -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelAccuracy:
    """1 when the predicted label equals the example's target label.

    In label-scoring mode the task maps log-probabilities to a label itself; for generated text
    ``parse`` returns the label whose verbalizer (or name) appears first, as a whole word.
    """

    verbalizers: Mapping[str, str]
    name: str = "label_accuracy"
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    _lookup: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup: dict[str, str] = {}
        for label, word in self.verbalizers.items():
            lookup.setdefault(word.lower(), label)
        for label in self.verbalizers:  # label names count too, after the verbalizer words
            lookup.setdefault(label.lower(), label)
        # Longest first so that "very positive" wins over "positive" at the same position.
        alternatives = sorted(lookup, key=len, reverse=True)
        body = "|".join(re.escape(w) for w in alternatives) or r"(?!)"
        object.__setattr__(self, "_lookup", lookup)
        object.__setattr__(self, "_pattern", re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.I))

    def parse(self, prediction: str) -> str | None:
        found = self._pattern.search(prediction)
        return self._lookup[found.group(0).lower()] if found else None

    def __call__(self, prediction: str, example: Example) -> float:
        return 1.0 if self.parse(prediction) == example.target else 0.0


@dataclass(frozen=True)
class ExactMatch:
    """1 when the answer equals the target after normalizing case, punctuation and spaces."""

    name: str = "exact_match"

    def parse(self, prediction: str) -> str | None:
        return normalize(prediction) or None

    def __call__(self, prediction: str, example: Example) -> float:
        return 1.0 if normalize(prediction) == normalize(example.target) else 0.0


@dataclass(frozen=True)
class NumericMatch:
    """1 when the last number in the answer equals the target number (within ``tolerance``)."""

    tolerance: float = 1e-6
    name: str = "numeric"

    def parse(self, prediction: str) -> str | None:
        value = parse_number(prediction)
        return None if value is None else format_number(value)

    def __call__(self, prediction: str, example: Example) -> float:
        got, want = parse_number(prediction), parse_number(example.target)
        if got is None or want is None:
            return 0.0
        return 1.0 if math.isclose(got, want, rel_tol=0.0, abs_tol=self.tolerance) else 0.0


@dataclass(frozen=True)
class Contains:
    """1 when the normalized target occurs in the normalized answer, on word boundaries."""

    name: str = "contains"

    def parse(self, prediction: str) -> str | None:
        return normalize(prediction) or None

    def __call__(self, prediction: str, example: Example) -> float:
        want = normalize(example.target)
        if not want:
            return 0.0
        return 1.0 if f" {want} " in f" {normalize(prediction)} " else 0.0


@dataclass(frozen=True)
class TokenF1:
    """Harmonic mean of token precision and recall between answer and target (SQuAD style)."""

    name: str = "f1"

    def parse(self, prediction: str) -> str | None:
        return normalize(prediction) or None

    def __call__(self, prediction: str, example: Example) -> float:
        got, want = normalize(prediction).split(), normalize(example.target).split()
        if not got or not want:
            return float(got == want)
        common = sum((Counter(got) & Counter(want)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(got), common / len(want)
        return 2 * precision * recall / (precision + recall)


@dataclass(frozen=True)
class UserMetric:
    """A user function ``fn(prediction: str, example: Example) -> float``, named ``module:fn``."""

    name: str
    fn: Callable[[str, Example], float]

    def __call__(self, prediction: str, example: Example) -> float:
        return float(self.fn(prediction, example))


def load_user_metric(ref: str) -> UserMetric:
    """Import ``module:function`` (also ``package.module:Class.method``)."""
    from evo.task import TaskError  # deferred: evo.task imports this module

    module_name, sep, attr = ref.partition(":")
    if not sep or not module_name or not attr:
        raise TaskError(f"metric {ref!r}: expected a built-in name {BUILTIN_METRICS} or "
                        "'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise TaskError(f"metric {ref!r}: cannot import module {module_name!r}: {exc}") from exc
    obj: object = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise TaskError(f"metric {ref!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise TaskError(f"metric {ref!r}: {attr!r} is a {type(obj).__name__}, not a callable")
    return UserMetric(name=ref, fn=obj)


def get_metric(
    name: str,
    *,
    verbalizers: Mapping[str, str] | None = None,
    rubric: Rubric | None = None,
    schema: Mapping[str, Any] | None = None,
) -> Metric:
    """A metric by built-in name, or a user function given as ``module:function``."""
    from evo.task import TaskError

    if name == "judge":
        from evo.judge import JudgeMetric  # deferred: it builds requests (evo.llm)

        if rubric is None:
            raise TaskError("metric 'judge' needs a rubric (task.rubric)")
        return JudgeMetric(rubric)
    if name == "json_schema":
        from evo.metrics_json import JsonSchemaMetric

        if schema is None:
            raise TaskError("metric 'json_schema' needs a JSON Schema (task.json_schema)")
        return JsonSchemaMetric(dict(schema))

    if name == "label_accuracy":
        if not verbalizers:
            raise TaskError("metric 'label_accuracy' needs labels (and optionally verbalizers)")
        return LabelAccuracy(dict(verbalizers))
    simple: dict[str, Callable[[], Metric]] = {
        "exact_match": ExactMatch, "numeric": NumericMatch, "contains": Contains, "f1": TokenF1,
    }
    if name in simple:
        return simple[name]()
    if ":" in name:
        return load_user_metric(name)
    raise TaskError(f"unknown metric {name!r}: use one of {', '.join(BUILTIN_METRICS)} or "
                    "'module:function'")
