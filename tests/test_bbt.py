"""BBT: CMA-ES over z finds a known optimum, replays exactly from its checkpoint, runs and
resumes through the driver, and is refused where it cannot run."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest

from evo.algorithms.bbt import BBT, BBTParams
from evo.app.export_soft import NoSoftPrompt, write_soft_prompt
from evo.candidate import Candidate, Outcome
from evo.soft_prompt import SoftPrompt
from evo.spec_io import SpecError, parse_spec
from evo.testing import FakeEngine
from storage import Store
from tests.helpers import crash_and_resume, job_record, scripted_job, toy_task
from workers.llm_local import bundled_model_path
from workers.soft_prompts import model_sha256, soft_vectors_for

TARGET = (0.8, -0.5, 0.3)


def synthetic(cand: Candidate, split: str) -> list[Outcome]:
    """A loss whose optimum is z = TARGET: the right label's log-probability is minus the
    squared distance to it (a text prompt sits at distance 1)."""
    if cand.kind == "soft_prompt":
        z = SoftPrompt.from_meta(cand.meta).z
        d = sum((a - b) ** 2 for a, b in zip(z, TARGET, strict=True))
    else:
        d = 1.0
    return [Outcome(f"{split}{i}", "yes", "yes", 1.0, None, {"yes": -d, "no": 0.0})
            for i in range(4)]


def bbt(**params: object) -> BBT:
    base = {"dim": 3, "popsize": 10, "sigma": 0.5, "init": "zeros", "n_tokens": 2, "shots": 2}
    return BBT(BBTParams.model_validate({**base, **params}))


async def test_cma_es_finds_the_optimum_of_a_synthetic_loss() -> None:
    engine = FakeEngine(toy_task(), reply=lambda ask: None, outcomes=synthetic)
    await bbt(generations=60).run(engine)
    soft = [c for c in engine.made if c.kind == "soft_prompt"]
    assert len(soft) == 60 * 10 and {c.operator for c in soft} == {"cma_es"}
    best = max(soft, key=lambda c: engine.preferred[c.id])
    z = SoftPrompt.from_meta(best.meta).z
    assert max(abs(a - b) for a, b in zip(z, TARGET, strict=True)) < 0.05
    mean = engine.checkpoints[-1][2]["mean"]
    assert max(abs(a - b) for a, b in zip(mean, TARGET, strict=True)) < 0.05
    # the preference is minus the loss: the cross-entropy at the optimum is log 2
    assert -engine.preferred[best.id] == pytest.approx(math.log(2), abs=1e-2)
    # lineage: each sample's parent is the best candidate found before its generation
    assert soft[0].parents[0] in {c.id for c in engine.made if c.operator == "seed"}


async def test_a_resumed_run_replays_the_strategy_and_samples_the_same() -> None:
    straight = FakeEngine(toy_task(), reply=lambda ask: None, outcomes=synthetic)
    await bbt(generations=6).run(straight)
    engine = FakeEngine(toy_task(), reply=lambda ask: None, outcomes=synthetic)
    await bbt(generations=3).run(engine)
    assert engine.resume_point is not None and engine.resume_point[0] == 3
    await bbt(generations=6).run(engine, engine.resume_point)
    assert [c.meta.get("z") for c in engine.made] == [c.meta.get("z") for c in straight.made]
    assert engine.checkpoints[-1][2]["mean"] == straight.checkpoints[-1][2]["mean"]
    assert engine.checkpoints[-1][2]["sigma"] == straight.checkpoints[-1][2]["sigma"]
    # a checkpoint keeps the losses and the mean, not the d x d covariance
    assert set(straight.checkpoints[-1][2]) == {"rng", "init", "best", "seed_loss", "losses",
                                                 "population", "mean", "sigma"}


async def test_a_checkpoint_that_does_not_replay_is_refused() -> None:
    engine = FakeEngine(toy_task(), reply=lambda ask: None, outcomes=synthetic)
    await bbt(generations=2).run(engine)
    generation, state = engine.resume_point  # type: ignore[misc]
    state["losses"][0][0] += 1.0  # a different history
    with pytest.raises(RuntimeError, match="replayed CMA-ES mean"):
        await bbt(generations=4).run(engine, (generation, state))


SPEC = {"algorithm": {"name": "bbt", "generations": 3, "popsize": 4, "dim": 4, "shots": 3,
                      "init": "zeros", "n_tokens": 2},
        "models": {"task": {"provider": "scripted"}}}


async def test_through_the_driver_soft_prompts_are_scored_and_stored(store: Store) -> None:
    driver, _, states = scripted_job(SPEC, lambda r: "unused", store)
    await driver.run()
    job = store.get_job(driver.job_id)
    assert job.status == "completed"
    cands = store.candidates(driver.job_id)
    soft = [c for c in cands if c.kind == "soft_prompt"]
    assert len(soft) == 3 * 4
    assert all(SoftPrompt.from_meta(c.meta).dim == 4 for c in soft)
    scored = {e.candidate_id for e in store.evaluations(driver.job_id) if e.split == "train"}
    assert {c.id for c in soft} <= scored
    assert max(states) == 3
    # the finalists are the soft prompts of least loss (and the seeds, the baseline)
    assert any(e.split == "dev" and e.candidate_id in {c.id for c in soft}
               for e in store.evaluations(driver.job_id))


async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store) -> None:
    straight, resumed = await crash_and_resume(SPEC, lambda r: "unused", store, None, crash_at=3)
    assert job_record(store, resumed) == job_record(store, straight)


@pytest.mark.parametrize(("change", "path", "words"), [
    ({"models": {"task": {"provider": "openai", "model": "m", "base_url": "http://x"}}},
     "models.task.provider", "input embeddings"),
    ({"evaluation": {"label_scoring": False}}, "evaluation.label_scoring", "label_scoring: true"),
    ({"task": "arithmetic"}, "task", "task with labels"),
])
def test_refused_where_it_cannot_run(change: dict, path: str, words: str) -> None:
    spec = {"task": "sentiment", "algorithm": {"name": "bbt"}, **change}
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    [error] = info.value.errors
    assert error.path == path and words in error.message


async def test_the_best_soft_prompt_exports_as_vectors_with_a_sidecar(
    store: Store, tmp_path: Path
) -> None:
    driver, _, _ = scripted_job(SPEC, lambda r: "unused", store)
    await driver.run()
    job = store.get_job(driver.job_id)
    npy, sidecar = write_soft_prompt(store, job, tmp_path / "out" / "best")
    vectors = np.load(npy)
    meta = json.loads(sidecar.read_text())
    cand = next(c for c in store.candidates(driver.job_id) if c.id == meta["candidate_id"])
    assert cand.kind == "soft_prompt"
    soft = SoftPrompt.from_meta(meta)
    assert soft == SoftPrompt.from_meta(cand.meta)
    assert vectors.dtype == np.float32 and list(vectors.shape) == meta["vectors"]["shape"]
    assert vectors.shape == (2, meta["model"]["n_embd"])  # n_tokens zero vectors, moved
    assert meta["model"]["sha256"] == model_sha256(bundled_model_path())
    again = soft_vectors_for(bundled_model_path()).vectors(soft)
    assert np.array_equal(vectors, again)
    # a soft prompt learned on another model file is not applied to this one
    store_meta = {**cand.meta, "model_sha256": "0" * 64}
    with pytest.raises(NoSoftPrompt, match="is not the one"):
        write_soft_prompt(_OneCandidate(store, cand, store_meta), job, tmp_path / "x")


class _OneCandidate:
    """A store whose leaderboard holds one candidate with other meta."""

    def __init__(self, store: Store, cand: Candidate, meta: dict) -> None:
        self.store, self.cand, self.meta = store, cand, meta

    def leaderboard(self, job_id: str, split: str, k: int) -> list:
        ev = next(e for c, e in self.store.leaderboard(job_id, split=split, k=k)
                  if c.id == self.cand.id)
        return [(dataclasses.replace(self.cand, meta=self.meta), ev)]

    def evaluations(self, job_id: str, split: str) -> list:
        return self.store.evaluations(job_id, split=split)


async def test_an_openai_compatible_client_never_sends_a_soft_prompt_as_text() -> None:
    from workers.llm_openai import OpenAIClient

    task = toy_task()
    soft = SoftPrompt(z=(0.1, 0.2), seed=1, n_tokens=2, sigma=1.0)
    request = task.request("", task.split("dev")[0], label_scoring=True, soft=soft)
    client = OpenAIClient("m", base_url="http://127.0.0.1:9/v1", api_key="k", max_retries=0)
    response = await client.call(request)
    assert response.error is not None and "text only" in response.error
