"""Evaluation strategies side by side: direct, zero-shot CoT and zero-shot EoT on ``arithmetic``.

    evo bench eot [--examples 40] [--split test] [--crossovers 2] [--prompt TEXT]
                  [--model PATH|scripted] [--threads 2] [--seed 0]

First the zero-shot-eot method breeds its pool from its two seed CoT prompts (crossover, then a
mutation of each child), its meta-LLM being the same model; the method runs on the in-memory
engine (``evo.testing.FakeEngine``), which scores nothing, so only the breeding calls are made.
Then the first ``--examples`` examples of the split are answered by each strategy through
``evo.strategies`` and ``workers.chains.lockstep`` (what a job's scoring runs), and scored by the
task's metric. The prompt of the direct and zero-shot-CoT rows, and of "eot (one prompt)", is the
first seed CoT prompt (``--prompt`` to change it); "eot (pool)" chooses among the whole pool.
Calls per example count every call the strategy made, nothing cached. ``--model scripted``
answers with the deterministic stand-in (``workers.scripted``): its figures say nothing of the
strategies, only that the bench runs and what each chain costs.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from collections.abc import Sequence
from functools import partial
from pathlib import Path

from bench.common import table
from evo import strategies
from evo.algorithms.zero_shot_eot import EoTParams, ZeroShotEoT
from evo.llm import LLMRequest, LLMResponse
from evo.task import Example, Task, load_task
from evo.testing import Ask, FakeEngine
from workers.chains import lockstep
from workers.llm_local import LocalLlamaClient, bundled_model_path
from workers.scripted import ScriptedClient


class ScriptedBench(ScriptedClient):
    """The scripted stand-in with what this bench asks of a client."""

    model_path = "scripted"

    async def call_batch(self, requests: Sequence[LLMRequest]) -> list[LLMResponse]:
        return [await self.call(r) for r in requests]


Client = LocalLlamaClient | ScriptedBench


def breed_pool(client: Client, task: Task, crossovers: int, seed: int) -> list[str]:
    """The pool zero-shot-eot makes: its two seeds, the usable crossovers and mutations."""
    asked = 0

    def reply(ask: Ask) -> str | None:
        nonlocal asked
        asked += 1
        request = LLMRequest(ask.messages, ask.max_tokens, ask.temperature, ask.stop, ask.prefill,
                             seed=seed * 1000 + asked)
        response = client.call_sync(request)
        return None if response.error else response.text

    engine = FakeEngine(task, reply=reply, seed=seed)
    asyncio.run(ZeroShotEoT(EoTParams(crossovers=crossovers)).run(engine))
    pool = next(c for c in engine.made if c.operator == "eot_pool")
    print(f"pool bred with {asked} meta calls, {len(pool.meta['pool'])} prompts; rejected: "
          f"{dict(engine.rejections) or 'none'}", flush=True)
    return list(pool.meta["pool"])


def run(client: Client, task: Task, strategy: str, pool: Sequence[str],
        examples: Sequence[Example]) -> dict:
    calls: Counter[str] = Counter()

    async def send(requests: list[LLMRequest], purpose: str,
                   owners: list[str | None]) -> list[LLMResponse]:
        calls[purpose] += len(requests)
        return await client.call_batch(requests)

    async def go() -> list[strategies.Answer]:
        chains = [partial(strategies.answer, strategy, task, pool, ex) for ex in examples]
        return await lockstep(chains, [None] * len(chains), send)

    start = time.perf_counter()
    answers = asyncio.run(go())
    seconds = time.perf_counter() - start
    results = [task.score(ex, a.response) for ex, a in zip(examples, answers, strict=True)]
    notes = Counter(f"{step}:{why}" for a in answers for step, why in a.notes)
    return {
        "accuracy": sum(r.score for r in results) / len(results),
        "unparsed": sum(r.failure is not None for r in results),
        "calls": sum(calls.values()) / len(examples),
        "seconds": seconds,
        "notes": notes,
        "chosen": Counter(a.chosen + 1 for a in answers) if len(pool) > 1 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=40)
    parser.add_argument("--split", default="test")
    parser.add_argument("--crossovers", type=int, default=2)
    parser.add_argument("--prompt", default=None, help="default: the first seed CoT prompt")
    parser.add_argument("--model", default=None,
                        help="a GGUF file, or scripted (default: the bundled model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    task = load_task("arithmetic")
    assert isinstance(task, Task)
    client: Client = (
        ScriptedBench() if args.model == "scripted"
        else LocalLlamaClient(args.model or bundled_model_path(), threads=args.threads,
                              seed=args.seed))
    examples = task.split(args.split)[: args.examples]
    pool = breed_pool(client, task, args.crossovers, args.seed)
    for i, p in enumerate(pool, 1):
        print(f"  {i}. {p}")
    prompt = args.prompt or pool[0]
    rows = []
    for label, strategy, prompts in (
        ("direct", "direct", [prompt]),
        ("zero_shot_cot", "zero_shot_cot", [prompt]),
        ("eot (one prompt)", "eot", [prompt]),
        ("eot (pool)", "eot", pool),
    ):
        r = run(client, task, strategy, prompts, examples)
        rows.append([label, r["accuracy"], r["unparsed"], r["calls"], r["seconds"],
                     ", ".join(f"{k}={v}" for k, v in sorted(r["notes"].items())) or None])
        if r["chosen"] is not None:
            print(f"pool prompts chosen: {dict(sorted(r['chosen'].items()))}", flush=True)
    print(f"\narithmetic, {args.split} split, first {len(examples)} examples, "
          f"{Path(client.model_path).name}, seed {args.seed}")
    print(table(["strategy", "accuracy", "unparsed", "calls/example", "seconds", "fallbacks"],
                rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
