"""BDPL, Black-box Discrete Prompt Learning (Diao et al., TMLR 2023): a prompt of discrete tokens,
each drawn from its own categorical distribution, learned by a variance-reduced policy gradient
from the model's label probabilities alone.

V ← the vocab_size entries (words, short n-grams) of the train inputs with the highest PMI with
    each label, balanced across labels (evo/pmi.py)
score the seed prompts on the training mini-batch B (loss from label log-probabilities)
α ← 0 (n_tokens × |V| logits: p_k = softmax(α_k), uniform)
for t = 1..T:
    draw I prompts j_i ~ Π_k p_k; prompt text = the drawn entries joined by spaces
    L_i ← loss on B of prompt j_i;  L̄ ← mean_i L_i                 (the baseline)
    g_k ← 1/(I−1) Σ_i (L_i − L̄) ∇_{α_k} log p_k[j_{i,k}]              (VR-PGE, evo/categorical.py)
    α ← Adam step down g with learning rate η
the result: the most likely prompt, argmax_j p_k[j] at each position k

Every step also scores its distribution's most likely prompt (operator ``bdpl_mode``): it shows
the distribution's progress, it is what the method returns, and it is the parent of the prompts
sampled from that distribution (``bdpl_sample``). A mode's own parents are the previous mode and
the samples whose losses moved the distribution to it. After the last step the final
distribution's mode is scored too (generation T+1). Every scored prompt is ranked by its loss
(``engine.prefer``), so the finalists are the prompts of lowest loss on B.

With ``prefix: best_seed`` the learned tokens follow the best seed prompt instead of standing
alone: the seed asks the question, the tokens steer the answer (a chat model asked nothing answers
poorly). Racing may stop a sample early; its loss is then the mean over the examples it was given,
a prefix of the random sample B, so still an estimate of its loss on B.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from evo.algorithms.base import Algorithm, Params, Resume, label_problems
from evo.candidate import Candidate, Score
from evo.categorical import Categorical
from evo.engine import SEED, Engine
from evo.losses import Loss, example_loss, mean_loss
from evo.pmi import label_vocabulary
from evo.spec import JobSpec
from evo.task import Task

MODE, SAMPLE = "bdpl_mode", "bdpl_sample"


class BDPLParams(Params):
    steps: int = Field(100, ge=1, le=100_000, description="T, policy-gradient steps at most")
    samples: int = Field(8, ge=2, le=256, description="I, prompts sampled per step (the mean "
                         "of their losses is the baseline)")
    n_tokens: int = Field(20, ge=1, le=200, description="n, discrete tokens in the prompt")
    vocab_size: int = Field(200, ge=1, le=10_000, description="|V|, candidate entries chosen "
                            "by PMI with the labels")
    lr: float = Field(0.1, gt=0.0, le=100.0, description="η, Adam's learning rate on the logits")
    train_subset: int = Field(16, ge=1, description="B, the mini-batch: train examples each "
                              "prompt is scored on (a fixed random sample; "
                              "evaluation.resample_subsets draws a new one each step)")
    loss: Loss = Field("ce", description="ce (cross-entropy), hinge, or accuracy (0/1)")
    max_ngram: int = Field(2, ge=1, le=4, description="longest n-gram (in words) in the vocabulary")
    min_count: int = Field(2, ge=1, le=1000, description="train examples an entry must occur in")
    prefix: Literal["none", "best_seed"] = Field(
        "none", description="none: the prompt is the tokens alone, as in the paper; best_seed: "
        "the tokens follow the best seed prompt")


class BDPL(Algorithm):
    name = "bdpl"
    summary = "BDPL: discrete prompt tokens learned by a variance-reduced policy gradient"
    params_model = BDPLParams
    templates: ClassVar[Mapping[str, str]] = {}
    params: BDPLParams

    @classmethod
    def spec_problems(cls, spec: JobSpec, labels: Sequence[str] | None) -> list[tuple[tuple, str]]:
        return label_problems(cls.name, spec, labels,
                              " and picks its vocabulary by PMI with the labels")

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        task = engine.task
        assert isinstance(task, Task)
        if not task.labels:  # a task defined by data files is only known here
            raise ValueError("bdpl needs a task with labels")
        if resume:
            start, state = resume[0] + 1, resume[1]
        else:
            state = await self.start(engine, task)
            start = 1
        dist = Categorical.from_json(state["policy"])
        for t in range(start, p.steps + 2):
            last = t == p.steps + 1  # the final distribution's mode alone
            # drawn before any call is awaited: a run replays the same whatever order answers
            # come back in
            drawn = (np.zeros((0, p.n_tokens), dtype=int) if last else
                     dist.sample(np.random.default_rng(engine.rng.getrandbits(64)), p.samples))
            parents = engine.lookup([i for i in [state["mode"], *state["samples"]] if i])
            mode = self.candidate(engine, state, MODE, dist.mode(), t, parents)
            samples = [self.candidate(engine, state, SAMPLE, row, t, [mode]) for row in drawn]
            losses = await self.losses(engine, [mode, *samples])
            if not last:
                dist.step(dist.gradient(drawn, losses[1:]), p.lr)
            state |= {
                "policy": dist.to_json(),
                "mode": mode.id,
                "mode_loss": losses[0],
                "samples": [c.id for c in samples],
                "losses": losses[1:],
                "baseline": float(np.mean(losses[1:])) if samples else None,
            }
            await engine.generation_done(t, [mode, *samples], state)

    async def start(self, engine: Engine, task: Task) -> dict[str, Any]:
        """Generation 0: the vocabulary, the seeds scored, the uniform distribution."""
        p = self.params
        train = task.split("train")
        vocabulary = label_vocabulary([e.input for e in train], [e.target for e in train],
                                      task.labels, size=p.vocab_size, max_ngram=p.max_ngram,
                                      min_count=p.min_count)
        if not vocabulary:
            raise ValueError(
                f"bdpl: no word of the {len(train)} train inputs occurs in at least "
                f"{p.min_count} examples and more often with one label than the others; lower "
                "algorithm.min_count or give more training examples")
        seeds = [engine.candidate(s, operator=SEED, generation=0)
                 for s in dict.fromkeys(task.seed_prompts)]
        scores = await engine.evaluate(seeds, "train", p.train_subset)
        if not any(o.label_logprobs for s in scores for o in s.outcomes):
            raise ValueError(
                "bdpl learns from label log-probabilities, and none came back for the seed "
                "prompts' answers: every call failed, or the model's endpoint returns no "
                "log-probabilities")
        seed_losses = self.prefer(engine, seeds, scores)
        best = min(range(len(seeds)), key=seed_losses.__getitem__)
        state = {
            "vocabulary": vocabulary,
            "prefix": seeds[best].text if p.prefix == "best_seed" else "",
            "policy": Categorical.uniform(p.n_tokens, len(vocabulary)).to_json(),
            # the first mode's parent: the seed its text starts from, if any
            "mode": seeds[best].id if p.prefix == "best_seed" else None,
            "samples": [],
        }
        await engine.generation_done(0, seeds, state)
        return state

    def candidate(self, engine: Engine, state: dict[str, Any], operator: str,
                  entries: Sequence[int], t: int, parents: Sequence[Candidate]) -> Candidate:
        vocabulary = state["vocabulary"]
        text = " ".join(vocabulary[int(i)] for i in entries)
        if state["prefix"]:
            text = f"{state['prefix']} {text}"
        return engine.candidate(text, operator=operator, generation=t, parents=parents,
                                meta={"entries": [int(i) for i in entries]})

    async def losses(self, engine: Engine, cands: list[Candidate]) -> list[float]:
        scores = await engine.evaluate(cands, "train", self.params.train_subset)
        return self.prefer(engine, cands, scores)

    def prefer(self, engine: Engine, cands: list[Candidate], scores: list[Score]) -> list[float]:
        """Each candidate's loss, told to the engine as its fitness (lower loss, fitter)."""
        labels = engine.task.labels
        # no outcome to learn from counts as knowing nothing: the uniform guess's loss
        unknown = example_loss(self.params.loss, dict.fromkeys(labels, 0.0), "")
        out = []
        for s in scores:
            loss = mean_loss(self.params.loss, s.outcomes)
            out.append(loss if math.isfinite(loss) else unknown)
        engine.prefer({c.id: -v for c, v in zip(cands, out, strict=True)})
        return out
