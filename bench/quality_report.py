"""The quality benchmark's report: per (task, method, budget) cell the winners' test scores over
seeds, and how they compare with the best seed prompt example by example.

The comparison is paired: every winner and the best seed prompt (best full-dev score) were scored
on the same test examples. A cell's interval is the paired bootstrap interval (examples
resampled, ``evo.significance``) of the mean over its runs of winner − seed per example: how much
better than the seed this method's winners are on these test examples, seeds averaged. "shown"
counts the runs whose own winner is shown better than the seed at 95% (McNemar's exact test for
0/1 scores, the bootstrap interval otherwise), as ``evo run`` says of a job.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import table
from evo.significance import compare, paired_interval

CONFIDENCE = 0.95
# Per-example test scores, by (task, the scorer's prompt key).
Outcomes = dict[tuple[str, str], list[float]]


@dataclass
class Cell:
    task: str
    method: str
    budget: int
    runs: int
    test_mean: float
    test_sd: float
    test_min: float
    test_max: float
    dev_mean: float | None
    calls_mean: float
    wall_mean: float
    # against the best seed prompt on test, in points; None without per-example scores
    diff: float | None = None
    low: float | None = None
    high: float | None = None
    shown: int | None = None  # runs whose winner alone is shown better than the seed


def summarize(records: Sequence[Any], outcomes: Outcomes | None = None,
              seed_key: dict[str, str] | None = None) -> list[Cell]:
    """``outcomes`` and ``seed_key`` (the best seed prompt's key per task) add the paired
    comparison with the seed to the cells whose runs all have per-example test scores."""
    from bench.quality import BASELINES, DEFAULT_ALGORITHMS

    groups: dict[tuple[str, str, int], list[Any]] = {}
    for r in records:
        groups.setdefault((r.task, r.method, r.budget), []).append(r)
    cells = []
    for (task, method, budget), rs in groups.items():
        tests = [r.test for r in rs]
        devs = [r.dev for r in rs if r.dev is not None]
        cell = Cell(
            task, method, budget, len(rs), statistics.fmean(tests),
            statistics.stdev(tests) if len(tests) > 1 else 0.0, min(tests), max(tests),
            statistics.fmean(devs) if devs else None,
            statistics.fmean(r.calls for r in rs), statistics.fmean(r.wall_s for r in rs))
        if outcomes is not None and seed_key and task in seed_key:
            _against_seed(cell, rs, outcomes, outcomes.get((task, seed_key[task])))
        cells.append(cell)
    order = {m: i for i, m in enumerate([*DEFAULT_ALGORITHMS, *BASELINES])}
    cells.sort(key=lambda c: (c.task, order.get(c.method, 99), c.method, c.budget))
    return cells


def _against_seed(cell: Cell, runs: Sequence[Any], outcomes: Outcomes,
                  seed: list[float] | None) -> None:
    from bench.quality import memo_prompt

    winners = [outcomes.get((r.task, memo_prompt(r))) for r in runs]
    if seed is None or any(w is None or len(w) != len(seed) for w in winners):
        return
    # per example: the runs' mean difference from the seed (the runs share the test examples)
    diffs = [statistics.fmean(w[i] for w in winners) - s for i, s in enumerate(seed)]
    low, high = paired_interval(diffs, CONFIDENCE, random.Random(0))
    cell.diff, cell.low, cell.high = (100 * statistics.fmean(diffs), 100 * low, 100 * high)
    cell.shown = sum(compare(w, seed, confidence=CONFIDENCE).shown for w in winners)


def report(cfg: Any, records: Sequence[Any], seeds_table: dict[str, list[tuple[str, float, float]]],
           log: Any = print, outcomes: Outcomes | None = None) -> list[Cell]:
    seed_rows = []
    for task, seeds in seeds_table.items():
        for prompt, dev, test in seeds:
            seed_rows.append((task, round(dev, 3), round(test, 3), prompt[:60]))
    log("\nseed prompts (full dev and test, the bundled runtime):")
    log(table(["task", "dev", "test", "prompt"], seed_rows))
    best_seed = {t: max(s, key=lambda x: x[1]) for t, s in seeds_table.items() if s}
    cells = summarize(records, outcomes, {t: s[0] for t, s in best_seed.items()})
    rows = []
    for c in cells:
        # rounded, so that a mean equal to the seed's reads 0.000, not -0.000
        gain = (round(c.test_mean - best_seed[c.task][2], 6) + 0.0
                if c.task in best_seed else None)
        interval = None if c.low is None else f"[{c.low:+.1f}, {c.high:+.1f}]"
        shown = None if c.shown is None else f"{c.shown}/{c.runs}"
        rows.append((c.task, c.method, c.budget, c.runs, c.test_mean, c.test_sd,
                     f"{c.test_min:.3f}–{c.test_max:.3f}", gain, interval, shown, c.dev_mean,
                     c.calls_mean, c.wall_mean))
    headers = ["task", "method", "budget", "runs", "test", "sd", "range", "vs seed",
               "95% interval (points)", "shown", "dev", "calls", "wall s"]
    log("\nwinners on test (mean over seeds; 'vs seed' = minus the best seed prompt's test; the "
        "interval is paired, examples resampled; 'shown' = runs shown better than the seed):")
    log(table(headers, rows))
    with (cfg.out / "quality.csv").open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(headers)
        writer.writerows(rows)
    md = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    md += ["| " + " | ".join(_md(v) for v in row) + " |" for row in rows]
    (cfg.out / "quality.md").write_text("\n".join(md) + "\n")
    if cells:
        plot(cells, {t: s[2] for t, s in best_seed.items()}, cfg.out / "quality.png")
        log(f"\nwrote {cfg.out / 'quality.md'}, quality.csv and quality.png")
    return cells


def read_scores(memo: Path) -> tuple[dict[tuple[str, str, str], float], Outcomes]:
    """A scores file's mean scores by (task, split, prompt) and per-example test scores by
    (task, prompt); a later line for the same prompt wins (it adds the per-example scores)."""
    means: dict[tuple[str, str, str], float] = {}
    per_example: Outcomes = {}
    for line in memo.read_text().splitlines() if memo.exists() else []:
        if line.strip():
            row = json.loads(line)
            means[(row["task"], row["split"], row["prompt"])] = row["score"]
            if row["split"] == "test" and row.get("scores"):
                per_example[(row["task"], row["prompt"])] = row["scores"]
    return means, per_example


def report_only(out: Path) -> int:
    """The report of what ``out`` holds (a run in progress, or one stopped early)."""
    from bench.quality import Config, load_runs

    records = list(load_runs(out / "runs.jsonl").values())
    if not records:
        raise SystemExit(f"no runs in {out / 'runs.jsonl'}")
    seeds: dict[str, list[tuple[str, float, float]]] = {}
    scores, outcomes = read_scores(out / "scores.jsonl")
    for (task, split, prompt), dev in scores.items():
        if split == "dev" and (task, "test", prompt) in scores:
            seeds.setdefault(task, []).append((prompt, dev, scores[(task, "test", prompt)]))
    report(Config(out=out), records, seeds, print, outcomes)
    return 0


def plot(cells: Sequence[Cell], seed_test: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from bench.quality import BASELINES

    tasks = sorted({c.task for c in cells})
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks) + 1.6, 4.2), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        mine = [c for c in cells if c.task == task]
        for method in dict.fromkeys(c.method for c in mine):
            pts = sorted((c.budget, c.test_mean, c.test_sd) for c in mine if c.method == method)
            style = "--" if method in BASELINES else "-"
            ax.errorbar([p[0] for p in pts], [p[1] for p in pts], yerr=[p[2] for p in pts],
                        label=method, linestyle=style, marker="o", capsize=3)
        if task in seed_test:
            ax.axhline(seed_test[task], color="grey", linestyle=":", label="best seed prompt")
        ax.set_xscale("log")
        budgets = sorted({c.budget for c in mine})
        ax.set_xticks(budgets, [str(b) for b in budgets])
        ax.minorticks_off()
        ax.set_title(task)
        ax.set_xlabel("search budget (LLM calls)")
        ax.set_ylabel("winner's test score")
        ax.grid(alpha=0.3)
    # beside the last panel, where it hides no point
    axes[0][-1].legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _md(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:+.3f}" if v < 0 else f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"
    return "-" if v is None else str(v)
