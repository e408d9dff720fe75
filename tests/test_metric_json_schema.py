"""Metric ``json_schema``: JSON found in an answer, gated by the task's schema, scored by the share
of the reference object's fields it has right; the spec and task checks that go with it; and the
built-in ``contacts`` task scored by it on the bundled model."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from statistics import mean
from typing import Any

import httpx
import pytest

from evo.app.settings import Settings
from evo.llm import LLMResponse
from evo.metrics import get_metric
from evo.metrics_json import JsonSchemaMetric, find_json
from evo.spec_io import SpecError, parse_spec
from evo.task import Example, TaskError, TaskSpec, load_task
from evo.tasks import BUILTINS, CONTACT_SCHEMA
from storage import Store
from tests.api_helpers import LiveApi

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"type": "integer"},
        "address": {"type": "object", "properties": {"city": {"type": "string"},
                                                     "zip": {"type": "string"}}},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["name", "age"],
}
REFERENCE = {"name": "Ada Byron", "age": 36, "address": {"city": "London", "zip": "W1"},
             "tags": ["math", "poetry"]}
EXAMPLE = Example("p1", "…", json.dumps(REFERENCE))


@pytest.fixture
def metric() -> JsonSchemaMetric:
    return JsonSchemaMetric(PERSON)


# --- finding the JSON --------------------------------------------------------------------------


@pytest.mark.parametrize(("answer", "found"), [
    ('{"a": 1}', '{"a": 1}'),
    ('```json\n{"a": 1}\n```', '{"a": 1}'),
    ('Sure! Here is the object: {"a": {"b": [1, 2]}} Hope that helps.', '{"a": {"b": [1, 2]}}'),
    ('Note [sic] the list: [1, 2] and {"a": 1}', "[1, 2]"),  # first that parses, whatever kind
    ('{broken, "a": 1} then {"a": 2}', '{"a": 2}'),
    ('The string holds a brace: {"s": "}{"}', '{"s": "}{"}'),
])
def test_parse_takes_the_first_json_value(metric: JsonSchemaMetric, answer: str,
                                          found: str) -> None:
    assert metric.parse(answer) == found


@pytest.mark.parametrize("answer", ["", "name: Ada, age: 36", "{'name': 'Ada'}",
                                    '{"name": "Ada", "age": 36', "42", '"just a string"'])
def test_no_json_object_or_list_is_unparsed(metric: JsonSchemaMetric, answer: str) -> None:
    assert metric.parse(answer) is None
    assert metric(answer, EXAMPLE) == 0.0


def test_unparsed_answers_are_recorded_as_such() -> None:
    task = load_task("contacts")
    ex = task.split("dev")[0]
    result = task.score(ex, LLMResponse(text="I could not find anyone.", model="m"))
    assert result.score == 0.0 and result.failure == "unparsed"
    fenced = task.score(ex, LLMResponse(text=f"```json\n{ex.target}\n```", model="m"))
    assert fenced.score == 1.0 and fenced.failure is None


# --- scoring -----------------------------------------------------------------------------------


def answer(**changes: Any) -> str:
    return json.dumps({**REFERENCE, **changes})


def test_an_exact_answer_scores_one(metric: JsonSchemaMetric) -> None:
    assert metric(answer(), EXAMPLE) == 1.0
    # strings trimmed and case-folded, numbers by value, key order free
    loose = {"tags": ["MATH", " poetry"], "address": {"zip": "w1 ", "city": "LONDON"},
             "age": 36.0, "name": "  ada byron"}
    assert metric(json.dumps(loose), EXAMPLE) == 1.0


@pytest.mark.parametrize("bad", [
    answer(age="36"),  # a string where the schema wants an integer
    json.dumps({"name": "Ada Byron"}),  # a required field missing
    answer(tags=[1, 2]),
    json.dumps([REFERENCE]),  # a list, not an object
])
def test_an_answer_the_schema_rejects_scores_zero(metric: JsonSchemaMetric, bad: str) -> None:
    assert metric.parse(bad) is not None  # it is JSON: a wrong answer, not an unparsed one
    assert metric(bad, EXAMPLE) == 0.0


def test_partial_answers_score_the_share_of_fields_right(metric: JsonSchemaMetric) -> None:
    # five leaves: name, age, address.city, address.zip, tags
    assert metric(answer(age=37), EXAMPLE) == pytest.approx(4 / 5)
    assert metric(answer(name="Ada Lovelace", address={"city": "Paris"}), EXAMPLE) == \
        pytest.approx(2 / 5)
    # a list is one field, compared whole; a field the reference lacks costs nothing
    assert metric(answer(tags=["poetry", "math"], extra=1), EXAMPLE) == pytest.approx(4 / 5)
    # booleans are not numbers
    flag = JsonSchemaMetric({"type": "object"})
    assert flag('{"on": 1}', Example("f", "", '{"on": true}')) == 0.0


def test_nested_fields_are_compared_by_path(metric: JsonSchemaMetric) -> None:
    # the right city at the wrong place earns nothing
    moved = {"name": "Ada Byron", "age": 36, "city": "London", "address": {"zip": "W1"},
             "tags": ["math", "poetry"]}
    assert metric(json.dumps(moved), EXAMPLE) == pytest.approx(4 / 5)
    deep = JsonSchemaMetric({"type": "object"})
    target = Example("d", "", '{"a": {"b": {"c": 1, "d": 2}}, "e": {}}')
    assert deep('{"a": {"b": {"c": 1, "d": 3}}, "e": {}}', target) == pytest.approx(2 / 3)
    assert deep('{"a": {"b": {"c": 1, "d": 2}}, "e": {"x": 1}}', target) == pytest.approx(2 / 3)


def test_mean_is_valid_fraction_times_accuracy_of_the_valid(metric: JsonSchemaMetric) -> None:
    answers = [answer(), answer(age=40), answer(age="x"), "no json here",
               answer(name="Bob", address={"city": "Rome", "zip": "W1"}), json.dumps({})]
    scores = [metric(a, EXAMPLE) for a in answers]
    valid = [a for a in answers if metric.parse(a) and metric.valid(json.loads(metric.parse(a)))]
    assert len(valid) == 3
    accuracy = mean(metric(a, EXAMPLE) for a in valid)
    assert mean(scores) == pytest.approx(len(valid) / len(answers) * accuracy)
    assert accuracy == pytest.approx((1 + 4 / 5 + 3 / 5) / 3)


def test_the_schema_s_draft_decides_the_rules() -> None:
    # draft 4 reads exclusiveMaximum as a flag; 2020-12 (the default) as a number
    draft4 = JsonSchemaMetric({"$schema": "http://json-schema.org/draft-04/schema#",
                               "type": "object", "properties": {
                                   "n": {"type": "number", "maximum": 5,
                                         "exclusiveMaximum": True}}})
    assert draft4('{"n": 5}', Example("n", "", '{"n": 5}')) == 0.0
    assert draft4('{"n": 4}', Example("n", "", '{"n": 4}')) == 1.0
    latest = JsonSchemaMetric({"type": "object", "properties": {
        "n": {"type": "number", "exclusiveMaximum": 5}}})
    assert latest('{"n": 5}', Example("n", "", '{"n": 5}')) == 0.0


def test_metric_pickles_and_compares_by_schema() -> None:
    import pickle

    m = get_metric("json_schema", schema=PERSON)
    copy = pickle.loads(pickle.dumps(m))
    assert copy == m and copy.name == "json_schema"
    assert copy(answer(age=37), EXAMPLE) == pytest.approx(4 / 5)


# --- specs and tasks ---------------------------------------------------------------------------


def write_splits(folder: Path, targets: dict[str, str]) -> dict[str, str]:
    paths = {}
    for split, target in targets.items():
        path = folder / f"{split}.jsonl"
        path.write_text(json.dumps({"id": f"{split}-0", "input": "x", "target": target}) + "\n")
        paths[split] = str(path)
    return paths


def task_fields(tmp_path: Path, **fields: Any) -> dict[str, Any]:
    good = json.dumps({"name": "a"})
    return {"data": write_splits(tmp_path, dict.fromkeys(("train", "dev", "test"), good)),
            **fields}


def spec_errors(data: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return {e.path: e.message for e in info.value.errors}


def test_spec_with_an_invalid_schema_is_refused_naming_the_field(tmp_path: Path) -> None:
    task = task_fields(tmp_path, metric="json_schema", json_schema={"type": "objekt"})
    errors = spec_errors({"task": task})
    assert list(errors) == ["task.json_schema"], errors
    assert "not a valid JSON Schema" in errors["task.json_schema"]
    nested = {"type": "object", "properties": {"age": {"minimum": "zero"}}}
    errors = spec_errors({"task": {**task, "json_schema": nested}})
    assert "(at properties/age/minimum)" in errors["task.json_schema"]
    # on top of a built-in task as well
    errors = spec_errors({"task": {"builtin": "contacts", "json_schema": {"required": "name"}}})
    assert list(errors) == ["task.json_schema"], errors


def test_the_metric_and_the_schema_come_together(tmp_path: Path) -> None:
    errors = spec_errors({"task": task_fields(tmp_path, metric="json_schema")})
    assert errors == {"task": "metric 'json_schema' needs task.json_schema"}
    errors = spec_errors({"task": task_fields(tmp_path, metric="exact_match",
                                              json_schema={"type": "object"})})
    assert errors == {"task": "task.json_schema is only used with metric 'json_schema' "
                              "(metric is 'exact_match')"}
    # a built-in's parts are checked once they are in: sentiment has no schema to go with it
    with pytest.raises(TaskError, match="only used with metric 'json_schema'"):
        load_task(TaskSpec(builtin="sentiment", json_schema={"type": "object"}))


def test_a_target_that_is_not_json_is_refused_naming_the_example(tmp_path: Path) -> None:
    good = json.dumps({"name": "a"})
    data = write_splits(tmp_path, {"train": good, "dev": "{name: a}", "test": good})
    spec = TaskSpec(data=data, metric="json_schema", json_schema={"type": "object"})
    with pytest.raises(TaskError, match=r"split 'dev', example 'dev-0': the target is not JSON"):
        load_task(spec)
    data = write_splits(tmp_path, dict.fromkeys(("train", "dev", "test"), good))
    task = load_task(spec.model_copy(update={"data": data}))
    assert task.metric.name == "json_schema"


# --- the built-in task -------------------------------------------------------------------------


def test_contacts_targets_are_valid_answers() -> None:
    task = load_task("contacts")
    assert BUILTINS["contacts"]["json_schema"] == CONTACT_SCHEMA
    assert task.metric == JsonSchemaMetric(CONTACT_SCHEMA)
    for split in ("train", "dev", "test"):
        for ex in task.split(split):
            target = json.loads(ex.target)
            assert task.metric.valid(target), ex.id
            assert task.metric(ex.target, ex) == 1.0
            # every value is in the message, as written there
            assert all(str(v) in ex.input for v in target.values()), ex.id
    assert find_json(task.split("dev")[0].target) is not None


@pytest.mark.model
def test_contacts_seed_scored_by_the_metric_on_the_local_model(tmp_path: Path) -> None:
    """The first seed prompt on three dev examples, through a job: every stored outcome is what
    the metric gives its answer (a failure only where no JSON was found)."""
    from tests.test_e2e_local import small_copy
    from workers.runner import optimize

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'job.db'}", executor="inprocess")
    first = BUILTINS["contacts"]["seed_prompts"][0]
    result = optimize({
        "task": {**small_copy(tmp_path, "contacts", n=3), "seed_prompts": [first]},
        "algorithm": {"name": "grips", "iterations": 1, "candidates": 1},
        "models": {"task": {"provider": "local", "workers": 1},
                   "meta": {"provider": "scripted"}},
        "evaluation": {"top_k": 1, "test": False},
        "budget": {"calls": 100},
        "seed": 1,
    }, settings=settings)
    assert result.status == "completed", result.reason
    assert result.seed is not None and result.seed.candidate.text == first
    task = load_task("contacts")
    examples = {ex.id: ex for ex in task.split("dev")[:3]}
    with Store(settings.database_url) as store:
        outcomes = store.outcomes(result.seed.candidate.id, "dev")
        asked = [c for c in store.llm_calls(result.job_id) if c.purpose == "evaluate"]
    assert len(asked) <= 12
    assert sorted(o.example_id for o in outcomes) == sorted(examples)
    for o in outcomes:
        assert 0.0 <= o.score <= 1.0
        assert o.failure in (None, "unparsed"), o
        assert (o.failure == "unparsed") == (task.metric.parse(o.prediction) is None), o
        assert o.score == task.metric(o.prediction, examples[o.example_id]), o


# --- the API -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    url = f"sqlite:///{tmp_path_factory.mktemp('json-schema') / 'evo.db'}"
    settings = Settings(database_url=url, executor="inprocess")
    with Store(url) as store, LiveApi(store, settings) as live, live.client(
            live.key("dana")) as c:
        yield c


def test_post_jobs_with_an_invalid_schema_is_422_naming_the_field(client: httpx.Client) -> None:
    r = client.post("/jobs", json={"task": {"builtin": "contacts",
                                            "json_schema": {"type": "objekt"}},
                                   "models": {"task": {"provider": "scripted"}}})
    assert r.status_code == 422, r.text
    (problem,) = r.json()["detail"]
    assert problem["field"] == "task.json_schema"
    assert problem["loc"] == ["body", "task", "json_schema"]
    assert "not a valid JSON Schema" in problem["msg"]
