"""BDPL's loss curve on the bundled model, and the distribution it converged to: one job run as
the quality benchmark runs it (same task cut, spec and budget), read back from its checkpoint.

    python -m bench.bdpl_curve [--task topic] [--calls 540] [--seed 1] [--dev-subset 10]
                               [--dev-limit 50] [--test-limit 100] [--lr 0.1] [--out FILE.json]

Printed per policy-gradient step: the loss of the distribution's most likely prompt (the mode)
and the least and mean loss of the prompts sampled from it, all on the training mini-batch; the
best seed prompt's loss on the same mini-batch for comparison. Then the final distribution: per
position its most likely entries with their probabilities and its entropy as a fraction of the
uniform distribution's (1.00: nothing learned), and the winner of the final phase against the
best seed prompt on full dev (the test scores are the quality benchmark's).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import run_job, table, write_record

TOP = 3  # entries shown per position


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="topic")
    ap.add_argument("--calls", type=int, default=540, help="search budget in LLM calls")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dev-subset", type=int, default=10,
                    help="the training mini-batch (train examples per prompt)")
    ap.add_argument("--dev-limit", type=int, default=50, help="first N dev examples (0: all)")
    ap.add_argument("--test-limit", type=int, default=100, help="first N test examples (0: all)")
    ap.add_argument("--lr", type=float, default=None, help="Adam's learning rate (default: BDPL's)")
    ap.add_argument("--out", type=Path, default=None, help="write the figures as JSON")
    args = ap.parse_args(argv)

    from bench.quality import evo_spec, limited_task, load
    from evo.categorical import Categorical

    with tempfile.TemporaryDirectory() as tmp:
        limits = {k: v for k, v in (("dev", args.dev_limit), ("test", args.test_limit)) if v}
        task: Any = limited_task(args.task, Path(tmp) / "tasks", **limits) if limits else args.task
        loaded = load(task)
        # the quality benchmark's job to the call: its test scores are in its own table
        spec = evo_spec(task, "bdpl", args.calls, args.seed, args.dev_subset, loaded)
        if args.lr is not None:
            spec["algorithm"]["lr"] = args.lr
        result, checkpoint, cands = run_job(spec, Path(tmp))
    state, losses = checkpoint["algorithm"], checkpoint["driver"]["preferred"]
    seed_loss = min(-losses[c.id] for c in cands.values() if c.operator == "seed")
    rows = []
    for t in sorted({c.generation for c in cands.values() if c.generation > 0}):
        mine = [c for c in cands.values() if c.generation == t and c.id in losses]
        mode = [-losses[c.id] for c in mine if c.operator == "bdpl_mode"]
        drawn = [-losses[c.id] for c in mine if c.operator == "bdpl_sample"]
        if not mode and not drawn:  # the budget ran out before this step was scored
            continue
        rows.append([t, round(mode[0], 4) if mode else None,
                     round(min(drawn), 4) if drawn else None,
                     round(statistics.fmean(drawn), 4) if drawn else None])
    dist = Categorical.from_json(state["policy"])
    probs = dist.probs()
    vocabulary = state["vocabulary"]
    uniform = math.log(probs.shape[1])
    positions = []
    for k, p in enumerate(probs):
        top = np.argsort(-p)[:TOP]
        entropy = float(-(p * np.log(p)).sum())
        positions.append({"position": k + 1, "entropy": round(entropy / uniform, 4),
                          "top": [[vocabulary[int(i)], round(float(p[i]), 4)] for i in top]})
    winner, seed = result.best, result.seed
    figures = {
        "task": args.task, "calls": result.stats.get("calls"), "budget": args.calls,
        "seed": args.seed, "steps": sum(1 for r in rows if r[2] is not None),
        "vocabulary": len(vocabulary), "uniform_probability": round(1 / probs.shape[1], 4),
        "seed_loss": round(seed_loss, 4), "curve": rows, "positions": positions,
        "mode": cands[state["mode"]].text,
        "winner": winner.candidate.text if winner else None,
        "winner_operator": winner.candidate.operator if winner else None,
        "winner_dev": winner.dev if winner else None,
        "seed_dev": seed.dev if seed else None,
    }
    print(f"BDPL on {args.task} (first {args.dev_limit} dev, {args.test_limit} test examples), "
          f"search budget {args.calls} calls, seed {args.seed}: {figures['steps']} policy-gradient "
          f"steps, {len(vocabulary)} vocabulary entries, {probs.shape[0]} positions")
    print(f"the best seed prompt's loss on the mini-batch: {seed_loss:.4f}")
    print(table(["step", "mode's loss", "least sampled", "mean sampled"], rows))
    print("\nthe final distribution (entropy / uniform's; top entries with probabilities; "
          f"uniform = {1 / probs.shape[1]:.4f}):")
    print(table(["position", "entropy", "most likely entries"],
                [[q["position"], q["entropy"],
                  ", ".join(f"{w!r} {v:.3f}" for w, v in q["top"])] for q in positions]))
    print(f"\nthe mode: {figures['mode']!r}")
    print(f"winner on full dev: {figures['winner']!r} ({figures['winner_operator']}; dev "
          f"{figures['winner_dev']}); best seed prompt: dev {figures['seed_dev']}; "
          f"{figures['calls']} calls")
    if args.out:
        write_record(args.out, figures)
    return figures


if __name__ == "__main__":
    main()
