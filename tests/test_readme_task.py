"""README's example of a task whose examples are all in one file loads as it says: the rows are
split by ``split_fractions``, the same way for the same ``split_seed``."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from evo.spec_io import load_spec
from evo.task import load_task

README = Path(__file__).resolve().parent.parent / "README.md"


def single_file_example() -> dict:
    """The YAML block that follows README's sentence on ``split_fractions``."""
    text = README.read_text()
    after = text[text.index("`split_fractions` says"):]
    block = re.search(r"```yaml\n(.*?)```", after, re.S)
    assert block is not None, "README shows no YAML for a task in one file"
    return yaml.safe_load(block.group(1))


def test_the_readme_single_file_task_loads_and_splits_by_its_fractions(tmp_path: Path) -> None:
    example = single_file_example()
    task_part = example["task"]
    assert isinstance(task_part["data"], str) and "split_fractions" in task_part
    labels = task_part["labels"]
    rows = [(f"ticket number {i} about {labels[i % 3]}", labels[i % 3]) for i in range(50)]
    (tmp_path / task_part["data"]).write_text(
        "text,label\n" + "".join(f"{text},{label}\n" for text, label in rows))
    spec_file = tmp_path / "job.yaml"
    spec_file.write_text(yaml.safe_dump(example))

    task = load_task(load_spec(spec_file).task, base_dir=tmp_path)
    sizes = {split: len(task.split(split)) for split in ("train", "dev", "test")}
    fractions = task_part["split_fractions"]
    assert sizes == {split: round(50 * share) for split, share in fractions.items()}
    assert task.labels == tuple(labels) and task.name == task_part["name"]
    everything = [ex.input for split in ("train", "dev", "test") for ex in task.split(split)]
    assert sorted(everything) == sorted(text for text, _ in rows)  # each row in one split
    again = load_task(load_spec(spec_file).task, base_dir=tmp_path)
    assert [ex.input for ex in again.split("dev")] == [ex.input for ex in task.split("dev")]
