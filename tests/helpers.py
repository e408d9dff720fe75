"""A tiny task whose fitness is written into the prompt, so algorithm logic can be checked exactly.

A prompt containing ``q=0.7`` answers correctly exactly the first 70% of the dev examples (the
scripted model reads the example's position from its input). Meta-LLM replies are scripted per test.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evo.candidate import Candidate
from evo.llm import LLMRequest
from evo.metrics import get_metric
from evo.programs import ProgramTask
from evo.task import Example, Task
from storage import Store
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.pool import LocalWorker, Pool
from workers.scripted import ScriptedClient

N_DEV = 10
_Q = re.compile(r"q=([0-9.]+)")


def quality(text: str) -> float:
    m = _Q.search(text)
    return float(m.group(1)) if m else 0.0


def toy_task(seeds: tuple[str, ...] = ("Answer. q=0.2", "Reply. q=0.4")) -> Task:
    def split(name: str, n: int) -> tuple[Example, ...]:
        return tuple(Example(f"{name}{i}", f"item {i} of {n}", "yes" if i % 2 else "no")
                     for i in range(n))

    return Task(
        name="toy",
        description="say yes or no",
        template="{prompt}\n\nInput: {input}\nAnswer:",
        splits={"train": split("train", N_DEV), "dev": split("dev", N_DEV),
                "test": split("test", N_DEV)},
        metric=get_metric("label_accuracy", verbalizers={"yes": "yes", "no": "no"}),
        labels=("yes", "no"),
        verbalizers={"yes": "yes", "no": "no"},
        seed_prompts=seeds,
        max_answer_tokens=2,
    )


def label_reply(request: LLMRequest) -> dict[str, float]:
    """Correct on the first q·n examples of a split, wrong on the rest."""
    text = request.messages[-1].content
    # a soft prompt's quality falls with its distance from z = (0.3, 0.3, ...)
    q = quality(text) if request.soft is None else 1.0 / (
        1.0 + sum((v - 0.3) ** 2 for v in request.soft.z))
    i, n = map(int, re.search(r"item (\d+) of (\d+)", text).groups())
    gold = "yes" if i % 2 else "no"
    right = i < round(q * n)
    answer = gold if right else ("no" if gold == "yes" else "yes")
    return {w: (0.0 if w == answer else -3.0) for w in request.labels}


def draw(request: LLMRequest) -> str:
    """What tells apart the same request asked again: its sample number within the strand of the
    search that asked (see ``evo/gather.py``), e.g. "0" on the main line, "3.1.0" in a task."""
    return ".".join(str(i) for i in (*request.strand, request.sample))


def scripted(meta: Callable[[LLMRequest], str]) -> Callable[[LLMRequest], str | dict]:
    """Label requests are answered by ``label_reply``, generation requests by ``meta``."""

    def reply(request: LLMRequest) -> str | dict:
        return label_reply(request) if request.labels else meta(request)

    return reply


def scripted_job(
    spec: dict,
    meta: Callable[[LLMRequest], str],
    store: Store,
    seeds: tuple[str, ...] | None = None,
    job_id: str | None = None,
    cache: MemoryCache | None = None,
    task: Task | ProgramTask | None = None,
) -> tuple[Driver, ScriptedClient, dict[int, dict]]:
    """A job on the toy task (or ``task``, e.g. a program task with ``spec["task"]`` its name)
    with the scripted model, and the state each generation checkpoints.

    The spec's algorithm parameters are validated as the CLI does; ``meta`` answers the
    generation requests. Give the ``job_id`` of a stored job to resume it, a ``cache`` to share
    one between jobs.
    """
    from evo.problems import PROBLEMS
    from evo.spec import JobSpec
    from evo.spec_io import parse_spec

    merged = {"task": "toy", "evaluation": {"top_k": 2}, "budget": {"calls": 100_000}, **spec}
    # the algorithm's own keys, checked against a built-in task of the same kind
    if isinstance(merged["task"], str) and merged["task"] in PROBLEMS:
        checked = merged["task"]
    else:
        checked = "binpacking" if isinstance(task, ProgramTask) else "sentiment"
    parse_spec({**merged, "task": checked})
    client = ScriptedClient(scripted(meta))
    pool = Pool([LocalWorker(client)], model="scripted")
    task = task or (toy_task(seeds) if seeds else toy_task())
    driver = Driver(JobSpec.model_validate(merged), task, store=store, task_pool=pool,
                    meta_pool=pool, cache=cache if cache is not None else MemoryCache(),
                    job_id=job_id or f"job{random.random():.12f}"[5:])
    states: dict[int, dict] = {}
    original = driver.search.generation_done

    async def done(generation: int, population: Sequence[Candidate], state: dict) -> None:
        states[generation] = state
        await original(generation, population, state)

    driver.search.generation_done = done  # type: ignore[method-assign]
    return driver, client, states


def meta_requests(client: ScriptedClient) -> list[LLMRequest]:
    """The meta-LLM requests a job made, in order (label requests are evaluations)."""
    return [r for r in client.requests if not r.labels]


class Crash(Exception):
    """Stands in for a driver that dies in the middle of a job."""


async def crash_and_resume(
    spec: dict,
    meta: Callable[[LLMRequest], str],
    store: Store,
    seeds: tuple[str, ...] | None,
    crash_at: int,
    crash_in: str = "evaluate",
    task: Task | ProgramTask | None = None,
) -> tuple[str, str]:
    """One job run straight through, and the same job stopped at the start of its
    ``crash_at``-th evaluation (meta calls of that generation already paid) and then resumed by
    a fresh driver from its last checkpoint: the two job ids. ``crash_in="generate"`` stops it
    at its ``crash_at``-th ``generate`` instead (a method that never evaluates)."""
    straight, _, _ = scripted_job(spec, meta, store, seeds, task=task)
    await straight.run()
    crashing, _, _ = scripted_job(spec, meta, store, seeds, task=task)
    original = getattr(crashing.search, crash_in)
    calls = 0

    async def crashing_call(*args: Any, **kwargs: Any) -> list:
        nonlocal calls
        calls += 1
        if calls == crash_at:
            raise Crash
        return await original(*args, **kwargs)

    setattr(crashing.search, crash_in, crashing_call)
    try:
        await crashing.run()
    except Crash:
        pass
    else:
        raise AssertionError(f"the job made fewer than {crash_at} calls of {crash_in}")
    resumed, _, _ = scripted_job(spec, meta, store, seeds, job_id=crashing.job_id, task=task)
    await resumed.run(resume=True)
    return straight.job_id, resumed.job_id


def job_record(store: Store, job_id: str) -> dict:
    """What a job left, with candidate ids replaced by their position (ids differ per job)."""
    cands = store.candidates(job_id)
    index = {c.id: i for i, c in enumerate(cands)}
    job = store.get_job(job_id)
    return {
        "status": job.status,
        "candidates": [(c.text, c.operator, c.generation, tuple(index[p] for p in c.parents),
                        c.meta) for c in cands],
        "scores": sorted((index[e.candidate_id], e.split, e.subset or "", e.value, e.n)
                         for e in store.evaluations(job_id)),
        "calls": job.stats["calls"],
    }


ROOT = Path(__file__).resolve().parents[1]


def run_evo(*args: str, db: Path, faults: str | None = None,
            reply: str | None = None) -> subprocess.CompletedProcess:
    """The ``evo`` command line in a process of its own on the SQLite store ``db``, models in
    process; ``faults`` kills it with SIGKILL there (``workers/faults.py``); ``reply`` names the
    scripted model's answers (``tests/scripted_cli.py``), else the hashed default."""
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "EVO_DATABASE_URL": f"sqlite:///{db}",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    env.pop("EVO_FAULTS", None)
    if faults:
        env["EVO_FAULTS"] = faults
    quiet = ["-q"] if args[0] in ("run", "resume") else []
    entry = ["evo.app.cli"] if reply is None else ["tests.scripted_cli", reply]
    return subprocess.run([sys.executable, "-m", *entry, *args, *quiet], capture_output=True,
                          text=True, env=env, timeout=120, cwd=db.parent)


def job_snapshot(db: Path) -> dict:
    """What the one job in the store ``db`` left, with candidate ids replaced by their position:
    equal for a job that was killed and resumed and one that never stopped."""
    with Store(f"sqlite:///{db}") as store:
        (job,) = store.list_jobs()
        cands = store.candidates(job.id)
        index = {c.id: i for i, c in enumerate(cands)}
        evals = store.evaluations(job.id)
        calls = store.llm_calls(job.id)
        return {
            "status": job.status,
            "candidates": [(c.text, c.operator, c.generation, tuple(index[p] for p in c.parents),
                            c.meta) for c in cands],
            "ids_unique": len({c.id for c in cands}) == len(cands),
            "scores": sorted((index[e.candidate_id], e.split, e.subset or "", e.value, e.n)
                             for e in evals),
            "paid": Counter((c.purpose, c.prompt_tokens) for c in calls if not c.cached),
            "cached": sum(c.cached for c in calls),
            "stats": {k: job.stats.get(k) for k in ("calls", "cached", "tokens", "best_dev",
                                                    "best_test", "seed_dev", "best_search",
                                                    "rejected")},
            "checkpoints": store.latest_checkpoint(job.id)[0],
        }


def inline_key_spec(base_url: str, secret: str):
    """A small job on an OpenAI-compatible endpoint whose key is given inline, not by name."""
    from evo.spec_io import parse_spec

    return parse_spec({
        "task": "sentiment",
        "models": {"task": {"provider": "openai", "model": "m", "base_url": base_url,
                            "api_key_env": "EVO_TEST_UNSET_KEY", "api_key": secret}},
        "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1,
                      "dev_subset": 4},
        "evaluation": {"top_k": 1, "test": False},
        "budget": {"calls": 600},
    })
