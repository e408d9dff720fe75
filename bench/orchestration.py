"""Orchestration efficiency: a whole EvoPrompt-GA job against an endpoint of known speed.

    python -m bench.orchestration [--concurrency 16 64 256] [--latency-ms 100] [--dev 100]
                                  [--test 100] [--population 10] [--generations 5]
                                  [--workers W] [--per-worker K] [--store sqlite|postgres]
                                  [--redis URL] [--no-baseline] [--profile FILE]

A fake OpenAI-compatible endpoint on loopback (its own process) answers every request after a
fixed latency L, at most C at a time (the rest queue at the server). Label-scoring requests get
log-probabilities the way ``workers/llm_openai_labels.py`` reads them, meta-LLM requests a rewritten
instruction between the tags the algorithm asked for. The job runs through the real stack
(``workers.runner.optimize``, Ray actors, a store, events) and is compared with

- the ideal wall time, max(paid calls·L/C, rounds·L): no system can beat it, and with
- a bound that also respects the GA's rounds, Σ_rounds ⌈calls_r/C⌉·L: a round (one meta step,
  or one evaluation step) cannot start before the one before it ends, so a 10-call meta round
  costs L however large C is, and C slots answering n requests of L each need ⌈n/C⌉·L (1,000
  calls at C=64: 16 L, not 15.6). No schedule of this job beats it; the first ideal ignores the
  rounds, so at large C it is out of reach (at C=256, 2.44 s against this bound's 3.1 s);
- a baseline: the loop research scripts write (per generation, a ThreadPoolExecutor of C threads
  maps the synchronous openai client over the meta calls, then over candidates × examples).

Rounds are read from the driver: each dispatch of requests to the pool is timed, and
dispatches whose spans overlap, directly or through others, are one round (the children of a
generation ask at once; a request the algorithm makes only after an answer came back starts a
new one). Timed at the server instead, one round whose requests reached it late would count as
two and raise the bound with Evo's own delay. "Between rounds" is the job's wall time with no
request at the server (store writes, bookkeeping, dispatch: the sequential work outside the
rounds). Driver CPU is this process's CPU between the job's start and end events (Ray's threads
in it included; what they burn while idle is measured before the first job and shown apart);
actor and server CPU are read from /proc.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import math
import os
import random
import sys
import tempfile
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import DEFAULT_PG_URL, cpu_of, pg_schema, pids_matching, table

# --- the synthetic task ------------------------------------------------------------------------

LABELS = ("sports", "business", "science", "politics")
KEYWORDS = {
    "sports": ("match", "coach", "league", "stadium", "tournament"),
    "business": ("shares", "profit", "merger", "revenue", "investors"),
    "science": ("telescope", "enzyme", "physics", "fossil", "laboratory"),
    "politics": ("senate", "election", "minister", "treaty", "ballot"),
}
WORD_LABEL = {w: label for label, words in KEYWORDS.items() for w in words}
FILLER = (
    "the", "report", "said", "on", "monday", "that", "after", "a", "long", "week", "of", "talks",
    "in", "city", "officials", "announced", "new", "plan", "while", "people", "waited", "for",
    "more", "news", "about", "what", "comes", "next",
)
MARK = "\n\nText: "  # between the prompt and the input: how the server tells them apart
SEED_PROMPTS = (
    "Which topic is this news item about?",
    "Classify the news item below into one topic.",
    "Read the text and name its topic: sports, business, science or politics.",
)


def write_task(folder: Path, dev: int, test: int, train: int = 10, seed: int = 0) -> dict:
    """JSONL splits of a 4-topic classification task and the task definition for a spec."""
    rng = random.Random(seed)
    paths = {}
    for split, n in (("train", train), ("dev", dev), ("test", test)):
        rows = []
        for i in range(n):
            label = LABELS[rng.randrange(len(LABELS))]
            words = rng.sample(FILLER, 10)
            words.insert(rng.randrange(len(words) + 1), rng.choice(KEYWORDS[label]))
            rows.append({"id": f"{split}-{i}", "text": f"Item {i}: {' '.join(words)}.",
                         "label": label})
        path = folder / f"{split}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths[split] = str(path)
    return {
        "name": "bench-topics",
        "description": "Name the topic of a news item: sports, business, science or politics.",
        "data": paths,
        "columns": {"input": "text", "target": "label"},
        "template": "{prompt}" + MARK + "{input}",
        "labels": list(LABELS),
        "verbalizers": {label: label for label in LABELS},
        "seed_prompts": list(SEED_PROMPTS),
        "metric": "label_accuracy",
    }


# --- the fake endpoint -------------------------------------------------------------------------

OPENERS = ("Read", "Study", "Look at", "Consider", "Examine", "Scan", "Go through", "Check")
OBJECTS = ("the news item", "the text", "the short report", "the passage", "the article",
           "the item", "the story", "the snippet")
ASKS = ("and name its topic", "and say which topic it belongs to", "and pick the one topic that "
        "fits", "and decide its subject area", "and choose the best topic label", "and classify "
        "it by topic", "and tell which section it belongs in", "and label its main theme")
TAILS = ("", " Answer with one word.", " Be brief.", " Use the key nouns as clues.",
         " Reply with the label only.", " Think about who is involved.",
         " Ignore names and places.", " Focus on what happened.")


def _unit(text: str) -> float:
    """A stable pseudo-random number in [0, 1) for a text (crc32 is cheap and fixed)."""
    return zlib.crc32(text.encode()) / 2**32


def fake_answer(body: dict[str, Any]) -> dict[str, Any]:
    """The chat completion the fake endpoint returns for a request body."""
    content = body["messages"][-1]["content"]
    if body.get("logprobs"):
        # a label request: right with a probability set by the prompt, so prompts differ
        prompt, _, rest = content.partition(MARK)
        truth = next((WORD_LABEL[w] for w in rest.split() if w in WORD_LABEL), LABELS[0])
        quality = 0.35 + 0.6 * _unit(prompt)
        draw = _unit(content)
        answer = truth if draw < quality else LABELS[
            (LABELS.index(truth) + 1 + int(draw * 1000) % 3) % len(LABELS)
        ]
        others = [lb for lb in LABELS if lb != answer]
        top = [{"token": answer, "logprob": -0.05, "bytes": None}] + [
            {"token": lb, "logprob": -3.0 - i, "bytes": None} for i, lb in enumerate(others)
        ]
        logprobs: Any = {"content": [{**top[0], "top_logprobs": top}], "refusal": None}
        text, completion = answer, 1
    else:
        # a meta-LLM request: a new instruction, opened by the tag asked for, cut at the stop
        pick = zlib.crc32(f"{body.get('seed')}|{content}".encode())
        parts = []
        for options in (OPENERS, OBJECTS, ASKS, TAILS):
            parts.append(options[pick % len(options)])
            pick //= len(options)
        instruction = f"{parts[0]} {parts[1]} below {parts[2]}.{parts[3]}"
        text = f"<prompt>{instruction}</prompt>"
        for stop in body.get("stop") or ():
            cut = text.find(stop)
            text = text[:cut] if cut != -1 else text
        logprobs, completion = None, len(text) // 4
    return {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "bench"),
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": "stop", "logprobs": logprobs}],
        "usage": {"prompt_tokens": len(content) // 4, "completion_tokens": completion,
                  "total_tokens": len(content) // 4 + completion},
    }


class FakeLLM:
    """Raw asyncio HTTP/1.1 with keep-alive: chat completions after ``latency`` seconds of
    service, ``concurrency`` slots, requests beyond them queued in arrival order; ``/_config``
    sets both (and resets counters), ``/_stats`` reads."""

    def __init__(self) -> None:
        self.latency = 0.1
        self.concurrency = 16
        self.reset()

    def reset(self) -> None:
        self.requests = self.in_flight = self.max_in_flight = self.max_busy = 0
        # when each of the C slots is next free, a heap: a request takes the earliest one
        self.slots = [0.0] * self.concurrency
        self.ends: list[float] = []  # when the requests holding a slot now are done
        self.spans: list[tuple[float, float]] = []  # (arrival, answer) of each request
        self.cpu0 = time.process_time()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                length, close = 0, False
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    name = name.strip().lower()
                    if name == "content-length":
                        length = int(value)
                    elif name == "connection":
                        close = value.strip().lower() == "close"
                body = await reader.readexactly(length) if length else b""
                status, payload = await self.route(method, path, body)
                writer.write(
                    f"HTTP/1.1 {status} OK\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(payload)}\r\n\r\n".encode() + payload
                )
                await writer.drain()
                if close:
                    return
        except ConnectionError:
            return
        finally:
            writer.close()

    async def route(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if path.endswith("/chat/completions"):
            return 200, await self.chat(json.loads(body))
        if path == "/_config":
            conf = json.loads(body)
            self.latency = float(conf["latency_s"])
            self.concurrency = int(conf["concurrency"])
            self.reset()
            return 200, b"{}"
        if path == "/_stats":
            stats = {"requests": self.requests, "max_in_flight": self.max_in_flight,
                     "max_busy": self.max_busy, "cpu_s": time.process_time() - self.cpu0,
                     "busy_s": union_length(self.spans)}
            return 200, json.dumps(stats).encode()
        return 404, b'{"error": {"message": "not found"}}'

    async def chat(self, body: dict[str, Any]) -> bytes:
        """Answer after L of service, FIFO over C slots. The schedule is kept in the server's
        clock, not by waking a queued request once another's answer is written: that hand-off
        waits for this process's event loop, busy with the answers of the wave before, and
        over the 16 waves of a 1,000-request round at C=64 it added 2–4% (1.65–1.70 s against
        1.60–1.64 s now), a delay of the fake server, not of its client."""
        loop = asyncio.get_running_loop()
        arrived = loop.time()
        start = max(arrived, heapq.heappop(self.slots))
        end = start + self.latency
        heapq.heappush(self.slots, end)
        reply = json.dumps(fake_answer(body)).encode()
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if start > arrived:  # queued: count it busy once its slot is its own
                await asyncio.sleep(start - loop.time())
            self.ends = [e for e in self.ends if e > start]
            self.ends.append(end)
            self.max_busy = max(self.max_busy, len(self.ends))
            await asyncio.sleep(end - loop.time())
        finally:
            self.in_flight -= 1
        self.requests += 1
        self.spans.append((arrived, end))
        return reply


def serve_fake(announce: Any = print) -> None:
    """Run the fake endpoint on a free loopback port until killed; announce the port first."""

    async def serve() -> None:
        fake = FakeLLM()
        server = await asyncio.start_server(fake.handle, "127.0.0.1", 0, backlog=4096)
        announce(server.sockets[0].getsockname()[1])
        async with server:
            await server.serve_forever()

    asyncio.run(serve())


class FakeEndpoint:
    """The fake endpoint in a child process, so its CPU is neither the driver's nor the
    baseline's."""

    def __init__(self) -> None:
        import subprocess

        root = Path(__file__).resolve().parents[1]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.orchestration", "--serve-fake"],
            cwd=root, env=env, stdout=subprocess.PIPE, text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the port, once it listens
        if not line.strip().isdigit():
            self.close()
            raise RuntimeError(f"the fake endpoint did not start: {line!r}")
        self.port = int(line)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _control(self, path: str, payload: dict | None = None) -> dict:
        import httpx

        url = f"http://127.0.0.1:{self.port}{path}"
        resp = httpx.post(url, json=payload or {}, timeout=10)
        resp.raise_for_status()
        return dict(resp.json())

    def configure(self, latency_s: float, concurrency: int) -> None:
        self._control("/_config", {"latency_s": latency_s, "concurrency": concurrency})

    def stats(self) -> dict:
        return self._control("/_stats")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except Exception:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> FakeEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- measuring a job ---------------------------------------------------------------------------


def call_rounds(spans: Sequence[tuple[float, float, int]]) -> list[int]:
    """Calls per round: spans (start, end, calls) that overlap, directly or through others,
    are one round."""
    rounds: list[int] = []
    end = -math.inf
    for start, stop, calls in sorted(spans):
        if start > end:
            rounds.append(0)
        rounds[-1] += calls
        end = max(end, stop)
    return rounds


@contextlib.contextmanager
def timed_dispatches() -> Iterator[list[tuple[float, float, int]]]:
    """(start, end, requests) of every ``Pool.call_many`` in this process while the block runs:
    the driver's dispatches of requests to its workers."""
    from workers.pool import Pool

    spans: list[tuple[float, float, int]] = []
    original = Pool.call_many

    async def timed(self: Pool, requests: Sequence[Any]) -> list[Any]:
        start = time.monotonic()
        try:
            return await original(self, requests)
        finally:
            spans.append((start, time.monotonic(), len(requests)))

    Pool.call_many = timed  # type: ignore[method-assign]
    try:
        yield spans
    finally:
        Pool.call_many = original  # type: ignore[method-assign]


def union_length(spans: Sequence[tuple[float, float]]) -> float:
    """Total length covered by the spans (overlaps counted once)."""
    total, start, end = 0.0, -math.inf, -math.inf
    for a, b in sorted(spans):
        if a > end:
            total += max(0.0, end - start) if end > -math.inf else 0.0
            start, end = a, b
        else:
            end = max(end, b)
    return total + (end - start if end > -math.inf else 0.0)


def ideal_times(rounds: Sequence[int], latency: float, c: int) -> tuple[float, float]:
    """(max(calls·L/C, rounds·L), Σ_rounds ⌈calls_r/C⌉·L)."""
    total = sum(rounds)
    loose = max(total * latency / c, len(rounds) * latency)
    by_round = sum(math.ceil(n / c) * latency for n in rounds)
    return loose, by_round


@dataclass
class Probe:
    """Subscribed to the job's events: wall and CPU between its start and end."""

    actor_prefix: str = "ray::LLMWorker"
    events: int = 0
    t0: float = 0.0
    t1: float = 0.0
    cpu0: float = 0.0
    cpu1: float = 0.0
    actors: dict[int, float] = field(default_factory=dict)
    actors_end: dict[int, float] = field(default_factory=dict)

    def __call__(self, event: Any) -> None:
        self.events += 1
        kind = type(event).__name__
        if kind == "JobStarted":
            # Ray workers of the cluster this process started are its grandchildren (raylet);
            # other programs' actors on the machine are left out
            self.actors = cpu_of(pids_matching(self.actor_prefix, ancestor=os.getpid()))
            self.cpu0, self.t0 = time.process_time(), time.perf_counter()
        elif kind == "JobEnded":
            self.t1, self.cpu1 = time.perf_counter(), time.process_time()
            self.actors_end = cpu_of(list(self.actors))

    @property
    def wall(self) -> float:
        return self.t1 - self.t0

    @property
    def cpu(self) -> float:
        return self.cpu1 - self.cpu0

    @property
    def actor_cpu(self) -> float | None:
        if not self.actors:
            return None
        return sum(self.actors_end.get(p, v) - v for p, v in self.actors.items())


def client_config(c: int, batch_size: int, workers: int | None, per_worker: int | None
                  ) -> tuple[int, int]:
    """Actors and per-actor ``concurrency`` that never hold the job below C requests in flight.

    The pool runs ``concurrency // batch_size`` batches per actor at a time; for a remote
    endpoint a batch is any ``batch_size`` requests (no prompt affinity), so up to actors ×
    concurrency are in flight. This asks for batch_size × C in all, far more than C: a round
    goes out at once and the endpoint's queue, not the client, decides the pace, as it would
    with a real server. ``concurrency`` is capped at 1024 per actor, hence more actors for large
    C (at C=256, 2 actors of 1024 gave the same wall time as 4).
    """
    w = workers or max(2, math.ceil(c * batch_size / 1024))
    k = per_worker or min(1024, batch_size * math.ceil(c / w))
    return w, k


def _drop_redis_prefix(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for i in range(0, len(keys), 1000):
            client.delete(*keys[i : i + 1000])
    finally:
        client.close()


def idle_cpu_rate(seconds: float = 3.0) -> float:
    """CPU seconds per second this process spends with no job (Ray's threads, mostly)."""
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    return (time.process_time() - cpu0) / (time.perf_counter() - t0)


def run_evo(args: argparse.Namespace, task_def: dict, endpoint: FakeEndpoint, c: int,
            store: Any, settings: Any, profile_to: Path | None = None) -> dict[str, Any]:
    from workers.runner import optimize

    latency = args.latency_ms / 1000
    workers, per_worker = client_config(c, args.batch_size, args.workers, args.per_worker)
    spec = {
        "name": f"bench-orchestration-c{c}",
        "task": task_def,
        "algorithm": {"name": "evoprompt-ga", "population": args.population,
                      "generations": args.generations},
        "models": {"task": {"provider": "openai", "model": "bench", "base_url": endpoint.base_url,
                            "workers": workers, "concurrency": per_worker}},
        "evaluation": {"top_k": 3, "test": True, "label_scoring": True,
                       "batch_size": args.batch_size},
        # far above what the job needs: the budget is checked on every call, never binding
        "budget": {"calls": 1_000_000},
        "seed": args.seed,
    }
    endpoint.configure(latency, c)
    if settings.redis_url:
        # a namespace per job: a shared cache would answer this job from an earlier one
        settings = settings.model_copy(update={"redis_prefix": f"evo-bench-{uuid.uuid4().hex}:"})
    probe = Probe()
    profiler = None
    if profile_to is not None:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.0005, async_mode="disabled")
        profiler.start()
    started = time.perf_counter()
    try:
        with timed_dispatches() as dispatches:
            result = optimize(spec, store=store, settings=settings, subscribe=[probe])
    finally:
        if settings.redis_url:
            _drop_redis_prefix(settings.redis_url, settings.redis_prefix)
    total = time.perf_counter() - started
    if profiler is not None and profile_to is not None:
        profiler.stop()
        profile_to.write_text(profiler.output_text(unicode=True, show_all=False))
    server = endpoint.stats()
    if result.status != "completed":
        raise RuntimeError(f"the job ended {result.status}: {result.reason}")
    paid = [r for r in store.llm_calls(result.job_id) if not r.cached and r.error is None]
    rounds = call_rounds(dispatches)
    loose, by_round = ideal_times(rounds, latency, c)
    # the job's wall time with no request at the server: store writes, bookkeeping, dispatch
    between = max(0.0, probe.wall - server["busy_s"])
    calls = len(paid)
    actor_cpu = probe.actor_cpu
    return {
        "c": c, "workers": workers, "per_worker": per_worker, "calls": calls,
        "rounds": len(rounds), "ideal_s": loose, "ideal_rounds_s": by_round,
        "wall_s": probe.wall, "startup_s": total - probe.wall, "between_s": between,
        "ratio": loose / probe.wall, "ratio_rounds": by_round / probe.wall,
        "calls_per_s": calls / probe.wall,
        "driver_ms_per_call": 1000 * probe.cpu / max(1, calls),
        "actor_ms_per_call": None if actor_cpu is None else 1000 * actor_cpu / max(1, calls),
        "server_ms_per_call": 1000 * server["cpu_s"] / max(1, server["requests"]),
        "server_requests": server["requests"], "server_max_busy": server["max_busy"],
        "server_max_in_flight": server["max_in_flight"], "events": probe.events,
        "best_dev": result.best.dev if result.best else None,
        "seed_dev": result.seed.dev if result.seed else None,
    }


# --- the baseline: a research-script loop ------------------------------------------------------


def run_baseline(args: argparse.Namespace, task_def: dict, endpoint: FakeEndpoint, c: int
                 ) -> dict[str, Any]:
    """The same GA, the way a research script runs it: synchronous openai client, a thread pool
    of C per step (meta calls, then candidates × examples), nothing recorded."""
    import openai

    from evo.algorithms.evoprompt import CROSSOVER_MUTATION, PARAPHRASE
    from evo.selection import roulette, top_k
    from evo.task import load_task

    task = load_task(_task_spec(task_def))
    latency = args.latency_ms / 1000
    endpoint.configure(latency, c)
    client = openai.OpenAI(base_url=endpoint.base_url, api_key="none", max_retries=2, timeout=60)
    rng = random.Random(args.seed)
    counted = [0]

    def classify(job: tuple[str, Any]) -> float:
        prompt, ex = job
        content = task.render(prompt, ex)  # the same text Evo's task request sends
        out = client.chat.completions.create(
            model="bench", messages=[{"role": "user", "content": content}], max_tokens=1,
            temperature=0.0, logprobs=True, top_logprobs=20)
        top = out.choices[0].logprobs.content[0].top_logprobs  # type: ignore[union-attr]
        best = max((t for t in top if t.token.strip() in task.labels), key=lambda t: t.logprob)
        return 1.0 if best.token.strip() == ex.target else 0.0

    def rewrite(meta: tuple[str, int]) -> str | None:
        text, seed = meta
        out = client.chat.completions.create(
            model="bench", messages=[{"role": "user",
                                      "content": f"{text}\n\nBegin your answer with <prompt>"}],
            max_tokens=120, temperature=1.0, stop=["</prompt>"], seed=seed)
        answer = out.choices[0].message.content or ""
        return answer.split("<prompt>", 1)[-1].strip() or None

    def scores(prompts: list[str], split: str) -> dict[str, float]:
        examples = task.split(split)
        jobs = [(p, ex) for p in prompts for ex in examples]
        with ThreadPoolExecutor(max_workers=c) as pool:
            hits = list(pool.map(classify, jobs))
        counted[0] += len(jobs)
        per = len(examples)
        return {p: sum(hits[i * per:(i + 1) * per]) / per for i, p in enumerate(prompts)}

    def generate(metas: list[str]) -> list[str | None]:
        with ThreadPoolExecutor(max_workers=c) as pool:
            out = list(pool.map(rewrite, [(m, rng.randrange(2**31)) for m in metas]))
        counted[0] += len(metas)
        return out

    cpu0, t0 = time.process_time(), time.perf_counter()
    seeds = list(task.seed_prompts)
    population = list(seeds)
    missing = args.population - len(population)
    made = generate([PARAPHRASE.format(prompt=seeds[i % len(seeds)]) for i in range(missing)])
    population += [m for m in made if m and m not in population]
    fitness = scores(population, "dev")
    for _ in range(args.generations):
        parents = [roulette(rng, population, [fitness[p] for p in population], 2)
                   for _ in range(args.population)]
        made = generate([CROSSOVER_MUTATION.format(task=task.description, parent_a=a,
                                                   parent_b=b) for a, b in parents])
        children = [m for m in dict.fromkeys(made) if m and m not in fitness]
        fitness.update(scores(children, "dev"))
        pool_ = population + children
        population = top_k(pool_, [fitness[p] for p in pool_], args.population)
    best = max(fitness, key=fitness.__getitem__)
    best_seed = max(seeds, key=lambda s: fitness.get(s, 0.0))
    test = scores(list(dict.fromkeys([best, best_seed])), "test")
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    client.close()
    calls = counted[0]
    return {"c": c, "calls": calls, "wall_s": wall, "calls_per_s": calls / wall,
            "cpu_ms_per_call": 1000 * cpu / calls, "best_dev": fitness[best],
            "best_test": test[best]}


def _task_spec(task_def: dict) -> Any:
    from evo.task import TaskSpec

    return TaskSpec.model_validate(task_def)


# --- the run -----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--concurrency", type=int, nargs="+", default=[16, 64, 256],
                   help="server concurrency caps C (one job each)")
    p.add_argument("--latency-ms", type=float, default=100.0, help="L, per request")
    p.add_argument("--dev", type=int, default=100, help="dev examples (the full run: 200)")
    p.add_argument("--test", type=int, default=100, help="test examples")
    p.add_argument("--population", type=int, default=10)
    p.add_argument("--generations", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16, help="evaluation.batch_size")
    p.add_argument("--workers", type=int, default=None, help="actors (default: from C)")
    p.add_argument("--per-worker", type=int, default=None,
                   help="models.task.concurrency per actor (default: enough for C in flight)")
    p.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    p.add_argument("--postgres-url", default=DEFAULT_PG_URL,
                   help="server for --store postgres (a scratch schema is made and dropped)")
    p.add_argument("--redis", default=None, metavar="URL",
                   help="events and response cache on Redis (default: in process)")
    p.add_argument("--no-baseline", action="store_true", help="skip the thread-pool baseline")
    p.add_argument("--profile", type=Path, default=None, metavar="FILE",
                   help="also profile the driver (pyinstrument) in an extra job at the first C, "
                   "left out of the tables; text to FILE")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, list[dict[str, Any]]]:
    """Run the benchmark, print its tables, and return the rows (``evo``, ``baseline``)."""
    args = parse_args(argv)
    if args.serve_fake:  # the child process of FakeEndpoint: none of Evo is loaded there
        serve_fake(lambda port: print(port, flush=True))
        return {}

    import ray

    from evo.app.settings import Settings
    from storage import Store
    from workers.cluster import init_ray

    ours = not ray.is_initialized()
    evo_rows: list[dict[str, Any]] = []
    base_rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="evo-bench-")))
        task_def = write_task(folder, args.dev, args.test, seed=args.seed)
        if args.store == "postgres":
            url = stack.enter_context(pg_schema(args.postgres_url))
        else:
            url = f"sqlite:///{folder / 'orchestration.db'}"
        store = stack.enter_context(Store(url))
        settings = Settings(database_url=url, executor="ray", redis_url=args.redis,
                            ray_address=None)
        endpoint = stack.enter_context(FakeEndpoint())
        if ours:
            stack.callback(ray.shutdown)
        init_ray(settings)  # what the first job would do; its start-up is then not the job's
        idle = idle_cpu_rate()
        print(f"EvoPrompt-GA N={args.population} T={args.generations}, dev={args.dev} "
              f"test={args.test}, L={args.latency_ms:g} ms, store={args.store}, "
              f"events/cache={'redis' if args.redis else 'in process'}, "
              f"batch_size={args.batch_size}; load average {os.getloadavg()[0]:.1f} on "
              f"{os.cpu_count()} CPUs", flush=True)
        if args.profile is not None:
            # a run of its own, left out of the tables: the profiler slows the driver down
            run_evo(args, task_def, endpoint, args.concurrency[0], store, settings, args.profile)
            print(f"  profile of the driver at C={args.concurrency[0]} written to {args.profile}",
                  flush=True)
        for c in args.concurrency:
            evo_rows.append(run_evo(args, task_def, endpoint, c, store, settings))
            row = evo_rows[-1]
            print(f"  C={c}: Evo {row['wall_s']:.2f} s for {row['calls']} calls "
                  f"(+{row['startup_s']:.1f} s start-up)", flush=True)
            if not args.no_baseline:
                base_rows.append(run_baseline(args, task_def, endpoint, c))
                print(f"  C={c}: baseline {base_rows[-1]['wall_s']:.2f} s for "
                      f"{base_rows[-1]['calls']} calls", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    for row in evo_rows:
        row["driver_idle_ms_per_s"] = 1000 * idle
        row["driver_net_ms_per_call"] = row["driver_ms_per_call"] - (
            1000 * idle * row["wall_s"] / max(1, row["calls"]))
    print_report(args, evo_rows, base_rows)
    return {"evo": evo_rows, "baseline": base_rows}


def print_report(args: argparse.Namespace, evo_rows: list[dict[str, Any]],
                 base_rows: list[dict[str, Any]]) -> None:
    print()
    print("Evo (Ray actors, real store). ideal = max(calls·L/C, rounds·L); "
          "by-round ideal = Σ ⌈calls_r/C⌉·L")
    print(table(
        ["C", "actors x conc", "calls", "rounds", "ideal s", "by-round s", "Evo s",
         "between rounds s", "ratio", "by-round ratio", "calls/s", "server max busy"],
        [[r["c"], f"{r['workers']} x {r['per_worker']}", r["calls"], r["rounds"], r["ideal_s"],
          r["ideal_rounds_s"], r["wall_s"], r["between_s"], r["ratio"], r["ratio_rounds"],
          r["calls_per_s"], r["server_max_busy"]] for r in evo_rows],
    ))
    print()
    idle = evo_rows[0]["driver_idle_ms_per_s"] if evo_rows else math.nan
    print(f"CPU per paid call (ms) and the cores it keeps busy: at the achieved rate, and at the "
          f"rate the ideal needs. 'net' leaves out what the driver process burns with no job "
          f"running ({idle:.0f} ms/s, Ray's threads)")
    print(table(
        ["C", "driver ms", "driver net ms", "actors ms", "server ms", "total ms", "cores busy",
         "cores for ideal"],
        [[r["c"], r["driver_ms_per_call"], r["driver_net_ms_per_call"], r["actor_ms_per_call"],
          r["server_ms_per_call"], _total_ms(r), _total_ms(r) * r["calls_per_s"] / 1000,
          _total_ms(r) * r["calls"] / r["ideal_s"] / 1000] for r in evo_rows],
    ))
    worst = min((r["ratio"] for r in evo_rows), default=math.nan)
    worst_rounds = min((r["ratio_rounds"] for r in evo_rows), default=math.nan)
    cpu = max((r["driver_ms_per_call"] for r in evo_rows), default=math.nan)
    net = max((r["driver_net_ms_per_call"] for r in evo_rows), default=math.nan)
    print(f"targets: ratio >= 0.9 at every C: {_verdict(worst >= 0.9)} (worst {worst:.3f}; "
          f"by-round worst {worst_rounds:.3f}); driver CPU <= 0.5 ms/call: "
          f"{_verdict(cpu <= 0.5)} (worst {cpu:.3f} ms; net of idle {net:.3f} ms)")
    if base_rows:
        by_c = {r["c"]: r for r in evo_rows}
        print()
        print("Baseline: per generation a ThreadPoolExecutor(max_workers=C) over the sync openai "
              "client")
        print(table(
            ["C", "calls", "baseline s", "calls/s", "CPU ms/call", "ideal s", "ratio",
             "Evo s", "Evo speed-up"],
            [[b["c"], b["calls"], b["wall_s"], b["calls_per_s"], b["cpu_ms_per_call"],
              by_c[b["c"]]["ideal_s"], by_c[b["c"]]["ideal_s"] / b["wall_s"],
              by_c[b["c"]]["wall_s"], b["wall_s"] / by_c[b["c"]]["wall_s"]]
             for b in base_rows],
        ))


def _total_ms(row: dict[str, Any]) -> float:
    return (row["driver_ms_per_call"] + (row["actor_ms_per_call"] or 0.0)
            + row["server_ms_per_call"])


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


if __name__ == "__main__":
    main()
    sys.exit(0)
