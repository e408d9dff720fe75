"""Crash safety: kill the driver with SIGKILL at many points, resume, and get the same job.

The reference is an uninterrupted run of the same spec and seed with the scripted model. After a
kill (mid-generation, mid-batch, inside a store transaction) the job is reaped, resumed from its
last checkpoint, and must end with the same candidates, lineage and scores, no duplicate rows,
and a ledger that counts every paid call exactly once.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storage import Store
from tests.helpers import job_snapshot as record
from tests.helpers import run_evo as evo

SPEC = ["--set", "models.task.provider=scripted", "--set", "algorithm.population=4",
        "--set", "algorithm.generations=4", "--set", "algorithm.dev_subset=12",
        "--set", "budget.calls=20000", "--set", "evaluation.top_k=2", "--set", "seed=3"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict:
    db = tmp_path_factory.mktemp("ref") / "ref.db"
    out = evo("run", "quickstart", *SPEC, db=db)
    assert out.returncode == 0, out.stderr
    done = record(db)
    assert done["stats"]["best_search"] is not None
    return done


@pytest.mark.parametrize("fault", [
    "call:5",      # inside the first batch of generation 0
    "call:170",    # mid-batch, later in the search
    "paid:2",      # right after a paid batch was recorded, mid-generation
    "paid:7",
    "commit:3",    # inside the first transaction that records paid calls
    "commit:9",    # inside a later write (a generation flush or a paid batch)
    "commit:15",
    "call:560",    # during the final scoring
    "end",         # scored and stored, before the job's end is written
])
def test_kill_and_resume_gives_the_same_job(tmp_path: Path, reference: dict, fault: str) -> None:
    db = tmp_path / "job.db"
    crashed = evo("run", "quickstart", *SPEC, db=db, faults=fault)
    assert crashed.returncode == -9, (fault, crashed.stdout[-500:], crashed.stderr[-2000:])
    with Store(f"sqlite:///{db}") as store:
        (job,) = store.list_jobs()
        assert job.status == "running"  # what a dead driver leaves behind
    refused = evo("resume", job.id[:8], db=db)
    assert refused.returncode == 2 and "is running" in refused.stderr  # heartbeat too fresh
    reaped = evo("reap", "--after", "0", db=db)
    assert reaped.returncode == 0 and "1 job(s) marked interrupted" in reaped.stdout
    resumed = evo("resume", job.id[:8], db=db)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    again = record(db)
    assert again["ids_unique"]
    assert again == reference


def test_completed_job_does_not_resume(tmp_path: Path) -> None:
    db = tmp_path / "done.db"
    assert evo("run", "quickstart", *SPEC[:4], db=db).returncode == 0
    with Store(f"sqlite:///{db}") as store:
        (job,) = store.list_jobs()
    out = evo("resume", job.id, db=db)
    assert out.returncode == 2 and "is completed" in out.stderr
