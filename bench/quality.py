"""Quality per budget: the winner's test score for each method at several budgets, on the
bundled model, against the seed prompts and two baselines a user would otherwise pick.

    python -m bench.quality [--tasks sentiment] [--budgets 50 100 200] [--seeds 1]
                            [--algorithms evoprompt-ga,opro] [--baselines random,gepa]
                            [--dev-subset 8] [--dev-limit 30] [--test-limit 60]
                            [--out bench-quality]
    python -m bench.quality --tasks sentiment topic arithmetic --budgets 500 2000 8000 --seeds 3 \
        --algorithms gps,grips,evoprompt-ga,evoprompt-de,opro --dev-subset 20 --dev-limit 0 \
        --test-limit 0

The default is the small run: two algorithms, both baselines, one task cut to 30 dev and 60 test
examples, one seed; ``--dev-limit 0 --test-limit 0`` use whole splits. On 2 cores the bundled
model answers about 5 to 15 calls a second, so the large run above takes days.

A budget is the number of LLM calls a method may spend on its search (task and meta-LLM calls
alike). Every run then gets the same final phase on top: its best prompt and every seed prompt
re-scored on the full dev split, the best of them is the winner. Evo's algorithms run as ``evo run``
runs them (the bundled runtime, Ray actors, the store); the iteration limits of each algorithm
are raised so that the budget is what stops it (GrIPS still stops on its patience, as the paper
does). The baselines (random search over meta-LLM paraphrases; GEPA from PyPI) run through
``llama_cpp.server`` serving the same model file (bench/baselines.py).

Every winner, and every seed prompt, is scored on the test split by one scorer, the bundled
runtime's label scoring, so all test figures are comparable; "seed" is the seed prompt with the
best full-dev score. A method's figure is the mean over seeds with the standard deviation
(spread) and the range.

Results go to ``--out``: ``runs.jsonl`` (one line per run; a rerun with the same ``--out`` skips
runs already there, so a long run can be stopped and continued), ``scores.jsonl`` (the test and
dev scores of each prompt, reused likewise), ``quality.md``, ``quality.csv`` and ``quality.png``
(test score against budget, one panel per task). Runs made side by side in several folders (say,
one process per budget) combine by concatenating their ``runs.jsonl`` and ``scores.jsonl`` into
one folder and running ``--report-only`` on it. ``bench/results/quality/`` (sentiment and topic),
``bench/results/quality-arithmetic-guard/`` (arithmetic) and ``bench/results/quality-arithmetic/``
(arithmetic before the meta-prompt echo check) hold the runs behind the figures in
docs/performance.md.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.common import table
from evo.soft_prompt import SoftPrompt

DEFAULT_ALGORITHMS = ("gps", "grips", "evoprompt-ga", "evoprompt-de", "opro")
BASELINES = ("random", "gepa")
# the small default run
SMALL_ALGORITHMS = ("evoprompt-ga", "opro")
SMALL_BUDGETS = (50, 100, 200)
# Iteration limits raised so that the call budget ends the search.
_UNBOUNDED = {"generations": 1000, "iterations": 1000, "steps": 1000}


@dataclass
class Config:
    tasks: list[Any] = field(default_factory=lambda: ["sentiment"])  # names or task spec dicts
    algorithms: list[str] = field(default_factory=lambda: list(SMALL_ALGORITHMS))
    baselines: list[str] = field(default_factory=lambda: list(BASELINES))
    budgets: list[int] = field(default_factory=lambda: list(SMALL_BUDGETS))
    seeds: list[int] = field(default_factory=lambda: [1])
    dev_subset: int = 8
    out: Path = Path("bench-quality")
    server_threads: int = 1
    model: str | None = None  # GGUF path; default: the bundled SmolLM2


@dataclass
class RunRecord:
    task: str
    method: str
    budget: int
    seed: int
    winner: str
    dev: float | None
    test: float
    calls: int
    wall_s: float
    kind: str  # "evo" or "baseline"
    extra: dict[str, Any] = field(default_factory=dict)

    def key(self) -> tuple[str, str, int, int]:
        return (self.task, self.method, self.budget, self.seed)


def task_name(task: Any) -> str:
    return task if isinstance(task, str) else str(task.get("name") or task.get("builtin"))


def limited_task(name: str, folder: Path, **limits: int) -> dict[str, Any]:
    """A built-in task on the first ``limits[split]`` examples of the named splits (others
    whole), written as JSONL under ``folder``: a task spec Evo's jobs and the baselines share."""
    from evo.task import load_task

    builtin = load_task(name)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("train", "dev", "test"):
        examples = builtin.split(split)[: limits.get(split)]
        path = folder / f"{name}.{split}.jsonl"
        path.write_text("".join(
            json.dumps({"id": e.id, "input": e.input, "target": e.target}) + "\n"
            for e in examples))
        paths[split] = str(path)
    return {"builtin": name, "name": name, "data": paths}


def load(task: Any) -> Any:
    """A built-in task by name, or a task spec given as a dict (as a job spec's ``task``)."""
    from evo.task import TaskSpec, load_task

    return load_task(task if isinstance(task, str) else TaskSpec.model_validate(task))


# --- the common test scorer --------------------------------------------------------------------


class TestScorer:
    """Scores prompts on a task's splits with the bundled runtime, once per task, split and
    prompt; the scores are kept in ``memo_file`` (JSONL) so that a continued run reuses them."""

    def __init__(self, model: str | None, memo_file: Path | None = None) -> None:
        from workers.llm_local import LocalLlamaClient

        # one thread: llama.cpp's threads spin at each step's barrier, and on a busy machine
        # two of them wait on each other far longer than one thread computes
        self.client = LocalLlamaClient(model, threads=1)
        self.memo_file = memo_file
        self._memo: dict[tuple[str, str, str], float] = {}
        if memo_file is not None and memo_file.exists():
            for line in memo_file.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    self._memo[(row["task"], row["split"], row["prompt"])] = row["score"]

    def score(self, task_key: str, task: Any, prompt: str, split: str = "test",
              soft: Any = None) -> float:
        """``soft``: a soft prompt (``evo.soft_prompt.SoftPrompt``) scored in place of the text
        (``prompt`` is then its readable approximation)."""
        if soft is not None:
            prompt = f"{prompt} [soft {soft.key()}]"
        key = (task_key, split, prompt)
        if key not in self._memo:
            examples = task.split(split)
            total = 0.0
            for example in examples:
                request = task.request(prompt, example, label_scoring=bool(task.labels),
                                       soft=soft)
                total += task.score(example, self.client.call_sync(request)).score
            self._memo[key] = total / len(examples)
            if self.memo_file is not None:
                with self.memo_file.open("a") as fh:
                    fh.write(json.dumps({"task": task_key, "split": split, "prompt": prompt,
                                         "score": self._memo[key]}) + "\n")
        return self._memo[key]

    def close(self) -> None:
        self.client.close()


# --- one run of each kind ----------------------------------------------------------------------


def evo_spec(task: Any, algorithm: str, budget: int, seed: int, dev_subset: int,
             loaded: Any) -> dict[str, Any]:
    from evo.algorithms import get_algorithm
    from evo.spec import JobSpec
    from workers.final import final_reserve

    accepted = get_algorithm(algorithm).params_model.model_fields
    params: dict[str, Any] = {"name": algorithm}
    for sample in ("dev_subset", "train_subset"):  # OPRO scores a sample of its train split
        if sample in accepted:
            params[sample] = dev_subset
    if "shots" in accepted:  # methods that learn from a training sample (BBT): as large
        params["shots"] = max(1, dev_subset // max(1, len(loaded.labels)))
    params |= {k: v for k, v in _UNBOUNDED.items() if k in accepted}
    spec = {
        "name": f"quality-{task_name(task)}-{algorithm}-{budget}-s{seed}",
        "task": task,
        "algorithm": params,
        "models": {"task": {"provider": "local"}},
        "evaluation": {"top_k": 1, "test": False},
        "seed": seed,
    }
    # the final phase (the best and every seed on the full dev split) on top of the search
    reserve = final_reserve(JobSpec.model_validate(spec), loaded)
    return spec | {"budget": {"calls": budget + reserve}}


def run_evo(store: Any, settings: Any, task: Any, loaded: Any, algorithm: str, budget: int,
            seed: int, cfg: Config) -> tuple[str, float | None, int, float, dict[str, Any]]:
    from workers.runner import optimize

    spec = evo_spec(task, algorithm, budget, seed, cfg.dev_subset, loaded)
    result = optimize(spec, store=store, settings=settings)
    if result.status != "completed":
        raise RuntimeError(f"{spec['name']} ended {result.status}: {result.reason}")
    stats = result.stats
    if result.best is None:  # the budget ran out before any candidate was fully scored
        return loaded.seed_prompts[0], None, int(stats.get("calls", 0)), float(
            stats.get("elapsed_s", 0.0)), {"no_winner": result.reason}
    cand = result.best.candidate
    extra = {"soft_prompt": cand.meta} if cand.kind == "soft_prompt" else {}
    return (cand.text, result.best.dev, int(stats.get("calls", 0)),
            float(stats.get("elapsed_s", 0.0)), extra)


def run_baseline(server: Any, loaded: Any, method: str, budget: int, seed: int,
                 cfg: Config) -> tuple[str, float | None, int, float, dict[str, Any]]:
    from bench import baselines

    search = {"random": baselines.random_search, "gepa": baselines.gepa_search}[method]
    result = search(server, loaded, search_calls=budget, dev_sample=cfg.dev_subset, seed=seed)
    extra = {"search_calls": result.search_calls, "candidates": result.candidates, **result.notes}
    return result.winner, result.dev, result.calls, result.wall_s, extra


# --- the whole benchmark -----------------------------------------------------------------------


def run(cfg: Config, log: Any = print) -> list[RunRecord]:
    from evo.app.settings import Settings
    from storage import Store

    cfg.out.mkdir(parents=True, exist_ok=True)
    runs_file = cfg.out / "runs.jsonl"
    done = _load_runs(runs_file)
    for name in cfg.baselines:
        if name not in BASELINES:
            raise SystemExit(f"unknown baseline {name!r}; choose from {', '.join(BASELINES)}")
    scorer = TestScorer(cfg.model, cfg.out / "scores.jsonl")
    seeds_table: dict[str, list[tuple[str, float, float]]] = {}
    server_cm = server = None
    try:
        with tempfile.TemporaryDirectory() as tmp, \
                Store(f"sqlite:///{Path(tmp) / 'quality.db'}") as store:
            settings = Settings(database_url=f"sqlite:///{Path(tmp) / 'quality.db'}")
            loaded = {task_name(t): load(t) for t in cfg.tasks}
            for tname, one in loaded.items():
                _check_budgets(cfg, one, tname)
                seeds_table[tname] = [
                    (p, scorer.score(tname, one, p, "dev"), scorer.score(tname, one, p))
                    for p in one.seed_prompts
                ]
            # seed-major: a run stopped early still covers every task, budget and method
            for seed in cfg.seeds:
                for task in cfg.tasks:
                    tname = task_name(task)
                    for budget in cfg.budgets:
                        for method in [*cfg.algorithms, *cfg.baselines]:
                            if (tname, method, budget, seed) in done:
                                continue
                            log(f"{tname}: {method}, budget {budget}, seed {seed} ...")
                            if server is None and method in BASELINES:
                                server_cm, server = _start_server(cfg, scorer)
                            record = one_run(store, settings, server, scorer, task,
                                             loaded[tname], method, budget, seed, cfg)
                            done[record.key()] = record
                            with runs_file.open("a") as fh:
                                fh.write(json.dumps(asdict(record)) + "\n")
                            log(f"  test {record.test:.3f}  dev {_f(record.dev)}  calls "
                                f"{record.calls}  {record.wall_s:.0f}s  winner "
                                f"{record.winner[:70]!r}")
    finally:
        if server is not None:
            server.close()
        if server_cm is not None:
            server_cm.__exit__(None, None, None)
        scorer.close()
    records = [r for r in done.values() if r.task in {task_name(t) for t in cfg.tasks}]
    report(cfg, records, seeds_table, log)
    return records


def one_run(store: Any, settings: Any, server: Any, scorer: TestScorer, task: Any, loaded: Any,
            method: str, budget: int, seed: int, cfg: Config) -> RunRecord:
    tname = task_name(task)
    extra: dict[str, Any] = {}
    if method in BASELINES:
        winner, dev, calls, wall, extra = run_baseline(server, loaded, method, budget, seed, cfg)
    else:
        winner, dev, calls, wall, extra = run_evo(store, settings, task, loaded, method,
                                                  budget, seed, cfg)
    kind = "baseline" if method in BASELINES else "evo"
    soft = SoftPrompt.from_meta(extra["soft_prompt"]) if "soft_prompt" in extra else None
    return RunRecord(tname, method, budget, seed, winner, dev,
                     scorer.score(tname, loaded, winner, soft=soft), calls, wall, kind, extra)


def _check_budgets(cfg: Config, task: Any, name: str) -> None:
    # GEPA scores the seed prompts and its starting point on its validation sample, then needs
    # room for one iteration; the others need room for the seed prompts.
    sample = min(cfg.dev_subset, len(task.split("dev")))
    least = (len(task.seed_prompts) + 2) * sample + 7 if "gepa" in cfg.baselines else \
        len(task.seed_prompts) * sample
    low = [b for b in cfg.budgets if b < least]
    if low:
        raise SystemExit(f"budget {low[0]} is too small for task {name}: the search needs at "
                         f"least {least} calls to score the seed prompts on a dev sample of "
                         f"{sample} (lower --dev-subset or raise --budgets)")


def _start_server(cfg: Config, scorer: TestScorer) -> tuple[Any, Any]:
    from bench.baselines import ServerModel
    from bench.common import start_llama_server

    cm = start_llama_server(scorer.client.model_path, threads=cfg.server_threads)
    base_url = cm.__enter__()
    return cm, ServerModel(base_url, scorer.client.format_prompt)


def _load_runs(path: Path) -> dict[tuple[str, str, int, int], RunRecord]:
    out: dict[tuple[str, str, int, int], RunRecord] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = RunRecord(**json.loads(line))
                out[record.key()] = record
    return out


# --- the report --------------------------------------------------------------------------------


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


def summarize(records: Sequence[RunRecord]) -> list[Cell]:
    groups: dict[tuple[str, str, int], list[RunRecord]] = {}
    for r in records:
        groups.setdefault((r.task, r.method, r.budget), []).append(r)
    cells = []
    for (task, method, budget), rs in groups.items():
        tests = [r.test for r in rs]
        devs = [r.dev for r in rs if r.dev is not None]
        cells.append(Cell(
            task, method, budget, len(rs), statistics.fmean(tests),
            statistics.stdev(tests) if len(tests) > 1 else 0.0, min(tests), max(tests),
            statistics.fmean(devs) if devs else None,
            statistics.fmean(r.calls for r in rs), statistics.fmean(r.wall_s for r in rs)))
    order = {m: i for i, m in enumerate([*DEFAULT_ALGORITHMS, *BASELINES])}
    cells.sort(key=lambda c: (c.task, order.get(c.method, 99), c.method, c.budget))
    return cells


def report(cfg: Config, records: Sequence[RunRecord],
           seeds_table: dict[str, list[tuple[str, float, float]]], log: Any = print) -> None:
    cells = summarize(records)
    seed_rows = []
    for task, seeds in seeds_table.items():
        for prompt, dev, test in seeds:
            seed_rows.append((task, round(dev, 3), round(test, 3), prompt[:60]))
    log("\nseed prompts (full dev and test, the bundled runtime):")
    log(table(["task", "dev", "test", "prompt"], seed_rows))
    best_seed = {t: max(s, key=lambda x: x[1]) for t, s in seeds_table.items() if s}
    rows = []
    for c in cells:
        # rounded, so that a mean equal to the seed's reads 0.000, not -0.000
        gain = (round(c.test_mean - best_seed[c.task][2], 6) + 0.0
                if c.task in best_seed else None)
        rows.append((c.task, c.method, c.budget, c.runs, c.test_mean, c.test_sd,
                     f"{c.test_min:.3f}–{c.test_max:.3f}", gain, c.dev_mean, c.calls_mean,
                     c.wall_mean))
    headers = ["task", "method", "budget", "runs", "test", "sd", "range", "vs seed", "dev",
               "calls", "wall s"]
    log("\nwinners on test (mean over seeds; 'vs seed' = minus the best seed prompt's test):")
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


def report_only(out: Path) -> int:
    """The report of what ``out`` holds (a run in progress, or one stopped early)."""
    records = list(_load_runs(out / "runs.jsonl").values())
    if not records:
        raise SystemExit(f"no runs in {out / 'runs.jsonl'}")
    seeds: dict[str, list[tuple[str, float, float]]] = {}
    scores: dict[tuple[str, str, str], float] = {}
    memo = out / "scores.jsonl"
    for line in memo.read_text().splitlines() if memo.exists() else []:
        row = json.loads(line)
        scores[(row["task"], row["split"], row["prompt"])] = row["score"]
    for (task, split, prompt), dev in scores.items():
        if split == "dev" and (task, "test", prompt) in scores:
            seeds.setdefault(task, []).append((prompt, dev, scores[(task, "test", prompt)]))
    report(Config(out=out), records, seeds, print)
    return 0


def plot(cells: Sequence[Cell], seed_test: dict[str, float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _md(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:+.3f}" if v < 0 else f"{v:.3f}" if abs(v) < 10 else f"{v:.0f}"
    return "-" if v is None else str(v)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", nargs="+", default=["sentiment"],
                    help="built-in task names (evo tasks)")
    ap.add_argument("--algorithms", default=",".join(SMALL_ALGORITHMS),
                    help="comma-separated Evo algorithms ('' for none); all prompt methods: "
                    + ",".join(DEFAULT_ALGORITHMS))
    ap.add_argument("--baselines", default=",".join(BASELINES),
                    help=f"comma-separated, from {', '.join(BASELINES)} ('' for none)")
    ap.add_argument("--budgets", nargs="+", type=int, default=list(SMALL_BUDGETS),
                    help="search budgets in LLM calls")
    ap.add_argument("--seeds", type=int, default=1, help="seeds 1..N per (method, budget)")
    ap.add_argument("--dev-subset", type=int, default=8,
                    help="dev examples per candidate during the search")
    ap.add_argument("--dev-limit", type=int, default=30,
                    help="use the first N dev examples (0: all); the final phase scores them all")
    ap.add_argument("--test-limit", type=int, default=60,
                    help="use the first N test examples (0: all)")
    ap.add_argument("--out", type=Path, default=Path("bench-quality"))
    ap.add_argument("--server-threads", type=int, default=1)
    ap.add_argument("--model", default=None, help="GGUF file (default: the bundled SmolLM2)")
    ap.add_argument("--report-only", action="store_true",
                    help="print the table and plot of the runs already in --out; run nothing")
    args = ap.parse_args(argv)
    if args.report_only:
        return report_only(args.out)
    from evo.algorithms import REGISTRY
    from evo.task import builtin_tasks

    algorithms = [a for a in args.algorithms.split(",") if a]
    unknown = [a for a in algorithms if a not in REGISTRY] + [
        t for t in args.tasks if t not in builtin_tasks()]
    if unknown:
        raise SystemExit(f"unknown algorithm or task: {', '.join(unknown)}")
    tasks: list[Any] = list(args.tasks)
    limits = {k: v for k, v in (("dev", args.dev_limit), ("test", args.test_limit)) if v}
    if limits:
        tasks = [limited_task(t, args.out / "tasks", **limits) for t in tasks]
    cfg = Config(tasks=tasks, algorithms=algorithms,
                 baselines=[b for b in args.baselines.split(",") if b],
                 budgets=sorted(set(args.budgets)), seeds=list(range(1, args.seeds + 1)),
                 dev_subset=args.dev_subset, out=args.out, server_threads=args.server_threads,
                 model=args.model)
    start = time.perf_counter()
    run(cfg, log=lambda s: print(s, flush=True))
    print(f"\n{time.perf_counter() - start:.0f} s in all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
