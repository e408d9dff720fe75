"""Crash safety of each method's own state: kill the driver with SIGKILL in the middle of a
Promptbreeder, FunSearch, EvoPrompting, Evol-Instruct or Zero-shot EoT search, resume it, and get
the job that never stopped.

As in ``test_resume.py``: the reference is an uninterrupted run of the same spec and seed; a
second run is killed at its N-th model request (``EVO_FAULTS=call:N``), after at least one
checkpoint and before the last one, reaped, resumed by ``evo resume`` in a fresh process, and must
end with the same candidates (their meta included), lineage, scores, paid-call ledger and stats.
The scripted model answers as each method needs (programs that run, instructions, arithmetic):
``tests/scripted_cli.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from storage import Store
from tests.helpers import job_snapshot, run_evo
from workers.runner import reap

SCRIPTED = {"provider": "scripted"}
SPECS: dict[str, dict[str, Any]] = {
    "promptbreeder": {"task": "sentiment", "evaluation": {"top_k": 2},
                      "algorithm": {"population": 4, "generations": 3, "dev_subset": 8,
                                    "context": 2, "crossover_rate": 0.5}},
    "funsearch": {"task": "binpacking", "evaluation": {"top_k": 1},
                  "algorithm": {"generations": 3, "islands": 2, "prompts": 2,
                                "samples_per_prompt": 2, "reset_every": 2,
                                "temperature_period": 5}},
    "evoprompting": {"task": "binpacking", "evaluation": {"top_k": 1},
                     "algorithm": {"rounds": 2, "prompts": 2, "parents": 2, "children": 3,
                                   "survivors": 2}},
    "evol-instruct": {"task": "sentiment", "algorithm": {"rounds": 3, "seeds": 4}},
    "zero-shot-eot": {"task": "arithmetic", "evaluation": {"top_k": 2},
                      "algorithm": {"crossovers": 2, "dev_subset": 6}},
}
# the scripted model's answers for each method (``tests/scripted_cli.py``)
REPLIES = {"promptbreeder": "hashed", "funsearch": "funsearch", "evoprompting": "evoprompting",
           "evol-instruct": "evol-instruct", "zero-shot-eot": "zero-shot-eot"}


def spec_file(folder: Path, method: str) -> Path:
    spec = SPECS[method]
    path = folder / f"{method}.yaml"
    path.write_text(yaml.safe_dump({
        **spec, "algorithm": {"name": method, **spec["algorithm"]},
        "models": {"task": SCRIPTED, "meta": SCRIPTED},
        "budget": {"calls": 20_000}, "seed": 3,
    }))
    return path


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The uninterrupted job of each method, run once for all its fault points."""
    made: dict[str, dict] = {}

    def of(method: str) -> dict:
        if method not in made:
            folder = tmp_path_factory.mktemp(method)
            out = run_evo("run", str(spec_file(folder, method)), db=folder / "ref.db",
                          reply=REPLIES[method])
            assert out.returncode == 0, out.stderr[-2000:]
            made[method] = job_snapshot(folder / "ref.db")
            assert made[method]["status"] == "completed"
        return made[method]

    return of


# (method, fault, the checkpoints that may be the last one stored when the kill comes). The
# driver writes a generation's checkpoint behind its work, waiting for generation g - 1's only at
# the end of generation g (``workers/write_behind.py``): a kill in generation g >= 2 finds g - 2's
# stored, and g - 1's too if its write was quick. Each kill lands after a checkpoint and before
# the search's last one, so the resumed job redoes part of the search.
KILLS = [
    ("promptbreeder", "call:60", (0, 1)),  # generation 2 of 3: its children scored
    ("promptbreeder", "call:80", (1, 2)),  # generation 3: its children scored
    ("funsearch", "call:6", (0, 1)),       # generation 2 of 3: its samples, islands reset after
    ("funsearch", "call:10", (1, 2)),      # generation 3: its samples, islands reset before
    ("evoprompting", "call:9", (0, 1)),    # round 2 of 2: its children
    ("evol-instruct", "call:17", (0, 1)),  # round 2 of 3: its responses
    ("evol-instruct", "call:24", (1, 2)),  # round 3: its responses
    # the pool's generation (the last, so no kill by call count is sure to find generation 0
    # stored): right after the job's third write of paid calls, the first of this generation's
    # calls, which is queued after generation 0's checkpoint and before its own
    ("zero-shot-eot", "paid:3", (0,)),
]


@pytest.mark.parametrize(("method", "fault", "stored"),
                         [pytest.param(*kill, id=f"{kill[0]}-{kill[1]}") for kill in KILLS])
def test_killed_and_resumed_job_is_the_uninterrupted_one(
    tmp_path: Path, reference: Any, method: str, fault: str, stored: tuple[int, ...]
) -> None:
    db = tmp_path / "job.db"
    spec = spec_file(tmp_path, method)
    crashed = run_evo("run", str(spec), db=db, faults=fault, reply=REPLIES[method])
    assert crashed.returncode == -9, (crashed.stdout[-500:], crashed.stderr[-2000:])
    with Store(f"sqlite:///{db}") as store:
        (job,) = store.list_jobs()
        assert job.status == "running"  # what a dead driver leaves behind
        last = store.latest_checkpoint(job.id)
        assert last is not None and last[0] in stored, last and last[0]
        assert reap(store, silent_for_s=0) == [job.id]
    resumed = run_evo("resume", job.id[:8], db=db, reply=REPLIES[method])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = job_snapshot(db)
    assert again["ids_unique"]
    assert again == reference(method)
