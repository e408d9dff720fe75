"""CPU per call of Evo's OpenAI-compatible client, against the openai SDK doing the same calls.

    python -m bench.client_cpu [--calls 2000] [--concurrency 64]

Both send the same label-scoring chat completions (one token, top-20 log-probabilities) to the
orchestration benchmark's fake endpoint (its own process, no latency, no cap), ``--concurrency``
in flight, and the process CPU time per call is compared. This is the work a model actor does per
call, apart from Ray: the figure that bounds how many calls a second one core can drive.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence

import openai

from bench.common import table
from bench.orchestration import MARK, FakeEndpoint
from evo.llm import LLMRequest, Message
from workers.llm_openai import OpenAIClient

LABELS = ("sports", "business", "science", "politics")


def request(i: int) -> LLMRequest:
    text = f"Name the topic of the text.{MARK}Item {i}: the coach praised the league.\n\nAnswer"
    return LLMRequest(messages=(Message("user", text),), labels=LABELS, max_tokens=1)


async def evo_client(base_url: str, calls: int, concurrency: int) -> tuple[float, float]:
    client = OpenAIClient("fake", base_url=base_url, concurrency=concurrency)
    try:
        await asyncio.gather(*(client.call(request(i)) for i in range(min(200, calls))))  # warm
        cpu, wall = time.process_time(), time.perf_counter()
        out = await asyncio.gather(*(client.call(request(i)) for i in range(calls)))
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await client.aclose()
    failed = [r.error for r in out if r.error or not r.label_logprobs]
    if failed:
        raise SystemExit(f"{len(failed)} calls failed: {failed[0]}")
    return cpu, wall


async def sdk_client(base_url: str, calls: int, concurrency: int) -> tuple[float, float]:
    """The plain SDK: what a script calling the endpoint does (and what Evo's client did)."""
    client = openai.AsyncOpenAI(api_key="none", base_url=base_url, max_retries=0)
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        r = request(i)
        async with sem:
            out = await client.chat.completions.create(
                model="fake", messages=[{"role": "user", "content": r.messages[0].content}],
                max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=20)
        assert out.choices[0].logprobs is not None

    try:
        await asyncio.gather(*(one(i) for i in range(min(200, calls))))
        cpu, wall = time.process_time(), time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        return time.process_time() - cpu, time.perf_counter() - wall
    finally:
        await client.close()


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    args = ap.parse_args(argv)
    endpoint = FakeEndpoint()
    try:
        endpoint.configure(0.0, max(args.concurrency, 1))
        evo_cpu, evo_wall = asyncio.run(evo_client(endpoint.base_url, args.calls,
                                                   args.concurrency))
        sdk_cpu, sdk_wall = asyncio.run(sdk_client(endpoint.base_url, args.calls,
                                                   args.concurrency))
    finally:
        endpoint.close()
    n = args.calls
    rows = [
        ("openai SDK (AsyncOpenAI)", sdk_cpu / n * 1000, n / sdk_wall, 1.0),
        ("Evo OpenAIClient", evo_cpu / n * 1000, n / evo_wall, sdk_cpu / evo_cpu),
    ]
    print(f"{n} label-scoring calls, {args.concurrency} in flight, fake endpoint on loopback")
    print(table(["client", "CPU ms/call", "calls/s", "CPU saving × SDK"], rows))
    return {"evo_ms": rows[1][1], "sdk_ms": rows[0][1], "ratio": sdk_cpu / evo_cpu}


if __name__ == "__main__":
    main()
