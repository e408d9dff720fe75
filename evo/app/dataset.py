"""The result of a data-set job (``Algorithm.result == "dataset"``, e.g. Evol-Instruct): its items
with their responses and lineage, and per round the items kept and eliminated (by reason); written
as JSONL or as a Hugging Face ``datasets`` folder (``save_to_disk``).

Everything comes from the job's stored candidates: a kept item carries its response in
``meta["response"]``, an eliminated attempt its reason in ``meta["eliminated"]``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from evo.candidate import Candidate
from evo.loaders import HF_INSTALL_HINT

FORMATS = ("jsonl", "hf")


class NotADataSet(LookupError):
    """The job's algorithm hands back prompts, not a data set."""

    def __init__(self, job_id: str, algorithm: str) -> None:
        super().__init__(f"job {job_id} ran {algorithm}, whose result is its best prompts, not a "
                         f"data set: export it with --format json, yaml, md or txt")


class HFMissing(RuntimeError):
    """``datasets`` (the optional extra ``hf``) is not installed."""

    def __init__(self) -> None:
        super().__init__("writing a Hugging Face dataset needs the 'datasets' package: "
                         f"{HF_INSTALL_HINT}")


@dataclass(frozen=True)
class Item:
    """One row of the data set: an instruction, its response, and where it came from."""

    id: str
    instruction: str
    response: str
    round: int
    evolution: str  # the operator that made it ("seed" for a seed instruction)
    parent_id: str | None  # the instruction it evolved from
    seed_id: str  # the seed instruction its line of evolutions started from


@dataclass(frozen=True)
class Eliminated:
    """A failed evolution: what it wrote, and why it was dropped."""

    id: str
    instruction: str
    round: int
    evolution: str
    parent_id: str | None
    reason: str
    response: str | None = None


@dataclass(frozen=True)
class Round:
    round: int
    kept: int
    eliminated: int
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DataSet:
    items: list[Item]
    eliminated: list[Eliminated]
    rounds: list[Round]

    def rows(self) -> list[dict[str, Any]]:
        return [asdict(item) for item in self.items]


def is_dataset_algorithm(name: str) -> bool:
    from evo.algorithms import REGISTRY

    cls = REGISTRY.get(name)
    return cls is not None and cls.result == "dataset"


def dataset_of(candidates: Iterable[Candidate]) -> DataSet:
    """The data set made of a job's candidates (in the order they were made)."""
    items: list[Item] = []
    dropped: list[Eliminated] = []
    root: dict[str, str] = {}  # each instruction's seed, through its line of parents
    for c in candidates:
        if c.kind != "instruction":
            continue
        parent = c.parents[0] if c.parents else None
        root[c.id] = root.get(parent, parent) if parent else c.id
        reason = c.meta.get("eliminated")
        if reason is not None:
            dropped.append(Eliminated(c.id, c.text, c.generation, c.operator, parent, str(reason),
                                      c.meta.get("response")))
        else:
            items.append(Item(c.id, c.text, str(c.meta.get("response", "")), c.generation,
                              c.operator, parent, root[c.id]))
    kept = Counter(i.round for i in items)
    gone = Counter(e.round for e in dropped)
    rounds = [
        Round(t, kept[t], gone[t],
              dict(sorted(Counter(e.reason for e in dropped if e.round == t).items())))
        for t in sorted(set(kept) | set(gone))
    ]
    return DataSet(items, dropped, rounds)


def job_dataset(store: Any, job: Any) -> DataSet:
    """The stored data set of ``job``; ``NotADataSet`` for a job that searched for prompts."""
    if not is_dataset_algorithm(job.algorithm):
        raise NotADataSet(job.id, job.algorithm)
    return dataset_of(store.candidates(job.id))


def to_jsonl(data: DataSet) -> str:
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in data.rows())


def save_hf(data: DataSet, folder: Path) -> None:
    """The items as a ``datasets.Dataset`` saved with ``save_to_disk`` (``load_from_disk``
    reads it back); ``HFMissing`` when ``datasets`` is not installed."""
    try:
        import datasets
    except ImportError:
        raise HFMissing() from None
    columns = {name: [row[name] for row in data.rows()] for name in Item.__dataclass_fields__}
    features = datasets.Features({
        name: datasets.Value("int64" if name == "round" else "string") for name in columns
    })
    datasets.Dataset.from_dict(columns, features=features).save_to_disk(str(folder))
