"""Reading specs: overrides, and errors that name the field and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

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
