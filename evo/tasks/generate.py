"""Writes the built-in task data: ``python -m evo.tasks.generate [--out DIR] [--check]``.

Every example is composed from small vocabularies (``generate_sentiment``, ``generate_topic``,
``generate_arithmetic``, ``generate_contacts``) with a seeded ``random.Random``, so the files
under ``evo/tasks/data/`` can be rebuilt byte for byte; this module balances them into splits and
writes the files. The sentences are meant to trip up keyword matching: sentiment reviews turn
halfway, negate or praise sarcastically, topic sentences borrow words from the other topics, and
contact messages name a second person, city or number.
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from random import Random

from evo.tasks.generate_arithmetic import ARITH_KINDS, arithmetic_records
from evo.tasks.generate_common import Record
from evo.tasks.generate_contacts import CONTACT_KINDS, contacts_records
from evo.tasks.generate_sentiment import sentiment_records
from evo.tasks.generate_summary import SUMMARY_KINDS, summary_records
from evo.tasks.generate_topic import TOPICS, topic_records

SEED = 2024
SPLITS: dict[str, int] = {"train": 64, "dev": 100, "test": 200}
DATA_DIR = Path(__file__).resolve().parent / "data"

GENERATORS: dict[str, Callable[[Random], Iterator[Record]]] = {
    "sentiment": sentiment_records,
    "topic": topic_records,
    "arithmetic": arithmetic_records,
    "summary": summary_records,
    "contacts": contacts_records,
}
# Classification data is balanced per split on the target; the others are stratified on the kind.
_STRATIFY_ON_TARGET = {"sentiment": True, "topic": True, "arithmetic": False, "contacts": False}
_STRATIFY_ON_TARGET["summary"] = False  # free-text references: stratified on the paragraph kind


def _shares(total: int, weights: dict[str, int]) -> dict[str, int]:
    """Split ``total`` in proportion to ``weights`` (largest remainder, ties by key order)."""
    whole = sum(weights.values())
    exact = {k: total * w / whole for k, w in weights.items()}
    counts = {k: int(v) for k, v in exact.items()}
    rest = sorted(weights, key=lambda k: -(exact[k] - counts[k]))
    for k in rest[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def build(name: str, seed: int = SEED) -> dict[str, list[dict[str, str]]]:
    """The records of each split of one task, deterministic in ``(name, seed)``."""
    rng = Random(seed + zlib.crc32(name.encode()))
    on_target = _STRATIFY_ON_TARGET[name]
    pools: dict[str, list[Record]] = {}
    seen: set[str] = set()
    weights: dict[str, int] = {}
    if name == "arithmetic":
        for kind in ARITH_KINDS:
            weights[kind] = weights.get(kind, 0) + 1
    elif name == "summary":
        weights = dict.fromkeys(SUMMARY_KINDS, 1)
    elif name == "contacts":
        weights = dict.fromkeys(CONTACT_KINDS, 1)
    else:
        weights = dict.fromkeys(TOPICS if name == "topic" else ("positive", "negative"), 1)
    wanted = {s: _shares(n, weights) for s, n in SPLITS.items()}
    need = {k: sum(w[k] for w in wanted.values()) for k in weights}
    stream = GENERATORS[name](rng)
    for _ in range(200_000):
        if all(len(pools.get(k, [])) >= need[k] for k in need):
            break
        text, target, kind = next(stream)
        key = target if on_target else kind
        if text in seen or len(pools.setdefault(key, [])) >= need[key]:
            continue
        seen.add(text)  # unique inputs across all splits keep train, dev and test disjoint
        pools[key].append((text, target, kind))
    else:
        raise RuntimeError(f"{name}: vocabulary too small for the requested split sizes")
    out: dict[str, list[dict[str, str]]] = {}
    for split, counts in wanted.items():
        rows: list[Record] = []
        for key, count in counts.items():
            rows.extend(pools[key][:count])
            pools[key] = pools[key][count:]
        rng.shuffle(rows)
        out[split] = [
            {"id": f"{name}-{split}-{i:03d}", "input": text, "target": target, "kind": kind}
            for i, (text, target, kind) in enumerate(rows)
        ]
    return out


def render(records: list[dict[str, str]]) -> bytes:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode("utf-8")


def file_name(name: str, split: str) -> str:
    return f"{name}.{split}.jsonl"


def write_all(out_dir: Path, seed: int = SEED) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name in GENERATORS:
        for split, records in build(name, seed).items():
            path = out_dir / file_name(name, split)
            path.write_bytes(render(records))
            written.append(path)
    return written


def stale_files(out_dir: Path, seed: int = SEED) -> list[Path]:
    """Files under ``out_dir`` that differ from what this generator writes (or are missing)."""
    stale = []
    for name in GENERATORS:
        for split, records in build(name, seed).items():
            path = out_dir / file_name(name, split)
            if not path.is_file() or path.read_bytes() != render(records):
                stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the built-in task data files.")
    parser.add_argument("--out", type=Path, default=DATA_DIR, help="output directory")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--check", action="store_true", help="only report files that differ")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files(args.out, args.seed)
        for path in stale:
            print(f"out of date: {path}")
        return 1 if stale else 0
    for path in write_all(args.out, args.seed):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
