"""Whole jobs on the real bundled model: through Ray actors, and in process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evo.app.settings import Settings
from evo.task import load_task
from storage import Store
from workers.runner import optimize

pytestmark = pytest.mark.model


def small_copy(tmp_path: Path, name: str, n: int = 8) -> dict:
    """The built-in task with each split cut to ``n`` examples: a real-model job takes seconds."""
    task = load_task(name)
    paths = {}
    for split in ("train", "dev", "test"):
        path = tmp_path / f"{name}.{split}.jsonl"
        rows = [{"id": e.id, "input": e.input, "target": e.target} for e in task.split(split)[:n]]
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        paths[split] = str(path)
    return {"builtin": name, "data": paths}


@pytest.fixture
def ray_cluster():
    import ray

    yield
    if ray.is_initialized():
        ray.shutdown()


def test_ga_job_on_ray_with_local_model(tmp_path: Path, ray_cluster) -> None:
    import ray

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'e2e.db'}", executor="ray")
    spec = {
        "task": small_copy(tmp_path, "sentiment"),
        "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1},
        "models": {"task": {"provider": "local", "workers": 2}},
        "evaluation": {"top_k": 1},
        "budget": {"calls": 400},
        "seed": 3,
    }
    result = optimize(spec, settings=settings)
    assert ray.is_initialized()  # the workers were Ray actors
    assert result.status == "completed"
    with Store(settings.database_url) as store:
        cands = store.candidates(result.job_id)
        calls = store.llm_calls(result.job_id)
        job = store.get_job(result.job_id)
    assert len(cands) >= 3 and {c.operator for c in cands} >= {"seed"}
    assert all("smollm2" in c.model.lower() for c in calls)
    evaluations = [c for c in calls if c.purpose == "evaluate"]
    assert evaluations and all(c.prompt_tokens > 0 for c in evaluations if not c.cached)
    assert job.stats["calls"] == sum(not c.cached for c in calls) <= 400
    assert result.best is not None and result.best.test is not None
    assert 0.0 <= result.best.dev <= 1.0


def test_opro_job_in_process_with_local_model(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'opro.db'}", executor="inprocess")
    spec = {
        "task": small_copy(tmp_path, "arithmetic", n=6),
        "algorithm": {"name": "opro", "steps": 1, "samples_per_step": 2, "exemplars": 2},
        "models": {"task": {"provider": "local", "workers": 1}},
        "evaluation": {"top_k": 1},
        "budget": {"calls": 300},
    }
    result = optimize(spec, settings=settings)
    assert result.status == "completed"
    with Store(settings.database_url) as store:
        ops = {c.operator for c in store.candidates(result.job_id)}
        purposes = {c.purpose for c in store.llm_calls(result.job_id)}
    assert "seed" in ops and {"evaluate", "opro_step"} <= purposes


def test_eoh_job_with_local_model(tmp_path: Path) -> None:
    """The small model rarely writes a working heuristic; the job must still end cleanly."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'eoh.db'}", executor="inprocess")
    spec = {
        "task": "binpacking",
        "algorithm": {"name": "eoh", "population": 2, "generations": 1, "per_strategy": 1,
                      "strategies": ["e1", "m1"], "max_tokens": 160},
        "models": {"task": {"provider": "local", "workers": 1}},
        "evaluation": {"top_k": 1},
        "budget": {"calls": 20},
    }
    result = optimize(spec, settings=settings)
    assert result.status == "completed"
    assert result.best is not None and result.best.test is not None  # a seed at worst
    with Store(settings.database_url) as store:
        calls = store.llm_calls(result.job_id)
    assert {c.purpose for c in calls} <= {"e1", "m1"} and 1 <= len(calls) <= 20
