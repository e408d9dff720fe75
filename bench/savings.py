"""Calls saved by the response cache (a repeated job, a resumed job) and by racing, with the
winner's test score in each mode: saving calls must not cost quality.

    python -m bench.savings [--task topic] [--population 4] [--generations 2] [--model local]
                            [--crash-after 4] [--redis redis://127.0.0.1:6379/0]

Every job runs through the ``evo`` command, as a user runs it, on one store:

- fresh: the job as given (the reference for calls and scores);
- repeated: the same job again with the shared Redis response cache (``--redis``; without it the
  repeat is skipped): every request was answered before;
- resumed: the job killed with SIGKILL after its ``--crash-after``-th paid batch, then
  ``evo resume``: the calls paid before the crash are replayed, not paid again;
- racing: the job with ``evaluation.racing.enabled`` (blocks of 10 examples, 95% sign test).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from storage import Store


def evo(args: Sequence[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "evo.app.cli", *args], capture_output=True,
                          text=True, env=env, timeout=3600)


def job_figures(store: Store, job_id: str) -> dict[str, Any]:
    job = store.get_job(job_id)
    assert job is not None
    paid = [c for c in store.llm_calls(job_id) if not c.cached]
    return {
        "status": job.status,
        "paid": len(paid),
        "cached": job.stats.get("cached", 0),
        "racing_saved": job.stats.get("racing_saved_calls", 0),
        "dev": job.stats.get("best_dev"),
        "test": job.stats.get("best_test"),
    }


def main(argv: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", default="topic")
    ap.add_argument("--population", type=int, default=4)
    ap.add_argument("--generations", type=int, default=2)
    ap.add_argument("--dev-subset", type=int, default=None,
                    help="score the search on a dev sample (racing needs >= 20 examples)")
    ap.add_argument("--model", default="local", choices=["local", "scripted"])
    ap.add_argument("--crash-after", type=int, default=4, help="paid batches before SIGKILL")
    ap.add_argument("--redis", default=os.environ.get("EVO_TEST_REDIS_URL"),
                    help="Redis URL for the shared response cache (repeated-job mode)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    sets = {
        "task": args.task,
        "models.task.provider": args.model,
        "algorithm.name": "evoprompt-ga",
        "algorithm.population": args.population,
        "algorithm.generations": args.generations,
        "evaluation.top_k": 1,
        "budget.calls": 100_000,
        "seed": args.seed,
    }
    if args.dev_subset:
        sets["algorithm.dev_subset"] = args.dev_subset
    flags = [x for k, v in sets.items() for x in ("--set", f"{k}={v}")]
    results: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'savings.db'}"
        env = {**os.environ, "EVO_DATABASE_URL": db, "RAY_AUTH_MODE": "disabled"}
        env.pop("EVO_FAULTS", None)
        env.pop("EVO_REDIS_URL", None)
        redis_env = None
        if args.redis:
            prefix = f"evo-bench-{os.getpid()}:"
            redis_env = {**env, "EVO_REDIS_URL": args.redis, "EVO_REDIS_PREFIX": prefix}

        def run(name: str, extra: Sequence[str] = (), run_env: dict[str, str] | None = None,
                ) -> str:
            out = evo(["run", "quickstart", *flags, *extra, "-q"], run_env or env)
            if out.returncode != 0:
                raise SystemExit(f"{name} failed:\n{out.stderr[-3000:]}")
            return out.stdout.split("job ")[-1].split()[0]

        with Store(db) as store:
            print(f"fresh job ({args.model} model, {args.task}, GA N={args.population} "
                  f"T={args.generations}) ...", flush=True)
            results["fresh"] = job_figures(store, run("fresh", run_env=redis_env))
            if redis_env:
                print("repeated job, shared Redis cache ...", flush=True)
                results["repeated"] = job_figures(store, run("repeated", run_env=redis_env))
                _clear_redis(args.redis, redis_env["EVO_REDIS_PREFIX"])
            print(f"job killed after {args.crash_after} paid batches, then resumed ...",
                  flush=True)
            crashed = evo(["run", "quickstart", *flags, "-q"],
                          {**env, "EVO_FAULTS": f"paid:{args.crash_after}"})
            if crashed.returncode != -9:
                raise SystemExit(f"the crash did not happen: {crashed.stderr[-2000:]}")
            (victim,) = store.list_jobs(status="running")
            before = len([c for c in store.llm_calls(victim.id) if not c.cached])
            evo(["reap", "--after", "0"], env)  # the driver is known dead: no need to wait
            resumed = evo(["resume", victim.id, "-q"], env)
            if resumed.returncode != 0:
                raise SystemExit(f"resume failed:\n{resumed.stderr[-3000:]}")
            results["resumed"] = job_figures(store, victim.id) | {"paid_before_crash": before}
            print("racing ...", flush=True)
            results["racing"] = job_figures(
                store, run("racing", ["--set", "evaluation.racing.enabled=true"]))

    fresh = results["fresh"]["paid"]
    print(f"\n{'mode':<10} {'paid calls':>10} {'calls saved':>12} {'best dev':>9} {'test':>7}"
          "  how")
    for mode, r in results.items():
        if mode == "fresh":
            saved, how = "-", "the reference"
        elif mode == "resumed":
            before = r["paid_before_crash"]
            saved = f"{before}"
            how = (f"{before} calls paid before the kill were replayed, not paid again "
                   f"(total {r['paid']} = fresh {fresh} when none is paid twice; "
                   f"a restart would pay {before + fresh})")
        elif mode == "racing":
            saved = f"{fresh - r['paid']} ({1 - r['paid'] / fresh:.0%})"
            how = f"candidates stopped early (racing_saved_calls={r['racing_saved']})"
        else:
            saved = f"{fresh - r['paid']} ({1 - r['paid'] / fresh:.0%})"
            how = f"{r['cached']} answers from the shared cache"
        print(f"{mode:<10} {r['paid']:>10} {saved:>12} {_f(r['dev']):>9} {_f(r['test']):>7}"
              f"  {how}")
    return results


def _f(v: float | None) -> str:
    return "-" if v is None else f"{v:.3f}"


def _clear_redis(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


if __name__ == "__main__":
    main()
