from __future__ import annotations

import json
import pickle
from collections import Counter
from pathlib import Path

import pytest
from pydantic import ValidationError

from evo.llm import LLMResponse, Message
from evo.metrics import LabelAccuracy, NumericMatch
from evo.task import Example, ExampleResult, Task, TaskError, TaskSpec, builtin_tasks, load_task
from evo.tasks import BUILTINS, DATA_DIR
from evo.tasks.generate import SPLITS, build, file_name, main, stale_files, write_all

NAMES = ("sentiment", "topic", "arithmetic", "summary", "contacts")


def read(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# --- generator and bundled data ----------------------------------------------------------------


def test_generator_reproduces_committed_files(tmp_path: Path) -> None:
    written = write_all(tmp_path)
    assert len(written) == len(NAMES) * len(SPLITS)
    for path in written:
        assert path.read_bytes() == (DATA_DIR / path.name).read_bytes(), path.name
    assert stale_files(DATA_DIR) == []
    assert main(["--check"]) == 0


def test_generator_check_flags_changed_files(tmp_path: Path) -> None:
    write_all(tmp_path)
    (tmp_path / file_name("topic", "dev")).write_text("{}\n")
    assert stale_files(tmp_path) == [tmp_path / file_name("topic", "dev")]
    assert main(["--check", "--out", str(tmp_path)]) == 1


def test_generator_seed_matters() -> None:
    assert build("sentiment", seed=1) == build("sentiment", seed=1)
    assert build("sentiment", seed=1) != build("sentiment", seed=2)


@pytest.mark.parametrize("name", NAMES)
def test_split_sizes_and_disjointness(name: str) -> None:
    inputs: dict[str, set[str]] = {}
    for split, size in SPLITS.items():
        rows = read(DATA_DIR / file_name(name, split))
        assert len(rows) == size
        assert all(set(r) == {"id", "input", "target", "kind"} for r in rows)
        inputs[split] = {r["input"] for r in rows}
        assert len(inputs[split]) == size  # no duplicates inside a split
    assert not inputs["train"] & inputs["dev"]
    assert not inputs["train"] & inputs["test"]
    assert not inputs["dev"] & inputs["test"]


@pytest.mark.parametrize("name", ["sentiment", "topic"])
def test_labels_balanced(name: str) -> None:
    labels = BUILTINS[name]["labels"]
    for split in SPLITS:
        counts = Counter(r["target"] for r in read(DATA_DIR / file_name(name, split)))
        assert set(counts) == set(labels)
        assert max(counts.values()) - min(counts.values()) <= 1


def test_tricky_constructions_present() -> None:
    kinds = Counter(r["kind"] for r in read(DATA_DIR / file_name("sentiment", "test")))
    assert {"plain", "turn", "mixed", "negation", "irony", "expectation"} <= set(kinds)
    topic_kinds = Counter(r["kind"] for r in read(DATA_DIR / file_name("topic", "test")))
    assert topic_kinds["cross"] >= 50


def test_arithmetic_targets_are_whole_numbers() -> None:
    for split in SPLITS:
        rows = read(DATA_DIR / file_name("arithmetic", split))
        assert all(r["target"].isdigit() for r in rows)
        assert {r["kind"] for r in rows} == {"add", "subtract", "multiply", "two_step"}


def test_contacts_kinds_balanced() -> None:
    for split in SPLITS:
        kinds = Counter(r["kind"] for r in read(DATA_DIR / file_name("contacts", split)))
        assert set(kinds) == {"plain", "other_person", "other_city", "other_number"}
        assert max(kinds.values()) - min(kinds.values()) <= 1


# --- built-in tasks ----------------------------------------------------------------------------


def test_builtin_listing() -> None:
    listing = builtin_tasks()
    assert set(listing) == set(NAMES) | {"binpacking", "tsp"}  # prompt tasks and program problems
    assert all(desc and "\n" not in desc for desc in listing.values())


@pytest.mark.parametrize("name", NAMES)
def test_every_builtin_loads(name: str) -> None:
    task = load_task(name)
    assert task.name == name
    assert {k: len(v) for k, v in task.splits.items()} == SPLITS
    assert 2 <= len(task.seed_prompts) <= 4
    assert "{prompt}" in task.template and "{input}" in task.template
    assert task.split("dev")[0].id == f"{name}-dev-000"
    if name == "arithmetic":
        assert task.labels == () and task.metric.name == "numeric"
    elif name == "summary":
        assert task.labels == () and task.judged
    elif name == "contacts":
        assert task.labels == () and task.metric.name == "json_schema"
    else:
        assert task.labels and set(task.verbalizers) == set(task.labels)
        assert task.metric.name == "label_accuracy"


def test_unknown_builtin() -> None:
    with pytest.raises(TaskError, match=r"unknown built-in task 'poetry'.*sentiment"):
        load_task("poetry")


def test_builtin_with_overrides_keeps_its_data() -> None:
    spec = TaskSpec(builtin="sentiment", seed_prompts=["Rate it.", "Mood?"], system="Be brief.")
    task = load_task(spec)
    assert task.seed_prompts == ("Rate it.", "Mood?")
    assert task.system == "Be brief."
    assert task.split("dev") == load_task("sentiment").split("dev")


# --- spec validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs 'data'"),
        ({"builtin": "topic", "colour": "red"}, "Extra inputs are not permitted"),
        ({"data": {"train": "a.jsonl", "dev": "b.jsonl"}}, "give a path for each of"),
        ({"data": "a.jsonl", "split_fractions": {"train": 0.8, "dev": 0.3, "test": 0.1}},
         "at most 1"),
        ({"data": "a.jsonl", "template": "{prompt} only"}, "missing {input}"),
        ({"data": "a.jsonl", "template": "{prompt} {input} {label}"}, "unknown field"),
        ({"data": "a.jsonl", "metric": "bleu"}, "module:function"),
        ({"data": "a.jsonl", "labels": ["a", "a"]}, "distinct"),
        ({"data": "a.jsonl", "labels": ["a"], "verbalizers": {"b": "B"}}, "unknown labels: b"),
        ({"data": "a.jsonl", "seed_prompts": []}, "non-empty"),
    ],
)
def test_spec_validation(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TaskSpec.model_validate(fields)


# --- requests and scoring ----------------------------------------------------------------------


def make_task(**overrides: object) -> Task:
    fields: dict[str, object] = {
        "name": "t",
        "description": "test task",
        "template": "{prompt}\n\nText: {input}",
        "splits": {"train": (Example("1", "good", "pos"),), "dev": (Example("2", "bad", "neg"),),
                   "test": (Example("3", "fine", "pos"),)},
        "metric": LabelAccuracy({"pos": "Yes", "neg": "No"}),
        "labels": ("pos", "neg"),
        "verbalizers": {"pos": "Yes", "neg": "No"},
        "seed_prompts": ("Is it good?", "Judge it."),
        "max_answer_tokens": 8,
    }
    fields.update(overrides)
    return Task(**fields)  # type: ignore[arg-type]


def test_request_label_mode() -> None:
    task = make_task(system="You judge text.")
    example = task.split("dev")[0]
    req = task.request("Is it good?", example, label_scoring=True)
    assert req.messages == (Message("system", "You judge text."),
                            Message("user", "Is it good?\n\nText: bad"))
    assert req.labels == ("Yes", "No")
    assert req.max_tokens == 1
    assert req.temperature == 0.0


def test_request_generation_mode() -> None:
    task = make_task()
    req = task.request("Is it {good}?", task.split("dev")[0], label_scoring=False)
    assert req.messages == (Message("user", "Is it {good}?\n\nText: bad"),)  # braces kept
    assert req.labels == ()
    assert req.max_tokens == 8 and req.temperature == 0.0
    assert req.stop == ("\n",)
    generative = make_task(labels=(), verbalizers={}, metric=NumericMatch(), stop=None)
    # label_scoring without labels falls back to generation
    req = generative.request("p", Example("9", "1+1", "2"), label_scoring=True)
    assert req.labels == () and req.stop == ("\n\n",)


def response(text: str = "", **kw: object) -> LLMResponse:
    return LLMResponse(text=text, model="m", **kw)  # type: ignore[arg-type]


def test_score_label_mode() -> None:
    task = make_task()
    ex = Example("2", "bad", "neg")
    assert task.score(ex, response("No", label_logprobs={"Yes": -2.0, "No": -0.1})) == \
        ExampleResult(1.0, "neg")
    assert task.score(ex, response(label_logprobs={"Yes": -0.1, "No": -2.0})).score == 0.0
    assert task.score(ex, response(label_logprobs={" yes": -0.1, "no": -2.0})).prediction == "pos"
    # every label equally likely (none among the model's likely answers): no label was given
    tie = task.score(ex, response(label_logprobs={"No": -9.0, "Yes": -9.0}))
    assert tie == ExampleResult(0.0, "", "unparsed")
    assert task.score(ex, response(label_logprobs={})) == ExampleResult(0.0, "", "unparsed")


def test_score_generation_mode() -> None:
    task = make_task()
    ex = Example("2", "bad", "neg")
    assert task.score(ex, response("  No, it is not.\n")) == ExampleResult(1.0, "No, it is not.")
    assert task.score(ex, response("Yes")).score == 0.0
    assert task.score(ex, response("I cannot say")) == ExampleResult(0.0, "I cannot say",
                                                                     "unparsed")


def test_score_call_error() -> None:
    task = make_task()
    result = task.score(Example("2", "bad", "neg"), response(error="timeout after 3 retries"))
    assert result == ExampleResult(0.0, "", "call_error: timeout after 3 retries")


def test_score_numeric_and_metric_errors() -> None:
    task = load_task("arithmetic")
    ex = Example("q", "2 + 3?", "5")
    assert task.score(ex, response("2 + 3 = 5")).score == 1.0
    assert task.score(ex, response("2 + 3 = 6")).score == 0.0
    assert task.score(ex, response("five")).failure == "unparsed"

    class Broken:
        name = "broken"

        def __call__(self, prediction: str, example: Example) -> float:
            raise RuntimeError("boom")

    broken = make_task(labels=(), verbalizers={}, metric=Broken())
    result = broken.score(ex, response("anything"))
    assert result.score == 0.0 and result.failure == "metric_error: RuntimeError: boom"


def test_unknown_split() -> None:
    with pytest.raises(TaskError, match="no split 'validation'"):
        make_task().split("validation")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"template": "{prompt}"}, "missing {input}"),
        ({"template": "{prompt} {input} {"}, "template"),
        ({"verbalizers": {"pos": "Yes", "neg": "yes"}}, "distinct"),
        ({"verbalizers": {"pos": "Yes"}}, "each label"),
        ({"seed_prompts": ()}, "seed prompt"),
        ({"max_answer_tokens": 0}, "max_answer_tokens"),
        ({"splits": {"dev": (Example("1", "x", "maybe"),)}}, "not one of the labels"),
        ({"splits": {"dev": (Example("1", "x", "pos"), Example("1", "y", "neg"))}}, "duplicate"),
    ],
)
def test_task_validation(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(TaskError, match=message):
        make_task(**overrides)


def test_task_pickles() -> None:
    task = load_task("topic")
    copy = pickle.loads(pickle.dumps(task))
    assert copy == task
    ex = task.split("dev")[0]
    assert copy.score(ex, response(task.verbalizers[ex.target])).score == 1.0


def test_custom_task_defaults(tmp_path: Path) -> None:
    for split in ("train", "dev", "test"):
        (tmp_path / f"{split}.jsonl").write_text(
            json.dumps({"q": f"{split}: capital of France?", "a": "Paris"}) + "\n")
    spec = TaskSpec(name="capitals", data={s: f"{s}.jsonl" for s in ("train", "dev", "test")},
                    columns={"input": "q", "target": "a"}, metric="contains")
    task = load_task(spec, base_dir=tmp_path)
    assert task.labels == ()
    assert len(task.seed_prompts) >= 2
    assert task.render(task.seed_prompts[0], task.split("dev")[0]).endswith("dev: capital of "
                                                                             "France?")
    assert task.score(task.split("dev")[0], response("It is Paris.")).score == 1.0
