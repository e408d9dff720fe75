"""Exporting a job's best prompts: JSON, YAML, Markdown or plain text.

A job has something to export once a candidate has been scored on the whole dev split (the final
scoring does that); before then, or when it ended without, ``NoBestPrompt`` is raised whatever
the format, so ``evo export`` and the REST API refuse alike instead of writing an empty file.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import yaml

from evo.app.dataset import is_dataset_algorithm
from evo.app.export_md import markdown
from evo.app.task_format import task_format
from evo.engine import SEED

FORMATS = ("json", "yaml", "md", "txt")
# states from which a job may still come to have a best prompt
UNFINISHED = ("queued", "running", "paused", "interrupted")


class NoBestPrompt(LookupError):
    """The job has no candidate scored on the whole dev split, so no best prompt to export."""

    def __init__(self, job_id: str, status: str) -> None:
        self.job_id = job_id
        self.status = status
        if status in UNFINISHED:
            why = "yet: its prompts are scored on the whole dev split when it completes"
        else:
            why = "to export: no candidate was scored on the whole dev split"
        super().__init__(f"job {job_id} is {status} and has no best prompt {why}")


class DataSetJob(NoBestPrompt):
    """The job's result is a data set (``evo/app/dataset.py``), not a best prompt."""

    def __init__(self, job_id: str, status: str, algorithm: str) -> None:
        LookupError.__init__(self, f"job {job_id} ran {algorithm}, whose result is a data set, "
                                   "not a best prompt: export it with --format jsonl or hf")
        self.job_id, self.status = job_id, status


def best_on_dev(store: Any, job: Any, top: int) -> list[tuple[Any, Any]]:
    """The best ``top`` candidates on the full dev split, the job's own winner first: where dev
    scores tie, it is the one the job chose (``evo show``, ``result.best`` and the dashboard say
    the same), not whichever the store lists first."""
    board = store.leaderboard(job.id, split="dev", k=top + 50)  # ties of the best score
    winner = getattr(job, "best_candidate_id", None)
    first = [row for row in board if row[0].id == winner]
    return (first + [row for row in board if row[0].id != winner])[:top]


def export_data(store: Any, job: Any, top: int) -> dict[str, Any]:
    """The best ``top`` prompts on the full dev split, with everything needed to reuse them.
    Raises ``NoBestPrompt`` when there is none (``DataSetJob`` for a data-set job)."""
    if is_dataset_algorithm(job.algorithm):
        raise DataSetJob(job.id, job.status, job.algorithm)
    best = best_on_dev(store, job, top)
    if not best:
        raise NoBestPrompt(job.id, job.status)
    spec = job.spec or {}
    stats = job.stats or {}
    prompts = []
    for cand, ev in best:
        tests = [e for e in store.evaluations(job.id, split="test") if e.candidate_id == cand.id]
        ancestry = store.ancestry(cand.id)
        if cand.kind == "soft_prompt":  # its text is a readable approximation: what it is
            soft = {k: cand.meta.get(k) for k in ("z", "projection", "norm", "model_file",
                                                  "model_sha256")}
            extra: dict[str, Any] = {"kind": cand.kind, "soft_prompt": soft}
        else:
            extra = {}
        prompts.append(
            {
                **extra,
                "prompt": cand.text,
                "candidate_id": cand.id,
                "dev_score": ev.value,
                "dev_examples": ev.n,
                "test_score": tests[-1].value if tests else None,
                # per test example, to pair with another prompt's (final-phase prompts only)
                "test_outcomes": [
                    {"example_id": o.example_id, "score": o.score, "prediction": o.prediction,
                     **({"judge": o.judge} if o.judge else {})}  # metric judge: its verdict
                    for o in store.outcomes(cand.id, "test")
                ],
                "generation": cand.generation,
                "operator": cand.operator,
                # one of the prompts the job started from: the search found none better
                "seed_prompt": cand.operator == SEED,
                "lineage": {
                    "ancestors": len(ancestry),
                    "operators": sorted({a.operator for a in ancestry} | {cand.operator}),
                    "depth": cand.generation,
                    # how many ancestors each operator made (seeds: "seed"), the prompt left out
                    "ancestor_operators": dict(sorted(Counter(a.operator
                                                              for a in ancestry).items())),
                },
            }
        )
    models = spec.get("models", {})
    # two objectives: the finalists no other beats on both, with each one's score and cost per use
    front = {"pareto": stats["pareto"]} if stats.get("pareto") else {}
    return {
        "job_id": job.id,
        "name": job.name,
        "status": job.status,
        "task": job.task,
        "algorithm": job.algorithm,
        "seed": job.seed,
        "model": {k: {f: v for f, v in m.items() if f in ("provider", "model", "base_url")}
                  for k, m in models.items() if isinstance(m, dict)},
        # what the prompts are used with: the template, the labels and their answer words
        "task_format": task_format(spec.get("task", job.task), stats),
        "seed_prompt_scores": {"dev": stats.get("seed_dev"), "test": stats.get("seed_test")},
        # the paired test of the winner against the best seed on test (evo/significance.py)
        "versus_seed": stats.get("vs_seed"),
        # answers per label of the winner and the best seed on test, against the true labels
        "label_bias": stats.get("label_bias"),
        "cost": {k: stats.get(k) for k in ("calls", "cached", "tokens", "usd", "elapsed_s")},
        "prompts": prompts,
        **front,
    }


def render_export(store: Any, job: Any, fmt: str, top: int = 1) -> str:
    data = export_data(store, job, top)
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    if fmt == "txt":
        return "\n\n".join(p["prompt"] for p in data["prompts"])
    if fmt == "md":
        return markdown(data)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
