"""Comparing methods on one task and one budget: specs per run, and the summary table.

Each algorithm runs with its own default parameters plus those of the given spec's
``algorithm`` section that it accepts (a shared ``dev_subset``, say), on the same task, models,
budget and evaluation settings; repeat r uses seed ``spec.seed + r``. The one evaluation setting
that may differ is the strategy: a method whose candidates are made for one (zero-shot-eot: ``eot``)
answers with it, the others with the spec's own (``strategy_note`` says so beside the table).
"""

from __future__ import annotations

import csv
import io
import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from evo.algorithms import get_algorithm
from evo.significance import paired_interval
from evo.spec import JobSpec
from evo.spec_io import parse_spec
from evo.strategies import MOST_CALLS


@dataclass(frozen=True)
class Run:
    algorithm: str
    repeat: int
    job_id: str
    best_dev: float | None
    test: float | None
    test_scores: tuple[float, ...]
    calls: int
    tokens: int
    wall_s: float
    usd: float = 0.0  # by the models' prices


def run_of_job(algorithm: str, repeat: int, job: Any) -> Run:
    """A finished stored job as a comparison run (what ``evo compare`` reuses)."""
    stats = job.stats or {}
    return Run(
        algorithm,
        repeat,
        job.id,
        stats.get("best_dev"),
        stats.get("best_test"),
        tuple(stats.get("best_test_scores", ())),
        int(stats.get("calls", 0)),
        int(stats.get("tokens", 0)),
        float(stats.get("elapsed_s", 0.0)),
        float(stats.get("usd", 0.0)),
    )


@dataclass(frozen=True)
class Row:
    algorithm: str
    runs: int
    dev_mean: float | None
    dev_sd: float | None
    test_mean: float | None
    test_low: float | None
    test_high: float | None
    calls: float
    tokens: float
    wall_s: float
    usd: float = 0.0


def not_comparable(name: str) -> str | None:
    """Why a method has no place in the table (None: it has one): the table compares the
    best prompts' dev and test scores, and a data-set method's jobs have neither."""
    cls = get_algorithm(name)
    if cls.result == "dataset":
        return (f"{name} evolves a data set of instructions, not a prompt: its jobs have no dev "
                f"or test score to compare; run it with `evo run` and export its data set with "
                f"`evo export JOB --format jsonl`")
    return None


def run_specs(
    spec: JobSpec, algorithms: Sequence[str], repeats: int
) -> list[tuple[str, int, JobSpec]]:
    """One spec per (algorithm, repeat), validated like any other. Repeat-major order: every
    algorithm's first run comes before any second run, so a comparison stopped early still
    covers every method. A method whose candidates are answered with a strategy of their own
    gets that strategy; the others keep the one the spec gives (or the default)."""
    for name in algorithms:
        if why := not_comparable(name):
            raise ValueError(why)
    base = spec.model_dump(mode="json", exclude_none=True)
    shared = spec.algorithm.params
    given = _given_strategy(spec)
    evaluation = {k: v for k, v in base["evaluation"].items() if k != "strategy"}
    out = []
    for r in range(repeats):
        for name in algorithms:
            cls = get_algorithm(name)
            accepted = cls.params_model.model_fields
            params = {k: v for k, v in shared.items() if k in accepted}
            strategy = cls.strategy or given
            data = {
                **base,
                "algorithm": {"name": name, **params},
                "evaluation": {**evaluation, **({"strategy": strategy} if strategy else {})},
                "seed": spec.seed + r,
                "name": f"compare {name} #{r + 1}",
            }
            one = parse_spec(data)
            one._base_dir = spec._base_dir
            out.append((name, r, one))
    return out


def _given_strategy(spec: JobSpec) -> str | None:
    """The strategy the spec itself asks for, if any: not the default, and not one its own
    algorithm brought along (a zero-shot-eot spec's ``eot`` is no choice for the others)."""
    if "strategy" not in spec.evaluation.model_fields_set:
        return None
    own = get_algorithm(spec.algorithm.name).strategy
    return None if spec.evaluation.strategy == own else spec.evaluation.strategy


def strategy_note(specs: Sequence[tuple[str, int, JobSpec]]) -> str:
    """A line for beside the table when the methods answer with different strategies (empty
    when they all answer alike): each run has the same budget of calls, but an example costs
    more of them under a chain, and a test score then measures the prompt and the chain."""
    used = {name: one.evaluation.strategy for name, _, one in specs}
    if len(set(used.values())) < 2:
        return ""
    each = "; ".join(f"{name}: {s}, {'up to ' * (MOST_CALLS[s] > 1)}{MOST_CALLS[s]} "
                     f"call{'s' * (MOST_CALLS[s] > 1)} per example" for name, s in used.items())
    return (f"The methods answer with different evaluation strategies ({each}). Every run has "
            f"the same budget of calls, so a longer chain scores fewer examples with it, and each "
            f"test score is its prompt's answered with its method's strategy.")


def bootstrap_ci(
    runs: Sequence[Sequence[float]], *, level: float = 0.95, samples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean over runs of each run's mean score, resampling examples
    within each run."""
    rng = random.Random(seed)
    stats = []
    for _ in range(samples):
        means = [sum(rng.choices(r, k=len(r))) / len(r) for r in runs if r]
        stats.append(sum(means) / len(means))
    stats.sort()
    lo = stats[int((1 - level) / 2 * samples)]
    hi = stats[min(samples - 1, int((1 + level) / 2 * samples))]
    return lo, hi


def summarize(runs: Sequence[Run]) -> list[Row]:
    rows = []
    for name in dict.fromkeys(r.algorithm for r in runs):
        mine = [r for r in runs if r.algorithm == name]
        devs = [r.best_dev for r in mine if r.best_dev is not None]
        tests = [r.test for r in mine if r.test is not None]
        per_example = [r.test_scores for r in mine if r.test_scores]
        # an interval over some of the runs would not be one for the mean of all of them
        complete = per_example and len(per_example) == len(tests)
        low, high = bootstrap_ci(per_example) if complete else (None, None)
        rows.append(
            Row(
                name,
                len(mine),
                statistics.fmean(devs) if devs else None,
                statistics.stdev(devs) if len(devs) > 1 else None,
                statistics.fmean(tests) if tests else None,
                low,
                high,
                statistics.fmean(r.calls for r in mine),
                statistics.fmean(r.tokens for r in mine),
                statistics.fmean(r.wall_s for r in mine),
                statistics.fmean(r.usd for r in mine),
            )
        )
    return rows


@dataclass(frozen=True)
class Pair:
    """Method ``a`` against method ``b`` on the same test examples: the mean per-example
    difference in points, over their runs of the same repeat, with its paired interval."""

    a: str
    b: str
    diff: float
    low: float
    high: float
    examples: int
    repeats: int

    def cells(self) -> list[str]:
        shown = "yes" if self.low > 0 or self.high < 0 else "no"
        return [f"{self.a} − {self.b}", f"{self.diff:+.1f}",
                f"[{self.low:+.1f}, {self.high:+.1f}]", str(self.examples), str(self.repeats),
                shown]


PAIR_COLUMNS = ("methods", "test difference (points)", "95% paired interval", "examples",
                "repeats", "interval excludes 0")


def pairwise(runs: Sequence[Run], *, level: float = 0.95, seed: int = 0) -> list[Pair]:
    """Every two methods compared example by example: runs of the same repeat share their seed
    and their test split, so each example's difference is averaged over the repeats both have,
    and the examples are resampled together (a paired bootstrap)."""
    by = {(r.algorithm, r.repeat): r.test_scores for r in runs if r.test_scores}
    names = list(dict.fromkeys(r.algorithm for r in runs))
    out = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            both = [(by[a, k], by[b, k]) for (name, k) in by
                    if name == a and (b, k) in by and len(by[a, k]) == len(by[b, k])]
            if not both:
                continue
            n = len(both[0][0])
            if any(len(x) != n for x, _ in both):
                continue
            diffs = [sum(x[e] - y[e] for x, y in both) / len(both) for e in range(n)]
            low, high = paired_interval(diffs, level, random.Random(seed))
            out.append(Pair(a, b, 100 * sum(diffs) / n, 100 * low, 100 * high, n, len(both)))
    return out


def pairs_markdown(pairs: Sequence[Pair]) -> str:
    if not pairs:
        return ""
    lines = ["", "| " + " | ".join(PAIR_COLUMNS) + " |", "|" + "---|" * len(PAIR_COLUMNS)]
    lines += ["| " + " | ".join(p.cells()) + " |" for p in pairs]
    return "\n".join(lines) + "\n"


COLUMNS = ("algorithm", "runs", "best dev", "test (95% CI)", "calls", "tokens", "USD", "wall s")


def cells(row: Row) -> list[str]:
    dev = (
        "—"
        if row.dev_mean is None
        else f"{row.dev_mean:.3f}" + (f" ± {row.dev_sd:.3f}" if row.dev_sd is not None else "")
    )
    test = (
        "—"
        if row.test_mean is None
        else f"{row.test_mean:.3f}"
        + (f" [{row.test_low:.3f}, {row.test_high:.3f}]" if row.test_low is not None else "")
    )
    return [
        row.algorithm,
        str(row.runs),
        dev,
        test,
        f"{row.calls:.0f}",
        f"{row.tokens:.0f}",
        f"{row.usd:.4f}",
        f"{row.wall_s:.1f}",
    ]


def to_markdown(rows: Sequence[Row], title: str = "") -> str:
    lines = [f"### {title}", ""] if title else []
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "---|" * len(COLUMNS))
    lines += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[Row]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(
        [
            "algorithm",
            "runs",
            "dev_mean",
            "dev_sd",
            "test_mean",
            "test_ci_low",
            "test_ci_high",
            "calls",
            "tokens",
            "usd",
            "wall_s",
        ]
    )
    for r in rows:
        writer.writerow(
            [
                r.algorithm,
                r.runs,
                _num(r.dev_mean),
                _num(r.dev_sd),
                _num(r.test_mean),
                _num(r.test_low),
                _num(r.test_high),
                f"{r.calls:.1f}",
                f"{r.tokens:.1f}",
                f"{r.usd:.6f}",
                f"{r.wall_s:.2f}",
            ]
        )
    return buf.getvalue()


def _num(v: Any) -> str:
    return "" if v is None else f"{v:.6f}"
