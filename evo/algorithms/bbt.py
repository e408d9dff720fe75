"""BBT, Black-Box Tuning (Sun et al., ICML 2022): a soft prompt learned by CMA-ES from the
model's label probabilities alone.

score the seed prompts on a training sample S (loss from label log-probabilities); s* ← the best
p0 ← embeddings of s*'s tokens (init: seed_prompt) or 0 (init: zeros)
A ← a random projection R^d → R^(tokens × n_embd), drawn from the job's seed and scaled by the
    spread of the model's embeddings
CMA-ES over z ∈ R^d, from m = 0 with step size σ and population λ:
for t = 1..T:
    z_1..z_λ ~ N(m, σ² C)
    L_i ← loss on S of the soft prompt A·z_i + p0          (one label-scored call per example)
    update m, σ, C and the evolution paths from the ranking of the L_i
the finalists: the soft prompts of lowest loss

CMA-ES is DEAP's (``deap.cma.Strategy``); its samples are drawn here from a generator seeded per
generation, so that a run replays the same. The checkpoint keeps every generation's losses, the
mean and the step size; a resumed run rebuilds the strategy by updating it with the recorded
losses, which is exact (the same operations on the same numbers) and keeps a checkpoint a few KB
where the covariance alone (d² numbers) would take 2 MB at d = 500.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from deap import base, cma
from pydantic import Field

from evo.algorithms.base import Algorithm, Params, Resume, label_problems
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.losses import Loss, mean_loss
from evo.soft_prompt import Init, SoftPrompt
from evo.spec import JobSpec
from evo.task import Task

OPERATOR = "cma_es"
WORST = 1e6  # the loss of a candidate that could not be scored (JSON holds no infinity)


class BBTParams(Params):
    generations: int = Field(100, ge=1, le=100_000, description="T, CMA-ES generations at most")
    popsize: int = Field(20, ge=2, le=1000, description="λ, soft prompts sampled per generation")
    sigma: float = Field(1.0, gt=0.0, le=100.0, description="σ, CMA-ES's initial step size")
    dim: int = Field(500, ge=1, le=10_000, description="d, dimensions of z")
    n_tokens: int = Field(50, ge=2, le=1024,
                          description="soft vectors when init is zeros (seed_prompt: its tokens)")
    init: Init = Field("seed_prompt", description="p0: the best seed prompt's embeddings, or zeros")
    spread: float = Field(
        0.5, gt=0.0, le=10.0, description="how far the first samples move each soft vector, in "
        "units of the spread of the model's token embeddings (the paper's scaling: 1)")
    shots: int = Field(16, ge=1, le=4096,
                       description="training examples per label in the fitness sample")
    loss: Loss = Field("ce", description="ce (cross-entropy), hinge, or accuracy (0/1)")


class _Loss(base.Fitness):
    weights = (-1.0,)  # lower is better


class _Point(list):
    """A CMA-ES sample as DEAP updates from it: the coordinates and their fitness."""

    def __init__(self, values: Sequence[float]) -> None:
        super().__init__(values)
        self.fitness = _Loss()


class _Strategy(cma.Strategy):
    def sample(self, rng: np.random.Generator) -> list[_Point]:
        """λ points from N(m, σ² C), as ``generate`` draws them, from ``rng`` instead of
        numpy's global generator."""
        arz = rng.standard_normal((self.lambda_, self.dim))
        arz = self.centroid + self.sigma * np.dot(arz, self.BD.T)
        return [_Point(a) for a in arz]


class BBT(Algorithm):
    name = "bbt"
    summary = "BBT: a soft prompt A·z + p0 learned by CMA-ES from label log-probabilities"
    params_model = BBTParams
    templates: ClassVar[Mapping[str, str]] = {}
    kinds = ("prompt",)  # the tasks it runs on; its own candidates are soft prompts
    params: BBTParams

    @classmethod
    def spec_problems(cls, spec: JobSpec, labels: Sequence[str] | None) -> list[tuple[tuple, str]]:
        problems: list[tuple[tuple, str]] = []
        provider = spec.models.task.provider
        if provider not in ("local", "scripted"):
            problems.append((("models", "task", "provider"), (
                f"bbt feeds a soft prompt to the model as input embeddings, which only a local "
                f"GGUF model run by llama.cpp accepts (provider: local); provider {provider!r} "
                "takes text only")))
        return problems + label_problems(cls.name, spec, labels)

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        task = engine.task
        assert isinstance(task, Task)
        sample = min(p.shots * max(1, len(task.labels)), len(task.split("train")))

        async def losses(cands: list[Candidate]) -> list[float]:
            scores = await engine.evaluate(cands, "train", sample)
            out = [mean_loss(p.loss, s.outcomes) for s in scores]
            out = [v if math.isfinite(v) else WORST for v in out]
            engine.prefer({c.id: -v for c, v in zip(cands, out, strict=True)})
            return out

        if resume:
            start, state = resume[0] + 1, resume[1]
        else:
            seeds = [engine.candidate(s, operator=SEED, generation=0)
                     for s in dict.fromkeys(task.seed_prompts)]
            seed_losses = await losses(seeds)
            best = min(range(len(seeds)), key=seed_losses.__getitem__)
            state = {
                "rng": engine.rng.randrange(2**63),  # of every CMA-ES sample and of A
                "init": seeds[best].id,
                "best": [seeds[best].id, seed_losses[best]],
                "seed_loss": seed_losses[best],
                "losses": [],
                "population": [],
            }
            await engine.generation_done(0, seeds, self._state(state, None))
            start = 1
        init = engine.lookup([state["init"]])[0]
        strategy = _Strategy(centroid=[0.0] * p.dim, sigma=p.sigma, lambda_=p.popsize)
        for t, recorded in enumerate(state["losses"], start=1):  # replay: the same strategy
            points = strategy.sample(self._rng(state, t))
            for point, loss in zip(points, recorded, strict=True):
                point.fitness.values = (loss,)
            strategy.update(points)
        if "mean" in state and not np.allclose(strategy.centroid, state["mean"], rtol=0, atol=1e-9):
            raise RuntimeError("bbt: the replayed CMA-ES mean differs from the checkpoint's")
        parent = engine.lookup([state["best"][0]])[0]
        for t in range(start, p.generations + 1):
            points = strategy.sample(self._rng(state, t))
            cands = [self._candidate(engine, state, init, parent, point, t) for point in points]
            found = await losses(cands)
            for point, loss in zip(points, found, strict=True):
                point.fitness.values = (loss,)
            strategy.update(points)
            state["losses"].append(found)
            best = min(range(len(cands)), key=found.__getitem__)
            if found[best] < state["best"][1]:
                state["best"] = [cands[best].id, found[best]]
                parent = cands[best]
            state["population"] = [c.id for c in cands]
            await engine.generation_done(t, cands, self._state(state, strategy))

    def _candidate(self, engine: Engine, state: dict[str, Any], init: Candidate,
                   parent: Candidate, point: Sequence[float], t: int) -> Candidate:
        p = self.params
        soft = SoftPrompt(
            z=tuple(float(v) for v in point), seed=state["rng"] % 2**31, n_tokens=p.n_tokens,
            sigma=p.sigma, init=p.init, init_text=init.text if p.init == "seed_prompt" else "",
            spread=p.spread,
        )
        start = f"“{init.text}”" if p.init == "seed_prompt" else f"{p.n_tokens} zero vectors"
        norm = math.sqrt(sum(v * v for v in soft.z))
        text = f"soft prompt: {start} moved by A·z, |z| = {norm:.3g}"
        return engine.candidate(text, operator=OPERATOR, generation=t, parents=[parent],
                                kind="soft_prompt", meta=soft.to_meta())

    @staticmethod
    def _rng(state: dict[str, Any], t: int) -> np.random.Generator:
        return np.random.default_rng([state["rng"], t])

    @staticmethod
    def _state(state: dict[str, Any], strategy: _Strategy | None) -> dict[str, Any]:
        out = dict(state)
        if strategy is not None:  # for the record (the replay is checked against the mean)
            out["mean"] = [float(v) for v in strategy.centroid]
            out["sigma"] = float(strategy.sigma)
        return out

