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
(spread) and the range, and its paired comparison with that seed on the same test examples: a 95%
interval of the difference and how many runs are shown better (bench/quality_report.py).

Results go to ``--out``: ``runs.jsonl`` (one line per run; a rerun with the same ``--out`` skips
runs already there, so a long run can be stopped and continued), ``scores.jsonl`` (the test and dev
scores of each prompt, each example's among them, reused likewise), ``quality.md``, ``quality.csv``
and ``quality.png`` (test score against budget, one panel per task). Runs made side by side in
several folders (say, one process per budget) combine by concatenating their ``runs.jsonl`` and
``scores.jsonl`` into one folder and running ``--report-only`` on it. ``bench/results/quality/``
(sentiment and topic), ``bench/results/quality-arithmetic-guard/`` (arithmetic) and
``bench/results/quality-arithmetic/`` (arithmetic before the meta-prompt echo check) hold the runs
behind the figures in docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.quality_report import report, report_only
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
    prompt; the scores, each example's among them, are kept in ``memo_file`` (JSONL) so that a
    continued run reuses them."""

    def __init__(self, model: str | None, memo_file: Path | None = None) -> None:
        from bench.quality_report import read_scores
        from workers.llm_local import LocalLlamaClient

        # one thread: llama.cpp's threads spin at each step's barrier, and on a busy machine
        # two of them wait on each other far longer than one thread computes
        self.client = LocalLlamaClient(model, threads=1)
        self.memo_file = memo_file
        self._memo: dict[tuple[str, str, str], float] = {}
        self._tests: dict[tuple[str, str], list[float]] = {}
        if memo_file is not None:
            self._memo, self._tests = read_scores(memo_file)

    def score(self, task_key: str, task: Any, prompt: str, split: str = "test",
              soft: Any = None) -> float:
        """``soft``: a soft prompt (``evo.soft_prompt.SoftPrompt``) scored in place of the text
        (``prompt`` is then its readable approximation)."""
        key = (task_key, split, soft_key(prompt, soft))
        if key not in self._memo:
            self._score(task_key, task, prompt, split, soft)
        return self._memo[key]

    def outcomes(self, task_key: str, task: Any, prompt: str, soft: Any = None) -> list[float]:
        """Each test example's score, in the split's order (scored again when the memo file
        predates per-example scores)."""
        key = (task_key, soft_key(prompt, soft))
        if key not in self._tests:
            self._score(task_key, task, prompt, "test", soft)
        return self._tests[key]

    def has_outcomes(self, task_key: str, name: str) -> bool:
        return (task_key, name) in self._tests

    def _score(self, task_key: str, task: Any, prompt: str, split: str, soft: Any) -> None:
        scores = []
        for example in task.split(split):
            request = task.request(prompt, example, label_scoring=bool(task.labels), soft=soft)
            scores.append(task.score(example, self.client.call_sync(request)).score)
        name = soft_key(prompt, soft)
        self._memo[(task_key, split, name)] = sum(scores) / len(scores)
        if split == "test":
            self._tests[(task_key, name)] = scores
        if self.memo_file is not None:
            with self.memo_file.open("a") as fh:
                fh.write(json.dumps({"task": task_key, "split": split, "prompt": name,
                                     "score": self._memo[(task_key, split, name)],
                                     "scores": scores}) + "\n")

    def close(self) -> None:
        self.client.close()


def soft_key(prompt: str, soft: Any) -> str:
    """The scores file's name for a prompt: a soft prompt is its readable text and its key."""
    return prompt if soft is None else f"{prompt} [soft {soft.key()}]"


def soft_of(record: RunRecord) -> SoftPrompt | None:
    meta = record.extra.get("soft_prompt")
    return None if meta is None else SoftPrompt.from_meta(meta)


def memo_prompt(record: RunRecord) -> str:
    """The scores file's name for a run's winner."""
    return soft_key(record.winner, soft_of(record))


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
    done = load_runs(runs_file)
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
            outcomes = paired_outcomes(scorer, loaded, seeds_table, done.values(), log)
    finally:
        if server is not None:
            server.close()
        if server_cm is not None:
            server_cm.__exit__(None, None, None)
        scorer.close()
    records = [r for r in done.values() if r.task in {task_name(t) for t in cfg.tasks}]
    report(cfg, records, seeds_table, log, outcomes)
    return records


def paired_outcomes(scorer: TestScorer, loaded: dict[str, Any],
                    seeds_table: dict[str, list[tuple[str, float, float]]],
                    records: Any, log: Any) -> dict[tuple[str, str], list[float]]:
    """Each test example's score for every winner and each task's best seed prompt (best full-dev
    score), for the report's paired comparison."""
    wanted: dict[tuple[str, str], tuple[str, SoftPrompt | None]] = {}
    for tname, seeds in seeds_table.items():
        best = max(seeds, key=lambda s: s[1])[0]
        wanted[(tname, best)] = (best, None)
    for r in records:
        if r.task in loaded:
            wanted.setdefault((r.task, memo_prompt(r)), (r.winner, soft_of(r)))
    missing = sum(1 for key in wanted if not scorer.has_outcomes(*key))
    if missing:
        log(f"scoring {missing} prompts on test example by example (for the paired comparison)")
    return {key: scorer.outcomes(key[0], loaded[key[0]], prompt, soft)
            for key, (prompt, soft) in wanted.items()}


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
    record = RunRecord(tname, method, budget, seed, winner, dev, 0.0, calls, wall, kind, extra)
    record.test = scorer.score(tname, loaded, winner, soft=soft_of(record))
    return record


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


def load_runs(path: Path) -> dict[tuple[str, str, int, int], RunRecord]:
    out: dict[tuple[str, str, int, int], RunRecord] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            if line.strip():
                record = RunRecord(**json.loads(line))
                out[record.key()] = record
    return out


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


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
