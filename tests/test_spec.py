"""Reading specs: overrides, and errors that name the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo.algorithms import REGISTRY
from evo.spec_io import SpecError, apply_overrides, load_spec, parse_spec, parse_text


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return path


def test_overrides_set_nested_values_typed() -> None:
    data = apply_overrides({"task": "sentiment", "algorithm": {"name": "evoprompt-ga"}},
                           ["algorithm.population=8", "budget.calls=900",
                            "models.task.provider=scripted"])
    spec = parse_spec(data)
    assert spec.algorithm.params["population"] == 8
    assert spec.budget.calls == 900
    assert spec.models.task.provider == "scripted"


def test_wrong_type_names_field_and_line(tmp_path: Path) -> None:
    path = write(tmp_path,
                 "task: sentiment\nalgorithm:\n  name: evoprompt-ga\n  population: many\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (error,) = info.value.errors
    assert error.path == "algorithm.population"
    assert error.line == 4
    assert "integer" in error.message
    assert "spec.yaml" in str(info.value) and "line 4" in str(info.value)


def test_unknown_algorithm_lists_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "task: sentiment\nalgorithm:\n  name: simulated-annealing\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (error,) = info.value.errors
    assert error.path == "algorithm.name" and error.line == 3
    assert "evoprompt-ga" in error.message and "opro" in error.message


def test_unknown_field_and_bad_budget(tmp_path: Path) -> None:
    path = write(tmp_path, "task: sentiment\nbudget:\n  calls: -5\nseeed: 3\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    paths = {e.path: e.line for e in info.value.errors}
    assert paths == {"budget.calls": 3, "seeed": 4}


def test_template_override_checked() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"task": "sentiment", "algorithm": {
            "name": "opro", "templates": {"meta": "{task} {nonsense}", "bogus": "x"}}})
    text = str(info.value)
    assert "nonsense" in text and "bogus" in text


def test_broken_yaml_reports_line(tmp_path: Path) -> None:
    path = write(tmp_path, "task: sentiment\nalgorithm: [unclosed\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert info.value.errors[0].line is not None


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec file"):
        load_spec(tmp_path / "nope.yaml")


def test_inline_key_is_never_serialized() -> None:
    spec = parse_spec({"task": "sentiment", "models": {"task": {
        "provider": "openai", "model": "m", "api_key": "sk-planted-SECRET-1"}}})
    assert spec.models.task.api_key is not None
    assert "SECRET" not in str(spec.public_dict())
    assert "SECRET" not in spec.model_dump_json()


def test_json_spec_parses() -> None:
    data, lines = parse_text('{"task": "topic", "seed": 3}')
    assert parse_spec(data, lines=lines).seed == 3


def test_unknown_task_names_builtins(tmp_path: Path) -> None:
    path = write(tmp_path, "seed: 1\ntask: sentimnt\n")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    (error,) = info.value.errors
    assert error.path == "task" and error.line == 2 and "sentiment" in error.message


def test_errors_of_a_task_mapping_name_its_fields_only() -> None:
    from evo.spec_io import SpecError, parse_spec

    with pytest.raises(SpecError) as err:
        parse_spec({"task": {"name": "x", "data": {"dev": "d.jsonl"}, "template": "{input}"}})
    locs = [e.loc for e in err.value.errors]
    assert locs == [("task", "data"), ("task", "template")]  # not "task: a valid string"
    assert not any("function-after" in str(p) for loc in locs for p in loc)


# --- every problem at once, with the closest field, the line or the --set item ----------------

MANY_MISTAKES = """\
task: topc
algorithm:
  name: evoprompt-ga
  populaton: 6
  generations: lots
models:
  task:
    concurency: 4
budget:
  calls: -1
evaluation:
  top_k: 0
seeed: 3
"""


def test_every_problem_of_a_spec_is_reported_at_once_in_file_order(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_spec(write(tmp_path, MANY_MISTAKES))
    found = [(e.path, e.line, e.message) for e in info.value.errors]
    assert [(path, line) for path, line, _ in found] == [
        ("task", 1), ("algorithm.populaton", 4), ("algorithm.generations", 5),
        ("models.task.concurency", 8), ("budget.calls", 10), ("evaluation.top_k", 12),
        ("seeed", 13),
    ]
    messages = dict((path, message) for path, _, message in found)
    assert messages["task"].startswith("unknown task 'topc' (did you mean topic?); built-in")
    assert messages["algorithm.populaton"] == "unknown field; did you mean population?"
    assert messages["models.task.concurency"] == "unknown field; did you mean concurrency?"
    assert messages["seeed"] == "unknown field; did you mean seed?"
    assert "valid integer" in messages["algorithm.generations"]
    assert "greater than or equal to 1" in messages["budget.calls"]
    # one problem a line, each with its field and line
    lines = str(info.value).splitlines()
    assert lines[0] == f"invalid job spec in {tmp_path / 'spec.yaml'}:"
    assert lines[2] == "  - algorithm.populaton (line 4): unknown field; did you mean population?"
    assert len(lines) == 1 + len(found)


def test_an_unknown_field_far_from_any_lists_the_known_ones() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"task": "sentiment", "budget": {"dollars": 3},
                    "algorithm": {"name": "opro", "xyz": 1}})
    messages = {e.path: e.message for e in info.value.errors}
    assert messages == {
        "budget.dollars": "unknown field; known fields: calls, tokens, seconds, usd",
        "algorithm.xyz": "unknown field; known fields: steps, samples_per_step, shown, "
                         "exemplars, temperature, patience, train_subset, split, name, templates",
    }


def test_a_task_definition_and_the_algorithm_are_checked_together() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"task": {"data": {"train": 5, "dev": "d", "test": "t"}, "colums": {},
                             "template": "{prompt} only"},
                    "algorithm": {"name": "opra"}})
    messages = {e.path: e.message for e in info.value.errors}
    assert messages == {
        "task.data.train": "Input should be a valid string",  # not "task.data: a valid string"
        "task.colums": "unknown field; did you mean columns?",
        "task.template": "missing {input}",  # no "Value error, template: " before it
        "algorithm.name": f"unknown algorithm 'opra'; known: {', '.join(sorted(REGISTRY))}; "
                          "did you mean opro?",
    }


def test_an_algorithm_for_another_kind_of_task_is_named_only_for_a_known_task() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"task": "sentiment", "algorithm": {"name": "eoh"}})
    (error,) = info.value.errors
    assert error.path == "algorithm.name" and "task 'sentiment' is a prompt task" in error.message
    with pytest.raises(SpecError) as info:
        parse_spec({"task": "sentimnt", "algorithm": {"name": "eoh"}})
    assert [e.path for e in info.value.errors] == ["task"]  # the name, not a kind it cannot know


def test_a_value_given_with_set_is_blamed_on_the_set_item(tmp_path: Path) -> None:
    path = write(tmp_path, "task: sentiment\nalgorithm:\n  name: evoprompt-ga\n  population: 4\n"
                           "budget:\n  calls: 900\n")
    with pytest.raises(SpecError) as info:
        load_spec(path, ["budget.calls=-1", "algorithm.populaton=3", "models.task.api_key=[1]",
                         "task.template={prompt}"])
    errors = {e.path: e for e in info.value.errors}
    calls = errors["budget.calls"]
    assert (calls.line, calls.origin) == (None, "budget.calls=-1")
    assert str(calls) == ("budget.calls (from --set budget.calls=-1): Input should be greater "
                          "than or equal to 1")
    assert "line" not in str(info.value)  # no line of the file is blamed for a --set value
    assert str(errors["algorithm.populaton"]) == (
        "algorithm.populaton (from --set algorithm.populaton=3): unknown field; did you mean "
        "population?")
    # an inline key is not repeated back
    assert errors["models.task.api_key"].origin == "models.task.api_key=…"
    # a value YAML reads as a mapping says how to give it as text
    assert errors["task.template"].message == ("Input should be a valid string; --set reads the "
                                               "value as YAML: quote it to give it as text")
    # a field the file has and no --set touched keeps its line
    with pytest.raises(SpecError) as info:
        load_spec(path, ["algorithm.name=opro"])
    (error,) = info.value.errors
    assert (error.path, error.line, error.origin) == ("algorithm.population", 4, None)


def test_the_last_set_of_a_path_is_the_one_blamed() -> None:
    from evo.spec_io import override_origins

    assert override_origins(["seed=1", "budget.calls=5", "seed=x"]) == {
        ("budget", "calls"): "budget.calls=5", ("seed",): "seed=x"}
    with pytest.raises(SpecError, match="--set needs key=value"):
        override_origins(["seed"])


def test_pydantic_prefixes_never_reach_a_message() -> None:
    from evo.spec_messages import user_message

    assert user_message({"msg": "Value error, labels must be distinct", "loc": ("labels",)}) == (
        "labels must be distinct")
    assert user_message({"msg": "Assertion failed, no", "loc": ()}) == "no"
    with pytest.raises(SpecError) as info:
        parse_spec({"task": {"data": "a.jsonl", "labels": ["a", "a"], "metric": "bleu"}})
    text = str(info.value)
    assert "Value error" not in text
    assert "task.labels: labels must be a non-empty list of distinct names" in text
    assert "task.metric: use one of" in text


def test_final_seeds_must_be_at_least_one() -> None:
    assert parse_spec({"task": "sentiment"}).evaluation.final_seeds is None
    assert parse_spec({"task": "sentiment",
                       "evaluation": {"final_seeds": 2}}).evaluation.final_seeds == 2
    with pytest.raises(SpecError) as info:
        parse_spec({"task": "sentiment", "evaluation": {"final_seeds": 0}})
    assert [e.path for e in info.value.errors] == ["evaluation.final_seeds"]
