"""The judge's requests and how its answers are read (evo/judge.py), and the rubric's checks."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from evo import judge
from evo.rubric import Rubric
from evo.task_spec import TaskSpec

RUBRIC = Rubric(criteria=[
    {"name": "faithfulness", "description": "every fact is in the text", "weight": 2},
    {"name": "brevity", "description": "one short sentence", "scale": 3},
])


def whole(request, text: str) -> str:
    return judge.answer_of(request, text)


def test_each_criterion_is_its_own_request_prefilled_up_to_the_score() -> None:
    reqs = judge.pointwise_requests(RUBRIC, "Summarize.", "The text.", "An answer.", "A ref.")
    assert len(reqs) == judge.calls_per_example(RUBRIC) == 2
    first, second = (r.messages[-1].content for r in reqs)
    assert "faithfulness: every fact is in the text" in first and "brevity" not in first
    assert "from 1 to 3" in second and "Reference answer: A ref." in second
    assert all(r.prefill == judge.SCORE and r.temperature == 0.0 for r in reqs)
    assert all(judge.is_judge_request(r) for r in reqs)
    no_ref = judge.pointwise_requests(RUBRIC, "Summarize.", "The text.", "An answer.")
    assert "Reference answer" not in no_ref[0].messages[-1].content


def test_scores_are_read_leniently_and_weighted() -> None:
    reqs = judge.pointwise_requests(RUBRIC, "t", "x", "a")
    v = judge.pointwise_verdict([whole(reqs[0], " 4/5\nReason: all facts hold."),
                                 whole(reqs[1], " **2** out of 3 - a bit long")], RUBRIC)
    assert v.scores == {"faithfulness": 4, "brevity": 2}
    # weights 2 and 1: (2 * 3/4 + 1 * 1/2) / 3
    assert v.value == pytest.approx((2 * 0.75 + 0.5) / 3)
    assert v.reasoning == ("all facts hold.", "a bit long") and v.failure is None


@pytest.mark.parametrize("answers", [
    [" great answer", " 2"],        # no score at all
    [" 7\nReason: x", " 2"],        # out of the criterion's scale
    [" 4", None],                   # the other criterion's call failed
])
def test_a_verdict_without_every_score_has_no_value_and_is_counted(answers) -> None:
    reqs = judge.pointwise_requests(RUBRIC, "t", "x", "a")
    texts = [None if a is None else whole(r, a) for r, a in zip(reqs, answers, strict=True)]
    v = judge.pointwise_verdict(texts, RUBRIC)
    assert v.value is None and v.failure == judge.UNPARSABLE and v.unparsable == 1
    assert v.to_json()["unparsable"] == 1 and "value" not in v.to_json()


def test_pairwise_asks_both_orders_and_cancels_a_position_bias() -> None:
    first, second = judge.pairwise_requests(RUBRIC, "t", "x", "MINE", "BASE")
    a_then_b = first.messages[-1].content
    assert a_then_b.index("Response A: MINE") < a_then_b.index("Response B: BASE")
    assert "Response A: BASE" in second.messages[-1].content
    assert first.prefill == second.prefill == judge.WINNER
    # a judge that always says "A" gives each side one win: a tie overall
    biased = judge.pairwise_verdict(whole(first, " A"), whole(second, " A"))
    assert biased.value == 0.5 and biased.winners == ("A", "A")
    won = judge.pairwise_verdict(whole(first, " A\nReason: shorter."), whole(second, " B"))
    assert won.value == 1.0 and won.reasoning[0] == "shorter."
    lost = judge.pairwise_verdict(whole(first, " Response B"), whole(second, " tie"))
    assert lost.value == 0.25
    half = judge.pairwise_verdict(whole(first, " maybe"), whole(second, " B"))
    assert half.value == 1.0 and half.unparsable == 1 and half.winners == (None, "B")
    none = judge.pairwise_verdict(whole(first, " maybe"), None)
    assert none.value is None and none.failure == judge.UNPARSABLE and none.unparsable == 2


def test_a_rubric_is_checked_when_the_spec_is_read() -> None:
    base = {"data": "x.jsonl", "metric": "judge"}
    with pytest.raises(ValidationError, match=r"rubric\.criteria") as err:
        TaskSpec.model_validate({**base, "rubric": {"criteria": []}})
    assert "at least one criterion" in str(err.value)
    with pytest.raises(ValidationError, match=r"needs task\.rubric"):
        TaskSpec.model_validate(base)
    with pytest.raises(ValidationError, match="only used with metric 'judge'"):
        TaskSpec.model_validate({"data": "x.jsonl", "metric": "f1",
                                 "rubric": {"criteria": [{"name": "a", "description": "b"}]}})
    with pytest.raises(ValidationError, match="same name"):
        TaskSpec.model_validate({**base, "rubric": {"criteria": [
            {"name": "a", "description": "b"}, {"name": "A", "description": "c"}]}})
    with pytest.raises(ValidationError, match=r"criteria\.0\.weight"):
        TaskSpec.model_validate({**base, "rubric": {"criteria": [
            {"name": "a", "description": "b", "weight": 0}]}})


def test_a_builtin_adapted_to_another_metric_leaves_its_rubric_behind() -> None:
    from evo.task import load_task

    other = load_task(TaskSpec.model_validate({"builtin": "summary", "metric": "f1"}))
    assert other.judged is False
    same = load_task(TaskSpec.model_validate({"builtin": "summary", "metric": "judge"}))
    assert same.judged and len(same.metric.rubric.criteria) == 3
    own = load_task(TaskSpec.model_validate({"builtin": "summary", "rubric": {
        "criteria": [{"name": "tone", "description": "polite"}]}}))
    assert [c.name for c in own.metric.rubric.criteria] == ["tone"]
    contacts = load_task(TaskSpec.model_validate({"builtin": "contacts", "metric": "exact_match"}))
    assert contacts.metric.name == "exact_match"
