"""Can a model judge the built-in summary task? Readable verdicts and whether they tell a
reference summary from a wrong one.

    evo bench judge [--examples 10] [--base-url URL --model NAME] [--out FILE.json]

On the first dev examples of ``summary``, the task's rubric (pointwise, one call per criterion)
judges two answers per example with the bundled model (or the endpoint of ``--base-url``): the
reference summary, and a wrong one (the reference of another example). It prints how many
verdicts could be read, the mean score of each kind of answer, and on how many examples the
reference scored higher, lower or the same. A judge worth its calls reads well and ranks the
reference above the wrong answer on most examples.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from bench.common import write_record
from evo import judge
from evo.spec import ModelSpec
from evo.task import load_task
from workers.llm import make_client


async def measure(examples: int, model: ModelSpec) -> dict:
    task = load_task("summary")
    rubric = task.metric.rubric  # type: ignore[attr-defined]
    client = make_client(model)
    dev = task.split("dev")[:examples]
    kinds = {"reference": [ex.target for ex in dev],
             "wrong": [dev[(i + 1) % len(dev)].target for i in range(len(dev))]}
    start = time.perf_counter()
    scores: dict[str, list[float | None]] = {}
    for kind, answers in kinds.items():
        scores[kind] = []
        for ex, answer in zip(dev, answers, strict=True):
            requests = judge.pointwise_requests(rubric, task.description, ex.input, answer,
                                                ex.target)
            texts = [judge.answer_of(q, (await client.call(q)).text) for q in requests]
            scores[kind].append(judge.pointwise_verdict(texts, rubric).value)
    both = [(r, w) for r, w in zip(scores["reference"], scores["wrong"], strict=True)
            if r is not None and w is not None]
    calls = 2 * len(dev) * len(rubric.criteria)
    return {
        "examples": len(dev), "calls": calls,
        "readable": {k: sum(v is not None for v in s) for k, s in scores.items()},
        "mean": {k: (sum(x for x in s if x is not None) / max(1, sum(x is not None for x in s)))
                 for k, s in scores.items()},
        "reference_higher": sum(r > w for r, w in both),
        "reference_lower": sum(r < w for r, w in both),
        "same": sum(r == w for r, w in both),
        "seconds": round(time.perf_counter() - start, 1),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="evo bench judge", description=__doc__.splitlines()[0])
    ap.add_argument("--examples", type=int, default=10)
    ap.add_argument("--base-url", help="an OpenAI-compatible endpoint (default: bundled model)")
    ap.add_argument("--model", default="judge", help="the endpoint's model name")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    model = (ModelSpec(provider="openai", model=args.model, base_url=args.base_url)
             if args.base_url else ModelSpec(provider="local", workers=1))
    found = asyncio.run(measure(args.examples, model))
    r, m = found["readable"], found["mean"]
    n = found["examples"]
    print(f"summary, {n} dev examples, {found['calls']} judge calls, {found['seconds']} s")
    print(f"readable verdicts: reference {r['reference']}/{n}, wrong {r['wrong']}/{n}")
    print(f"mean score: reference {m['reference']:.3f}, wrong {m['wrong']:.3f}")
    print(f"reference scored higher on {found['reference_higher']}, lower on "
          f"{found['reference_lower']}, the same on {found['same']} (both readable)")
    if args.out:
        write_record(args.out, found)


if __name__ == "__main__":
    main()
