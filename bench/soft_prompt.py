"""A soft prompt's cost: label-scoring calls per second for soft-prompt candidates against text
prompts of the same length, on the same examples, on the bundled model.

    python -m bench.soft_prompt [--task sentiment] [--examples 32] [--rounds 5] [--dim 500]

Each round scores one text candidate (a seed prompt) and one soft-prompt candidate of as many
vectors (BBT's start from that seed prompt, moved by a fresh random z, as each CMA-ES sample is)
on the same ``--examples`` dev examples, one batch each, as a job sends a candidate's requests to
one model. Text and soft alternate, so each pass finds in the cache only the chat template's
start, which every candidate of a job shares: the prompt part is decoded afresh for both. The
soft pass includes rebuilding the vectors (A·z + p0) for every candidate; the random projection is
drawn once before timing, as a job draws it once (target: soft ≥ 0.8 of text).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

import numpy as np

from evo.soft_prompt import SoftPrompt
from evo.task import Task, load_task


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="sentiment", help="a built-in classification task")
    ap.add_argument("--examples", type=int, default=32, help="dev examples per candidate")
    ap.add_argument("--rounds", type=int, default=5, help="candidates of each kind")
    ap.add_argument("--dim", type=int, default=500, help="d, dimensions of z")
    ap.add_argument("--threads", type=int, default=1, help="llama.cpp threads")
    args = ap.parse_args(argv)

    from workers.llm_local import LocalLlamaClient

    task = load_task(args.task)
    if not isinstance(task, Task) or not task.labels:
        raise SystemExit(f"{args.task} is not a classification task")
    prompt = task.seed_prompts[0]
    examples = task.split("dev")[: args.examples]
    client = LocalLlamaClient(threads=args.threads)
    rng = np.random.default_rng(0)

    def soft(z: np.ndarray) -> SoftPrompt:
        return SoftPrompt(z=tuple(float(v) for v in z), seed=1, n_tokens=2, sigma=1.0,
                          init="seed_prompt", init_text=prompt, spread=0.5)

    text_requests = [task.request(prompt, ex, label_scoring=True) for ex in examples]
    client.call_batch_sync([task.request("", ex, label_scoring=True, soft=soft(np.zeros(args.dim)))
                            for ex in examples[:2]])  # the projection, drawn once
    k = client.soft_vectors.vectors(soft(np.zeros(args.dim))).shape[0]
    times = {"text": 0.0, "soft": 0.0}
    failed = 0
    for _ in range(args.rounds):
        start = time.perf_counter()
        answers = client.call_batch_sync(text_requests)
        times["text"] += time.perf_counter() - start
        candidate = soft(rng.standard_normal(args.dim))
        start = time.perf_counter()
        answers += client.call_batch_sync([task.request("", ex, label_scoring=True,
                                                        soft=candidate) for ex in examples])
        times["soft"] += time.perf_counter() - start
        failed += sum(a.error is not None for a in answers)
    client.close()
    calls = args.rounds * len(examples)
    rate = {kind: calls / seconds for kind, seconds in times.items()}
    print(f"{args.rounds} candidates of each kind x {len(examples)} {args.task} dev examples; "
          f"prompt of {k} tokens (text) or {k} vectors (soft, d = {args.dim}); "
          f"{args.threads} thread(s); failed calls: {failed}")
    print(f"{'candidate':<12} {'calls/s':>8}")
    for kind in ("text", "soft"):
        print(f"{kind:<12} {rate[kind]:>8.2f}")
    ratio = rate["soft"] / rate["text"]
    print(f"soft / text: {ratio:.2f} (target ≥ 0.8)")
    return {"text_rate": rate["text"], "soft_rate": rate["soft"], "ratio": ratio}


if __name__ == "__main__":
    main()
