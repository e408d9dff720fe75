"""OPRO (Yang et al., ICLR 2024): the optimizer LLM reads the scored trajectory and proposes more.

trajectory ← seed instructions with their scores
repeat for S steps (or until the best has not improved for `patience` steps):
    meta ← best `shown` instructions in ASCENDING score order + a few training exemplars
    sample `samples_per_step` instructions from the optimizer at temperature 1.0
    score each on the training split (or a fixed sample of it, `train_subset`); add them to
    the trajectory

The search scores the train split, as in the paper (``split`` may name another), so its sample is
``train_subset``; the methods that score their search on dev call theirs ``dev_subset``. Either
way the final phase re-scores the finalists on the full dev split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from evo.algorithms.base import Algorithm, Params, Resume
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.meta_prompt import MetaPrompt
from evo.operators import propose
from evo.selection import top_k

META = """Your job is to write an instruction that makes a language model solve a task well.
The task: {task}

Earlier instructions and their scores (0-100), from worst to best:

{trajectory}

How the instruction is used: it is placed at <INS> in each example below.

{exemplars}

Write one new instruction that is different from every instruction above and should score higher \
than all of them. Reply with the instruction only, between <prompt> and </prompt>."""

TRAJECTORY_ENTRY = "<prompt>{prompt}</prompt>\nscore: {score}"
EXEMPLAR = "{example}\ncorrect answer: {target}"


class OPROParams(Params):
    steps: int = Field(20, ge=1, le=1000, description="optimization steps (the paper runs ~200)")
    samples_per_step: int = Field(8, ge=1, le=64, description="instructions sampled per step")
    shown: int = Field(20, ge=1, le=100, description="best instructions shown in the meta-prompt")
    exemplars: int = Field(3, ge=0, le=20, description="training examples shown per step")
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    patience: int | None = Field(
        None, ge=1, description="stop after this many steps without a better best (None: never)"
    )
    train_subset: int | None = Field(
        None, ge=1, description="score the search on a fixed random sample of this size of the "
        "train split (of `split`, when that names another; None: all of it)",
    )
    split: str = Field("train", description="split scored during the search: train, as in the "
                       "paper")


class OPRO(Algorithm):
    name = "opro"
    summary = "OPRO: an optimizer LLM reads the scored trajectory and proposes new instructions"
    params_model = OPROParams
    templates: ClassVar[Mapping[str, str]] = {
        "meta": META,
        "trajectory_entry": TRAJECTORY_ENTRY,
        "exemplar": EXEMPLAR,
    }
    params: OPROParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        trajectory: list[Candidate] = []
        score: dict[str, float] = {}
        if resume:
            start, state = resume[0] + 1, resume[1]
            trajectory, score = engine.lookup(state["trajectory"]), state["score"]
            best, stale = state["best"], state["stale"]
        else:
            start = 1
            seeds = [
                engine.candidate(s, operator=SEED, generation=0)
                for s in dict.fromkeys(engine.task.seed_prompts)
            ]
            await self.score(engine, seeds, trajectory, score)
            best, stale = max(score.values()), 0
            await engine.generation_done(0, seeds, self.state(trajectory, score, best, stale))

        for step in range(start, p.steps + 1):
            if p.patience is not None and stale >= p.patience:
                break
            shown = self.shown(trajectory, score)
            proposals = await propose(
                engine,
                self.meta_prompt(engine, shown, score),
                operator="opro_step",
                originals=[c.text for c in trajectory],
                n=p.samples_per_step,
                temperature=p.temperature,
            )
            new = [
                engine.candidate(x.text, operator="opro_step", generation=step, parents=shown,
                                 source=x.source)
                for x in proposals
            ]
            await self.score(engine, new, trajectory, score)
            top = max(score.values())
            best, stale = (top, 0) if top > best else (best, stale + 1)
            await engine.generation_done(step, new, self.state(trajectory, score, best, stale))

    def shown(self, trajectory: list[Candidate], score: dict[str, float]) -> list[Candidate]:
        """The best ``shown`` instructions, worst first: the strongest sit next to the request."""
        best = top_k(trajectory, [score[c.id] for c in trajectory], self.params.shown)
        return list(reversed(best))

    def meta_prompt(
        self, engine: Engine, shown: list[Candidate], score: dict[str, float]
    ) -> MetaPrompt:
        entries = "\n\n".join(
            self.render("trajectory_entry", prompt=c.text, score=round(100 * score[c.id]))
            for c in shown
        )
        train = engine.task.split("train")
        picks = engine.rng.sample(list(train), min(self.params.exemplars, len(train)))
        exemplars = "\n\n".join(
            self.render(
                "exemplar",
                example=engine.task.template.format(prompt="<INS>", input=ex.input),
                target=engine.task.verbalizers.get(ex.target, ex.target),
            )
            for ex in picks
        )
        return self.meta(
            "meta", task=engine.task.description, trajectory=entries, exemplars=exemplars
        )

    async def score(
        self,
        engine: Engine,
        cands: list[Candidate],
        trajectory: list[Candidate],
        score: dict[str, float],
    ) -> None:
        for s in await engine.evaluate(cands, self.params.split, self.params.train_subset):
            score[s.candidate_id] = s.value
        trajectory.extend(c for c in cands if c.id in score)

    @staticmethod
    def state(
        trajectory: list[Candidate], score: dict[str, float], best: float, stale: int
    ) -> dict:
        return {"trajectory": [c.id for c in trajectory], "score": score, "best": best,
                "stale": stale}
