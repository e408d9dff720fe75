from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from evo.loaders import (
    HF_INSTALL_HINT,
    detect_format,
    load_splits,
    read_csv,
    read_jsonl,
    split_examples,
    to_examples,
)
from evo.task import Example, TaskError, TaskSpec, load_task

HAVE_DATASETS = importlib.util.find_spec("datasets") is not None
FRACTIONS = {"train": 0.5, "dev": 0.25, "test": 0.25}


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_with_column_mapping(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [
        {"uid": "a", "text": "good film", "label": "pos", "extra": 1},
        {"uid": "b", "text": "bad film", "label": "neg"},
        {"uid": "c", "text": "two plus two", "label": 4},
    ])
    rows = read_jsonl(path)
    assert rows[1].where == f"{path}:2"
    examples = to_examples(rows, input_col="text", target_col="label", id_col="uid")
    assert examples == (
        Example("a", "good film", "pos"),
        Example("b", "bad film", "neg"),
        Example("c", "two plus two", "4"),  # numbers become text
    )


def test_jsonl_skips_blank_lines_and_numbers_default_ids(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"input": "x", "target": "y"}\n\n{"input": "z", "target": "w"}\n')
    examples = to_examples(read_jsonl(path), id_prefix="dev")
    assert [e.id for e in examples] == ["dev-0", "dev-1"]


def test_broken_jsonl_line_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"input": "a", "target": "b"}\n{"input": "c", "target": "d"}\n'
                    '{"input": "e", "target": }\n')
    with pytest.raises(TaskError) as err:
        read_jsonl(path)
    assert f"{path}:3:" in str(err.value)
    assert "column 26" in str(err.value)


@pytest.mark.parametrize(("line", "message"), [
    ('{"input": "a\tb", "target": "x"}',
     "invalid JSON at column 13: a tab inside a text value; write it escaped, as \\t"),
    ('{"input": "a\x01", "target": "x"}',
     "invalid JSON at column 13: the control character U+0001 inside a text value; write it "
     "escaped, as \\u0001"),
    ('{"input": "a, "target": "x"}',
     "invalid JSON at column 16: expected ',' or the end of the object or list, found 't'"),
    ('{"input": "a", "target": "x',
     "invalid JSON at column 26: a text value that starts here has no closing double quote"),
    ('{"input": "a", "target": "x"',
     "invalid JSON at column 29: expected ',' or the end of the object or list, found the end "
     "of the line"),
    ("{input: 1}", "invalid JSON at column 2: expected a key in double quotes, found 'i'"),
    ('{"input": "a\\q"}',
     "invalid JSON at column 13: unknown escape \\q in a text value (a backslash itself is "
     "written \\\\)"),
    ('{"input": "a"} {"b": 1}',
     "invalid JSON at column 16: more after the end of the object (one JSON object a line), "
     "found '{'"),
])
def test_a_broken_jsonl_line_says_all_of_what_is_wrong(tmp_path: Path, line: str,
                                                       message: str) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"input": "fine", "target": "y"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(TaskError) as err:
        read_jsonl(path)
    assert str(err.value) == f"{path}:2: {message}"


def test_jsonl_line_that_is_not_an_object(tmp_path: Path) -> None:
    path = tmp_path / "list.jsonl"
    path.write_text('["input", "target"]\n')
    with pytest.raises(TaskError, match=r"list.jsonl:1: expected a JSON object, got list"):
        read_jsonl(path)


def test_row_missing_a_mapped_field(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "ok", "label": "x"}, {"text": "no label"}])
    with pytest.raises(TaskError) as err:
        to_examples(read_jsonl(path), input_col="text", target_col="label")
    assert f"{path}:2: missing field 'label' (fields: text)" in str(err.value)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"input": "", "target": "a"}, "field 'input' is empty"),
        ({"input": "x", "target": None}, "missing field 'target'"),
        ({"input": ["x"], "target": "a"}, "must be text or a number, got list"),
        ({"input": "x", "target": "maybe"}, "target 'maybe' is not one of the labels"),
    ],
)
def test_bad_rows(tmp_path: Path, row: dict[str, object], message: str) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"input": "fine", "target": "a"}, row])
    with pytest.raises(TaskError, match=message) as err:
        to_examples(read_jsonl(path), labels=["a", "b"])
    assert str(err.value).startswith(f"{path}:2:")


def test_duplicate_ids(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "d.jsonl", [{"id": 1, "input": "x", "target": "a"},
                                              {"id": 1, "input": "y", "target": "a"}])
    with pytest.raises(TaskError, match=r"d.jsonl:2: duplicate id '1' \(first at .*d.jsonl:1\)"):
        to_examples(read_jsonl(path), id_col="id")


def test_csv_with_column_mapping(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text('\ufeffreview,stars,key\n"great, really",pos,r1\n"line one\nline two",neg,r2\n'
                    "plain,pos,r3\n", encoding="utf-8")
    rows = read_csv(path, ["review", "stars"])
    assert [r.where for r in rows] == [f"{path}:2", f"{path}:3", f"{path}:5"]
    examples = to_examples(rows, input_col="review", target_col="stars", id_col="key")
    assert examples[0] == Example("r1", "great, really", "pos")
    assert examples[1].input == "line one\nline two"


def test_tsv(tmp_path: Path) -> None:
    path = tmp_path / "d.tsv"
    path.write_text("input\ttarget\nhello, world\tgreeting\n")
    assert detect_format(path) == "csv"
    assert to_examples(read_csv(path))[0] == Example("row-0", "hello, world", "greeting")


def test_csv_missing_column_lists_existing_ones(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("sentence,label\nhi,x\n")
    with pytest.raises(TaskError) as err:
        read_csv(path, ["text", "label"])
    message = str(err.value)
    assert str(path) in message
    assert "no column 'text'" in message
    assert "columns: sentence, label" in message


def test_csv_short_and_long_rows(tmp_path: Path) -> None:
    short = tmp_path / "short.csv"
    short.write_text("input,target\na,b\nonly-input\n")
    with pytest.raises(TaskError, match=r"short.csv:3: missing field 'target'"):
        to_examples(read_csv(short))
    long = tmp_path / "long.csv"
    long.write_text("input,target\na,b,c\n")
    with pytest.raises(TaskError, match=r"long.csv:2: more fields than the header"):
        read_csv(long)


def test_empty_csv(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(TaskError, match="expected a header row"):
        read_csv(path)


def test_detect_format(tmp_path: Path) -> None:
    assert detect_format(tmp_path / "a.jsonl") == "jsonl"
    assert detect_format(tmp_path / "a.CSV") == "csv"
    assert detect_format(tmp_path) == "hf"
    with pytest.raises(TaskError, match="cannot tell the format"):
        detect_format(tmp_path / "a.parquet")


def test_split_examples_is_seeded_and_proportional() -> None:
    examples = [Example(str(i), f"x{i}", "t") for i in range(40)]
    a = split_examples(examples, FRACTIONS, seed=3)
    assert {k: len(v) for k, v in a.items()} == {"train": 20, "dev": 10, "test": 10}
    assert a == split_examples(examples, FRACTIONS, seed=3)
    assert a != split_examples(examples, FRACTIONS, seed=4)
    ids = [e.id for part in a.values() for e in part]
    assert sorted(ids) == sorted(e.id for e in examples)


def test_load_splits_per_split_files_relative_to_base_dir(tmp_path: Path) -> None:
    for split in ("train", "dev", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"input": f"{split} q", "target": "a"}])
    splits = load_splits({s: f"{s}.jsonl" for s in ("train", "dev", "test")},
                         fractions=FRACTIONS, base_dir=tmp_path)
    assert splits["dev"] == (Example("dev-0", "dev q", "a"),)


def test_load_splits_rejects_ids_shared_between_splits(tmp_path: Path) -> None:
    for split in ("train", "dev", "test"):
        write_jsonl(tmp_path / f"{split}.jsonl", [{"id": "same", "input": "q", "target": "a"}])
    with pytest.raises(TaskError, match="'same' is in both"):
        load_splits({s: str(tmp_path / f"{s}.jsonl") for s in ("train", "dev", "test")},
                    id_col="id", fractions=FRACTIONS)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TaskError, match="no such file"):
        load_splits("nope.jsonl", fractions=FRACTIONS, base_dir=tmp_path)


def test_task_from_one_csv_file(tmp_path: Path) -> None:
    rows = "".join(f"item {i},{'yes' if i % 2 else 'no'}\n" for i in range(20))
    (tmp_path / "data.csv").write_text("question,answer\n" + rows)
    spec = TaskSpec(data="data.csv", columns={"input": "question", "target": "answer"},
                    split_fractions=FRACTIONS, split_seed=1, metric="label_accuracy")
    task = load_task(spec, base_dir=tmp_path)
    assert task.name == "data"
    assert task.labels == ("no", "yes")  # inferred, sorted
    assert {k: len(v) for k, v in task.splits.items()} == {"train": 10, "dev": 5, "test": 5}


# --- Hugging Face datasets: a real round trip when the extra is installed, else the hint --------


def test_hf_loader(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    if not HAVE_DATASETS:
        folder.mkdir()
        spec = TaskSpec(data=str(folder), format="hf")
        with pytest.raises(TaskError) as err:
            load_task(spec)
        assert HF_INSTALL_HINT in str(err.value)
        return
    import datasets

    features = datasets.Features({"text": datasets.Value("string"),
                                  "label": datasets.ClassLabel(names=["neg", "pos"])})
    parts = {
        name: datasets.Dataset.from_dict(
            {"text": [f"{name} {i}" for i in range(4)], "label": [0, 1, 1, 0]},
            features=features)
        for name in ("train", "validation", "test")
    }
    datasets.DatasetDict(parts).save_to_disk(str(folder))
    task = load_task(TaskSpec(data=str(folder), columns={"input": "text", "target": "label"},
                              labels=["neg", "pos"]))
    assert task.split("dev")[1] == Example("dev-1", "validation 1", "pos")
    assert len(task.split("train")) == 4
    single = tmp_path / "single"
    parts["train"].save_to_disk(str(single))
    with pytest.raises(TaskError, match="no column 'sentence'"):
        load_task(TaskSpec(data=str(single), columns={"input": "sentence", "target": "label"}))
