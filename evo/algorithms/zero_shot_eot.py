"""Zero-shot EoT (Jin, Liu, Tan, NLPCC 2024): evolve a pool of chain-of-thought prompts once, then
let the model pick the one that suits each problem, restate the problem guided by it, and answer.

generation 0:  S ← the task's seed prompts;  A, B ← the two seed CoT prompts
               evaluate S ∪ {A, B}
generation 1:  c_1..c_K ← LLM(crossover A × B)                 (K samples of one meta-prompt)
               m_i ← LLM(mutate c_i)                           (one per usable child)
               pool ← A, B, the usable distinct c_i and m_i
               P ← one candidate holding the pool (parents: its members)
               evaluate {c_i} ∪ {m_i} ∪ {P}

Every candidate is answered with the ``eot`` evaluation strategy (``evo/strategies.py``): for each
example the pool candidate first asks the model which of its prompts fits, then restates the
example guided by that prompt and answers the restatement with it (3 calls per example); a
single prompt skips the choice (2 calls). So the leaderboard shows the pool against each of its
members and against the task's own prompts, all answered the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from evo.algorithms.base import Algorithm, Params, Resume
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.operators import Proposal, distinct_new, propose

COT_SEEDS = (
    "Work through the problem one step at a time, writing down each quantity as you go, and "
    "end with the answer.",
    "First say what the question asks for and which facts matter, then make a short plan and "
    "carry it out to reach the answer.",
)

# No worked example: the bundled model copies one (or its first parent) instead of writing anew.
CROSSOVER = """Here are two instructions that tell a solver how to reason its way to an answer.

Instruction A: {parent_a}
Instruction B: {parent_b}

Write one new instruction, different from both, that takes the best idea of each. One or two \
sentences, between <prompt> and </prompt>."""

MUTATION = """Here is an instruction that tells a solver how to reason its way to an answer.

Instruction: {prompt}

Write a new version of it: say it in other words, or add one step that would help. One or two \
sentences, between <prompt> and </prompt>."""


class EoTParams(Params):
    cot_seeds: list[str] = Field(
        list(COT_SEEDS), min_length=2, max_length=2,
        description="the two seed chain-of-thought prompts the pool is evolved from",
    )
    crossovers: int = Field(2, ge=1, le=16, description="K: children of the two seeds, each "
                            "then mutated once")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="meta-LLM sampling temperature")
    dev_subset: int | None = Field(
        None, ge=1, description="score on a fixed random dev sample of this size (None: full dev)"
    )


class ZeroShotEoT(Algorithm):
    name = "zero-shot-eot"
    summary = ("Zero-shot EoT: a pool of CoT prompts bred by crossover and mutation; per "
               "example the model picks one, restates the problem with it, answers")
    params_model = EoTParams
    templates: ClassVar[Mapping[str, str]] = {"crossover": CROSSOVER, "mutation": MUTATION}
    strategy = "eot"
    params: EoTParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        if resume:
            if resume[0] >= 1:
                return  # the pool is made and scored: nothing is left to do
            a, b = engine.lookup(resume[1]["cot_seeds"])
            fitness: dict[str, float] = dict(resume[1]["fitness"])
        else:
            seeds = [engine.candidate(s, operator=SEED, generation=0)
                     for s in dict.fromkeys(engine.task.seed_prompts)]
            a, b = (engine.candidate(s, operator="cot_seed", generation=0) for s in p.cot_seeds)
            fitness = await self.fitness(engine, [*seeds, a, b])
            await engine.generation_done(0, [*seeds, a, b], self.state([a, b], fitness))

        children = await self.crossover(engine, a, b)
        made = await gather(*(self.mutate(engine, c) for c in children))
        mutants = distinct_new(engine, [a.text, b.text, *(c.text for c in children)], made)
        members = [a, b, *children, *mutants]
        pool = engine.candidate("\n".join(c.text for c in members), operator="eot_pool",
                                generation=1, parents=members,
                                meta={"pool": [c.text for c in members]})
        fitness.update(await self.fitness(engine, [*children, *mutants, pool]))
        await engine.generation_done(1, [*children, *mutants, pool], self.state([a, b], fitness))

    async def crossover(self, engine: Engine, a: Candidate, b: Candidate) -> list[Candidate]:
        """K children of the two seeds: samples of one crossover meta-prompt, usable and
        distinct from the seeds and each other."""
        out = await propose(engine, self.meta("crossover", parent_a=a.text, parent_b=b.text),
                            operator="crossover", originals=(a.text, b.text),
                            n=self.params.crossovers, temperature=self.params.temperature)
        return [self.made(engine, x, "crossover", [a, b]) for x in out]

    async def mutate(self, engine: Engine, child: Candidate) -> Candidate | None:
        out = await propose(engine, self.meta("mutation", prompt=child.text),
                            operator="mutation", originals=(child.text,),
                            temperature=self.params.temperature)
        return self.made(engine, out[0], "mutation", [child]) if out else None

    @staticmethod
    def made(engine: Engine, x: Proposal, operator: str, parents: list[Candidate]) -> Candidate:
        return engine.candidate(x.text, operator=operator, generation=1, parents=parents,
                                source=x.source)

    async def fitness(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        scores = await engine.evaluate(cands, "dev", self.params.dev_subset)
        return {s.candidate_id: s.value for s in scores}

    @staticmethod
    def state(cot_seeds: list[Candidate], fitness: dict[str, float]) -> dict[str, Any]:
        return {"cot_seeds": [c.id for c in cot_seeds], "fitness": dict(fitness)}
