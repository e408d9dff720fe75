"""The built-in ``summary`` task: reproducible data, faithful references, a judged task."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from random import Random

from evo.rubric import Rubric
from evo.task import load_task
from evo.tasks import DATA_DIR
from evo.tasks.generate import SPLITS, file_name, write_all
from evo.tasks.generate_summary import _KINDS as PARAGRAPHS
from evo.tasks.generate_summary import SUMMARY_KINDS, summary_records

# Numbers (4,500 / 2-0 / $140) and capitalized words; "A", "An" and "The" open sentences.
_FACT = re.compile(r"\d[\d,]*\d|\d|[A-Z][a-z]+")
_SENTENCE_OPENERS = {"A", "An", "The"}
_NUMBER = re.compile(r"\d[\d,]*\d|\d")


def rows(split: str) -> list[dict[str, str]]:
    path = DATA_DIR / file_name("summary", split)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def facts(text: str) -> set[str]:
    return {w for w in _FACT.findall(text) if w not in _SENTENCE_OPENERS}


def test_the_shipped_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    write_all(tmp_path)
    for split in SPLITS:
        name = file_name("summary", split)
        assert (tmp_path / name).read_bytes() == (DATA_DIR / name).read_bytes(), name


def test_splits_are_full_disjoint_and_every_kind_is_in_each() -> None:
    ids: list[str] = []
    inputs: dict[str, set[str]] = {}
    for split, size in SPLITS.items():
        data = rows(split)
        assert len(data) == size
        ids += [r["id"] for r in data]
        inputs[split] = {r["input"] for r in data}
        assert len(inputs[split]) == size
        kinds = Counter(r["kind"] for r in data)
        assert set(kinds) == set(SUMMARY_KINDS)
        assert max(kinds.values()) - min(kinds.values()) <= 1
    assert len(set(ids)) == len(ids)
    assert not inputs["train"] & inputs["dev"]
    assert not inputs["train"] & inputs["test"]
    assert not inputs["dev"] & inputs["test"]


def test_every_reference_states_only_facts_of_its_input() -> None:
    for split in SPLITS:
        for r in rows(split):
            words = set(re.findall(r"\d[\d,]*\d|\d|\w+", r["input"]))
            missing = facts(r["target"]) - words
            assert not missing, (r["id"], missing)


def test_a_reference_is_one_sentence_shorter_than_its_input() -> None:
    for split in SPLITS:
        for r in rows(split):
            target, text = r["target"], r["input"]
            assert target.endswith(".") and target.count(". ") == 0, r["id"]
            assert 3 <= text.count(". ") + 1 <= 4, r["id"]
            assert len(target.split()) < len(text.split()), r["id"]


def test_a_number_only_the_side_detail_gives_stays_out_of_the_reference() -> None:
    # Side details carry numbers of their own (a founding year, a crowd) to tempt a summary.
    rng, tempting = Random(0), 0
    for _ in range(300):
        for make in PARAGRAPHS.values():
            core, side, reference = make(rng)
            own = set(_NUMBER.findall(side)) - set(_NUMBER.findall(" ".join(core)))
            tempting += bool(own)
            assert not own & set(_NUMBER.findall(reference)), (side, reference)
    assert tempting > 300


def test_the_stream_is_deterministic_in_its_seed() -> None:
    def first(seed: int) -> list[tuple[str, str, str]]:
        stream = summary_records(Random(seed))
        return [next(stream) for _ in range(20)]

    assert first(7) == first(7)
    assert first(7) != first(8)


def test_summary_loads_as_a_judged_task_with_its_rubric() -> None:
    task = load_task("summary")
    assert task.judged and task.metric.name == "judge"
    assert task.labels == ()
    rubric = task.metric.rubric
    assert isinstance(rubric, Rubric)
    assert rubric.mode == "pointwise" and rubric.reference
    weights = {c.name: c.weight for c in rubric.criteria}
    assert set(weights) == {"faithfulness", "coverage", "brevity"}
    assert max(weights, key=weights.__getitem__) == "faithfulness"
    assert all(c.scale == 5 for c in rubric.criteria)
    assert len(task.seed_prompts) == 3 and len(set(task.seed_prompts)) == 3
    assert "{prompt}" in task.template and "{input}" in task.template
    assert task.max_answer_tokens == 60
    example = task.split("dev")[0]
    assert example.id == "summary-dev-000" and example.target.endswith(".")
