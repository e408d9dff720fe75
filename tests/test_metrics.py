from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from evo.metrics import (
    Contains,
    ExactMatch,
    LabelAccuracy,
    Metric,
    NumericMatch,
    ParsingMetric,
    TokenF1,
    get_metric,
    load_user_metric,
    normalize,
    parse_number,
)
from evo.task import Example, TaskError


def ex(target: str) -> Example:
    return Example(id="x", input="question", target=target)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("The answer is 7.", 7.0),
        ("1,234", 1234.0),
        ("it costs $12", 12.0),
        ("-3", -3.0),
        ("a drop of -$5 today", -5.0),
        ("3.50", 3.5),
        ("1,234.5 in total", 1234.5),
        ("5 - 3 = 2", 2.0),
        ("5-3", 3.0),  # a hyphen between numbers is not a minus sign
        ("between 3 and 4 apples", 4.0),
        ("first 2, then 10.", 10.0),
        ("\u22124", -4.0),
        ("no number here", None),
        ("version v2", None),
        ("", None),
    ],
)
def test_parse_number(text: str, value: float | None) -> None:
    assert parse_number(text) == value


def test_numeric_match() -> None:
    metric = NumericMatch()
    assert metric("So she has 12 apples.", ex("12")) == 1.0
    assert metric("12.0000001", ex("12")) == 1.0
    assert metric("12.01", ex("12")) == 0.0
    assert metric("1000", ex("1,000")) == 1.0
    assert metric("-3", ex("3")) == 0.0
    assert metric("no idea", ex("3")) == 0.0
    assert metric("3", ex("three")) == 0.0  # a target without a number never matches
    assert metric.parse("about 4.50 dollars") == "4.5"
    assert metric.parse("7.0") == "7"
    assert metric.parse("none") is None


def test_label_accuracy_parses_first_verbalizer_word() -> None:
    metric = LabelAccuracy({"positive": "positive", "negative": "negative"})
    assert metric.parse("The review is Positive.") == "positive"
    assert metric.parse("NEGATIVE") == "negative"
    assert metric.parse("negative, not positive") == "negative"
    assert metric.parse("positively negative") == "negative"  # word boundaries
    assert metric.parse("nonpositive") is None
    assert metric.parse("") is None
    assert metric("Sentiment: negative", ex("negative")) == 1.0
    assert metric("Sentiment: negative", ex("positive")) == 0.0
    assert metric("unsure", ex("positive")) == 0.0


def test_label_accuracy_with_distinct_verbalizers() -> None:
    metric = LabelAccuracy({"pos": "great", "neg": "awful", "mid": "so so"})
    assert metric.parse("It was GREAT!") == "pos"
    assert metric.parse("neg") == "neg"  # label names are accepted too
    assert metric.parse("honestly so so.") == "mid"
    assert metric.parse("greatness") is None


def test_exact_match_normalizes() -> None:
    metric = ExactMatch()
    assert normalize("  The  Answer!\n") == "the answer"
    assert metric("  The Answer! ", ex("the answer")) == 1.0
    assert metric("the answers", ex("the answer")) == 0.0
    assert metric.parse(" ?! ") is None


def test_contains_on_word_boundaries() -> None:
    metric = Contains()
    assert metric("It is Paris, France.", ex("paris")) == 1.0
    assert metric("Parisian food", ex("paris")) == 0.0
    assert metric("New York City", ex("new york")) == 1.0
    assert metric("anything", ex("!!")) == 0.0  # an empty normalized target matches nothing


def test_token_f1() -> None:
    metric = TokenF1()
    assert metric("the cat sat", ex("the cat sat")) == 1.0
    assert metric("cat", ex("the cat")) == pytest.approx(2 / 3)
    assert metric("dog", ex("the cat")) == 0.0


def test_builtin_metrics_satisfy_protocols() -> None:
    for metric in (ExactMatch(), NumericMatch(), Contains(), TokenF1(),
                   LabelAccuracy({"a": "a"})):
        assert isinstance(metric, Metric)
        assert isinstance(metric, ParsingMetric)


def test_get_metric() -> None:
    assert get_metric("numeric").name == "numeric"
    assert get_metric("label_accuracy", verbalizers={"a": "yes"}).name == "label_accuracy"
    with pytest.raises(TaskError, match="needs labels"):
        get_metric("label_accuracy")
    with pytest.raises(TaskError, match="unknown metric 'bleu'"):
        get_metric("bleu")


@pytest.fixture
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = "evo_metric_fixture_mod"
    (tmp_path / f"{name}.py").write_text(textwrap.dedent("""
        NOT_CALLABLE = 3

        def half(prediction, example):
            return 0.5 if example.target in prediction else 0.0

        class Scorers:
            @staticmethod
            def strict(prediction, example):
                return prediction == example.target
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    sys.modules.pop(name, None)


def test_user_metric_loads_and_scores(user_module: str) -> None:
    metric = load_user_metric(f"{user_module}:half")
    assert metric.name == f"{user_module}:half"
    assert metric("yes 42", ex("42")) == 0.5
    nested = get_metric(f"{user_module}:Scorers.strict")
    assert nested("42", ex("42")) == 1.0
    assert not isinstance(metric, ParsingMetric)


def test_user_metric_errors(user_module: str) -> None:
    with pytest.raises(TaskError, match="cannot import module 'no_such_mod_xyz'"):
        load_user_metric("no_such_mod_xyz:fn")
    with pytest.raises(TaskError, match="has no attribute 'missing'"):
        load_user_metric(f"{user_module}:missing")
    with pytest.raises(TaskError, match="not a callable"):
        load_user_metric(f"{user_module}:NOT_CALLABLE")
    with pytest.raises(TaskError, match="module:function"):
        load_user_metric("no_colon_here")
    with pytest.raises(TaskError, match="module:function"):
        load_user_metric(":fn")
