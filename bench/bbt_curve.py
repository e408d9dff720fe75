"""BBT's loss curve on the bundled model: one job, its training loss per CMA-ES generation, and
where it ended against the best seed prompt.

    python -m bench.bbt_curve [--task sentiment] [--calls 2000] [--popsize 10] [--shots 8]
                              [--dim 500] [--spread 0.5] [--init seed_prompt] [--seed 1]
                              [--out FILE.json]

The job runs as ``evo run`` runs it (the local runtime, Ray workers) with a search budget of
``--calls`` and the usual final phase on top (the best soft prompts and every seed prompt on the
full dev split, the winner and the best seed on test). Printed per generation: the least and the
mean loss of its samples on the training sample, the least loss so far, and CMA-ES's step size.
Then the final scores, and what the best soft prompt reads as (its nearest vocabulary tokens).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.common import run_job, table, write_record


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="sentiment")
    ap.add_argument("--calls", type=int, default=2000, help="search budget in LLM calls")
    ap.add_argument("--popsize", type=int, default=10)
    ap.add_argument("--shots", type=int, default=8, help="training examples per label")
    ap.add_argument("--dim", type=int, default=500)
    ap.add_argument("--spread", type=float, default=0.5)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--init", default="seed_prompt", choices=["seed_prompt", "zeros"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = ap.parse_args(argv)

    from evo.spec import JobSpec
    from evo.task import load_task
    from workers.final import final_reserve

    spec: dict[str, Any] = {
        "name": f"bbt-curve-{args.task}",
        "task": args.task,
        "algorithm": {"name": "bbt", "generations": 10_000, "popsize": args.popsize,
                      "shots": args.shots, "dim": args.dim, "spread": args.spread,
                      "sigma": args.sigma, "init": args.init},
        "models": {"task": {"provider": "local"}},
        "evaluation": {"top_k": 3},
        "seed": args.seed,
    }
    reserve = final_reserve(JobSpec.model_validate(spec), load_task(args.task))
    spec["budget"] = {"calls": args.calls + reserve}
    with tempfile.TemporaryDirectory() as tmp:
        result, checkpoint, cands = run_job(spec, Path(tmp))
    state = checkpoint["algorithm"]
    seed_loss = least = state["seed_loss"]
    rows = []
    for t, losses in enumerate(state["losses"], start=1):
        least = min(least, min(losses))
        rows.append([t, round(min(losses), 4), round(statistics.fmean(losses), 4),
                     round(least, 4)])
    print(f"BBT on {args.task}: d = {args.dim}, λ = {args.popsize}, {args.shots} shots per "
          f"label, spread {args.spread}, init {args.init}; search budget {args.calls} calls, "
          f"seed {args.seed}")
    print(f"the best seed prompt's loss on the training sample: {seed_loss:.4f}")
    print(table(["generation", "least loss", "mean loss", "least so far"], rows))
    best_soft = cands[state["best"][0]]
    winner = result.best
    figures = {
        "task": args.task, "calls": result.stats.get("calls"), "generations": len(rows),
        "seed_loss": seed_loss, "curve": rows, "final_sigma": state.get("sigma"),
        "best_loss": state["best"][1], "best_is_seed": best_soft.kind != "soft_prompt",
        "best_text": best_soft.text,
        "winner": winner.candidate.text if winner else None,
        "winner_kind": winner.candidate.kind if winner else None,
        "winner_dev": winner.dev if winner else None,
        "winner_test": winner.test if winner else None,
        "seed_dev": result.seed.dev if result.seed else None,
        "seed_test": result.seed.test if result.seed else None,
    }
    print(f"CMA-ES step size at the end: {state.get('sigma')}")
    print(f"least loss found: {state['best'][1]:.4f} by {best_soft.text}")
    print(f"winner on full dev: {figures['winner']} (dev {figures['winner_dev']}, test "
          f"{figures['winner_test']}); best seed prompt: dev {figures['seed_dev']}, test "
          f"{figures['seed_test']}; {figures['calls']} calls")
    if args.out:
        write_record(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
