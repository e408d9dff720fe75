"""FunSearch throughput: samples and sandbox evaluations per second on the local Ray cluster.

    python -m bench.funsearch [--proposer scripted local] [--problem binpacking]
                              [--generations 4] [--islands 4] [--prompts 4] [--samples 4]
                              [--executor ray|inprocess] [--max-tokens 160]

A FunSearch job runs through the real stack (``workers.runner.optimize``: Ray actors for the
model, the store, events, the sandbox) with one of two proposers:

- ``scripted``: an OpenAI-compatible ``/v1/completions`` endpoint on loopback, in this process,
  that answers each best-shot prompt at once with a function body drawn from fixed families
  with random parameters (bin packing: Weibull-shaped priorities and best-fit variants; TSP:
  nearest-neighbour variants), one body in eight that does not parse. It costs next to nothing,
  so the figures are Evo's own ceiling: dispatch through Ray, parsing, the sandbox and the store.
- ``local``: the bundled model (SmolLM2-135M-Instruct) in completion mode, one worker per core.

Samples are the best-shot calls paid during the search; sandbox evaluations are the programs
run on the search split, each a fresh sandboxed process. Each generation first samples (all its
prompts at once), then runs what parsed (as many sandboxes at a time as there are cores), so
each rate is over the time the search spent in that step: samples/s over the union of the
spans of ``generate`` calls, runs/s over those of ``evaluate`` calls, both after the seeds and
before the final phase. "search s" is that whole phase, from the job's own events.

Then, per proposer: how many samples were valid Python, how many ran, how many scored the same
as the best seed on the search split and how many better, and the best score against samples.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.common import table

# per problem: three families of function bodies with parameters, and one that does not parse
BODIES = {
    "binpacking": (
        "\n    left = bins - item\n    return -left * np.exp(-(bins / {s}) ** {k})\n",
        "\n    return -(bins - item) * {s}\n",
        "\n    left = bins - item\n    return -left / (bins ** {p})\n",
        "\n    return (bins -\n",
    ),
    "tsp": (
        "\n    d = distances[current, unvisited] + {p} / {s} * distances[start, unvisited]\n"
        "    return int(unvisited[np.argmin(d)])\n",
        "\n    d = distances[current, unvisited] ** {k}\n    return int(unvisited[np.argmin(d)])\n",
        "\n    near = np.sort(distances[unvisited][:, unvisited], axis=1)[:, 1:{k} + 1].mean(1)\n"
        "    d = distances[current, unvisited] - {p} / 10 * near\n"
        "    return int(unvisited[np.argmin(d)])\n",
        "\n    return int(unvisited[np.argmin(\n",
    ),
}


def propose(problem: str, prompt: str) -> str:
    """A function body for a best-shot prompt, the same for the same prompt."""
    bodies = BODIES[problem]
    rng = random.Random(hashlib.sha256(prompt.encode()).digest())
    body = bodies[0] if rng.random() < 0.4 else rng.choice(bodies[1:])
    if body == bodies[3] and rng.random() < 0.5:  # one in eight does not parse
        body = bodies[1]
    return body.format(s=rng.randint(25, 70), k=rng.choice((2, 3, 4)),
                       p=round(rng.uniform(1, 5), 1))


@contextmanager
def scripted_endpoint(problem: str) -> Iterator[str]:
    """A loopback ``/v1/completions`` endpoint answering with ``propose``; its base URL."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
            # the client numbers its samples with a per-call seed: part of what is proposed
            text = propose(problem, f"{body.get('prompt', '')}\x00{body.get('seed')}")
            reply = {"id": "cmpl", "object": "text_completion", "model": body.get("model"),
                     "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": len(str(body.get("prompt", ""))) // 4,
                               "completion_tokens": len(text) // 4,
                               "total_tokens": 0}}
            payload = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def timed_steps() -> Iterator[dict[str, list[tuple[float, float]]]]:
    """Spans of the engine's ``generate`` and ``evaluate`` calls in this process (the driver)."""
    from workers.search import Search

    spans: dict[str, list[tuple[float, float]]] = {"generate": [], "evaluate": []}
    originals = {name: getattr(Search, name) for name in spans}

    def timed(name: str) -> Any:
        async def wrapper(self: Search, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await originals[name](self, *args, **kwargs)
            finally:
                spans[name].append((start, time.perf_counter()))
        return wrapper

    for name in spans:
        setattr(Search, name, timed(name))
    try:
        yield spans
    finally:
        for name, original in originals.items():
            setattr(Search, name, original)


def union_length(spans: Sequence[tuple[float, float]], after: float, before: float) -> float:
    total, reach = 0.0, after
    for start, end in sorted(spans):
        start, end = max(start, reach), min(end, before)
        if end > start:
            total += end - start
            reach = end
    return total


class Probe:
    """Times the search phase from the job's events and counts its sandbox runs."""

    def __init__(self) -> None:
        self.start: float | None = None
        self.end: float | None = None
        self.runs = 0

    def __call__(self, event: Any) -> None:
        kind = type(event).__name__
        if kind == "GenerationDone" and event.generation == 0 and self.start is None:
            self.start = time.perf_counter()
        elif kind == "PhaseChanged" and event.phase == "final":
            self.end = time.perf_counter()
        elif (kind == "CandidateScored" and self.start is not None and self.end is None
              and event.operator != "seed"):
            self.runs += 1

    @property
    def seconds(self) -> float:
        assert self.start is not None and self.end is not None
        return self.end - self.start


def run_one(args: argparse.Namespace, proposer: str, folder: Path) -> dict[str, Any]:
    from evo.app.settings import Settings
    from storage import Store
    from workers.runner import optimize

    settings = Settings(database_url=f"sqlite:///{folder / f'{proposer}.db'}",
                        executor=args.executor)
    algorithm = {"name": "funsearch", "generations": args.generations, "islands": args.islands,
                 "prompts": args.prompts, "samples_per_prompt": args.samples,
                 "max_tokens": args.max_tokens, "reset_every": max(1, args.generations // 2)}
    spec: dict[str, Any] = {"task": args.problem, "algorithm": algorithm,
                            "evaluation": {"top_k": 1, "test": False},
                            "budget": {"calls": 100_000}, "seed": args.seed}
    probe = Probe()
    with scripted_endpoint(args.problem) as url:
        if proposer == "scripted":
            spec["models"] = {"task": {"provider": "openai", "model": "proposer", "base_url": url,
                                       "mode": "completion", "concurrency": 64}}
        else:
            spec["models"] = {"task": {"provider": "local", "mode": "completion"}}
        wall = time.perf_counter()
        with timed_steps() as spans:
            result = optimize(spec, settings=settings, subscribe=[probe])
        wall = time.perf_counter() - wall
    assert result.status == "completed", result.reason
    with Store(settings.database_url) as store:
        samples = [c for c in store.llm_calls(result.job_id) if c.purpose == "best_shot"]
        cands = {c.id: c for c in store.candidates(result.job_id)}
        runs = [e for e in store.evaluations(result.job_id) if e.split == "train"]
    rejected = result.stats.get("rejected", {})
    failed_runs = sum(n for k, n in rejected.items() if ":run_failed" in k)
    repeats = sum(n for k, n in rejected.items() if k.split(":")[1] in ("unchanged", "duplicate"))
    unusable = sum(n for k, n in rejected.items()
                   if k.split(":")[1] in ("syntax_error", "empty", "call_failed"))
    seed = max(e.value for e in runs if cands[e.candidate_id].operator == "seed" and e.n > 0)
    ran = [e for e in runs if cands[e.candidate_id].operator == "best_shot" and e.n > 0]
    per_generation = args.prompts * args.samples
    curve, best = [], seed
    for g in range(1, args.generations + 1):
        best = max([best] + [e.value for e in ran if cands[e.candidate_id].generation == g])
        curve.append((g * per_generation, best))
    assert probe.start is not None and probe.end is not None
    sampling = union_length(spans["generate"], probe.start, probe.end)
    running = union_length(spans["evaluate"], probe.start, probe.end)
    return {
        "proposer": proposer,
        "samples": len(samples),
        "repeats": repeats,
        "runs": probe.runs,
        "ran": probe.runs - failed_runs,
        "search_s": probe.seconds,
        "sampling_s": sampling,
        "samples_per_s": len(samples) / sampling,
        "running_s": running,
        "runs_per_s": probe.runs / running,
        "job_s": wall,
        "best_train": result.stats.get("best_search"),
        "valid": len(samples) - unusable,
        "equal": sum(abs(e.value - seed) < 1e-12 for e in ran),
        "better": sum(e.value > seed + 1e-12 for e in ran),
        "seed_train": seed,
        "curve": curve,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="evo bench funsearch",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--proposer", nargs="+", choices=("scripted", "local"),
                        default=["scripted", "local"])
    parser.add_argument("--problem", choices=("binpacking", "tsp"), default="binpacking")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--islands", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=4, help="prompts per generation")
    parser.add_argument("--samples", type=int, default=4, help="completions per prompt")
    parser.add_argument("--max-tokens", type=int, default=160)
    parser.add_argument("--executor", choices=("ray", "inprocess"), default="ray")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    args = parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for proposer in args.proposer:
            rows.append(run_one(args, proposer, Path(folder)))
            print(f"{proposer}: done", file=sys.stderr, flush=True)
    print(f"FunSearch on {args.problem}, executor {args.executor}: {args.generations} "
          f"generations x {args.prompts} prompts x {args.samples} samples, "
          f"{args.islands} islands")
    print(table(
        ["proposer", "samples", "sandbox runs", "ran", "search s", "sampling s",
         "samples/s", "running s", "runs/s", "job s", "best train objective"],
        [[r["proposer"], r["samples"], r["runs"], r["ran"], r["search_s"],
          r["sampling_s"], r["samples_per_s"], r["running_s"], r["runs_per_s"], r["job_s"],
          f"{-r['best_train']:.5f}"] for r in rows],
    ))
    for r in rows:
        print(f"\n{r['proposer']}: of {r['samples']} samples {r['valid']} valid Python "
              f"({r['repeats']} repeating a program held, not run again), {r['runs']} run, "
              f"{r['ran']} ran, {r['equal']} equal to the best seed, {r['better']} better "
              f"(train objective, lower is better: the best seed {-r['seed_train']:.5f})")
        print(table(["samples", "best train objective"],
                    [[n, f"{-v:.5f}"] for n, v in r["curve"]]))
    return rows


if __name__ == "__main__":
    main()
