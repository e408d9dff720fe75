"""Losses from label log-probabilities (BBT, BDPL minimize them)."""

from __future__ import annotations

import math

import pytest

from evo.candidate import Outcome
from evo.llm import LLMResponse
from evo.losses import example_loss, mean_loss
from evo.task import load_task


def test_cross_entropy_renormalizes_over_the_labels() -> None:
    lp = {"a": math.log(0.3), "b": math.log(0.1)}  # 0.6 of the mass went elsewhere
    assert example_loss("ce", lp, "a") == pytest.approx(-math.log(0.75))
    assert example_loss("ce", lp, "b") == pytest.approx(-math.log(0.25))


def test_hinge_and_accuracy_read_the_margin_over_the_best_other_label() -> None:
    lp = {"a": -0.2, "b": -2.0, "c": -0.5}
    assert example_loss("hinge", lp, "a") == pytest.approx(1.0 - 0.3)
    assert example_loss("hinge", lp, "b") == pytest.approx(1.0 + 1.8)
    assert example_loss("hinge", {"a": -0.1, "b": -5.0}, "a") == 0.0
    assert example_loss("accuracy", lp, "a") == 0.0
    assert example_loss("accuracy", lp, "c") == 1.0
    assert example_loss("accuracy", {"a": -1.0, "b": -1.0}, "a") == 1.0  # a tie is not right


def test_an_answer_without_label_scores_counts_as_the_uniform_guess() -> None:
    assert example_loss("ce", None, "a") == pytest.approx(math.log(2))
    outs = [Outcome("1", "a", "a", 1.0, None, {"a": 0.0, "b": -100.0}),
            Outcome("2", "b", "", 0.0, "call_error: x", None)]
    assert mean_loss("ce", outs) == pytest.approx(math.log(2) / 2, abs=1e-9)
    assert mean_loss("ce", []) == math.inf


def test_task_reads_label_log_probabilities_by_label_and_calibrates_them() -> None:
    task = load_task("sentiment")
    words = {label: task.verbalizers[label] for label in task.labels}
    response = LLMResponse("x", "m", label_logprobs={w: -float(i + 1) for i, w in
                                                     enumerate(words.values())})
    got = task.label_logprobs(response)
    assert got == {label: -float(i + 1) for i, label in enumerate(task.labels)}
    cal = {w: -float(i + 1) for i, w in enumerate(words.values())}
    assert task.label_logprobs(response, cal) == dict.fromkeys(task.labels, 0.0)
    assert task.label_logprobs(LLMResponse("x", "m", error="boom")) is None
    assert task.label_logprobs(LLMResponse("x", "m")) is None
