"""EvoPrompt-GA (Guo et al., ICLR 2024): a genetic algorithm whose operators are meta-LLM calls.

P0 ← seed prompts, topped up to N with meta-LLM paraphrases;  evaluate P0
for t = 1..T:
    for i = 1..N:   p1, p2 ← roulette(P, fitness)                    (two distinct parents)
                    c_i ← LLM(crossover p1 × p2, then mutate)          (one call, one child)
    evaluate {c_i};  P ← best N of P ∪ {c_i}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from evo.algorithms.base import Params, PopulationAlgorithm, Resume
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.operators import Proposal, propose
from evo.selection import roulette, top_k

# One worked example in each meta-prompt: small optimizer models copy a shown format far more
# reliably than they follow a described one. Its subject is made up (is a "zorb" a "wug" or a
# "dax"?) so that no task's can be mistaken for it, and a proposal that borrows from it is caught
# by words no task uses (``MetaPrompt.echo``).
PARAPHRASE = """Rewrite an instruction in other words. Keep its meaning; make it clear and short.

Instruction: Say whether the zorb below is a wug or a dax.
Rewritten: <prompt>Is the zorb below a wug or a dax? Answer with one word.</prompt>

Instruction: {prompt}
Rewritten:"""

CROSSOVER_MUTATION = """Merge two instructions into one better instruction, then change a few \
words so it is new. Keep it one or two sentences.

Instruction A: Say whether the zorb below is a wug or a dax.
Instruction B: Look at the zorb. Answer wug or dax.
Merged and changed: <prompt>Read the zorb below and reply with wug or dax only.</prompt>

Task: {task}
Instruction A: {parent_a}
Instruction B: {parent_b}
Merged and changed:"""


class EvoPromptParams(Params):
    """What both EvoPrompt variants share."""

    population: int = Field(10, ge=2, le=500, description="N, prompts kept per generation")
    generations: int = Field(10, ge=1, le=1000, description="T")
    dev_subset: int | None = Field(
        None, ge=1, description="score on a fixed random dev sample of this size (None: full dev)"
    )
    attempts: int = Field(2, ge=1, le=5, description="meta-LLM tries per child before giving up")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="meta-LLM sampling temperature")


class GAParams(EvoPromptParams):
    pass


class EvoPrompt(PopulationAlgorithm):
    """What GA and DE share: the initial population (seeds, topped up with paraphrases) and
    fitness (the task metric on dev, or a fixed sample of it)."""

    params: EvoPromptParams

    async def initial_population(self, engine: Engine) -> list[Candidate]:
        seeds = list(dict.fromkeys(engine.task.seed_prompts))[: self.params.population]
        population = [engine.candidate(s, operator=SEED, generation=0) for s in seeds]
        missing = self.params.population - len(population)
        for _ in range(self.params.attempts):
            if missing <= 0:
                break
            sources = [population[i % len(seeds)] for i in range(missing)]
            texts = [c.text for c in population]
            made = await gather(*(self.paraphrase(engine, s, texts) for s in sources))
            for source, proposal in zip(sources, made, strict=True):
                if proposal and proposal.text not in texts:
                    texts.append(proposal.text)
                    population.append(
                        engine.candidate(
                            proposal.text, operator="paraphrase", generation=0,
                            parents=[source], source=proposal.source,
                        )
                    )
            missing = self.params.population - len(population)
        return population

    async def paraphrase(
        self, engine: Engine, source: Candidate, avoid: list[str]
    ) -> Proposal | None:
        out = await propose(
            engine,
            self.meta("paraphrase", prompt=source.text),
            operator="paraphrase",
            originals=avoid,
            temperature=self.params.temperature,
        )
        return out[0] if out else None

    async def fitness(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        scores = await engine.evaluate(cands, "dev", self.params.dev_subset)
        return {s.candidate_id: s.value for s in scores}


class EvoPromptGA(EvoPrompt):
    name = "evoprompt-ga"
    summary = "EvoPrompt GA: roulette parents, LLM crossover+mutation, keep the best N"
    params_model = GAParams
    templates: ClassVar[Mapping[str, str]] = {
        "paraphrase": PARAPHRASE,
        "crossover_mutation": CROSSOVER_MUTATION,
    }
    params: GAParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        start, population, fitness = await self.start(engine, resume)

        for t in range(start, p.generations + 1):
            parents = [
                roulette(engine.rng, population, [fitness[c.id] for c in population], 2)
                for _ in range(p.population)
            ]
            made = await gather(*(self.child(engine, a, b, t) for a, b in parents))
            children = [c for c in made if c is not None]
            fitness.update(await self.fitness(engine, children))
            pool = population + children
            population = top_k(pool, [fitness[c.id] for c in pool], p.population)
            await engine.generation_done(t, population, self.state(population, fitness))

    async def child(
        self, engine: Engine, a: Candidate, b: Candidate, generation: int
    ) -> Candidate | None:
        meta = self.meta(
            "crossover_mutation", task=engine.task.description, parent_a=a.text, parent_b=b.text
        )
        for _ in range(self.params.attempts):
            out = await propose(
                engine,
                meta,
                operator="ga_crossover_mutation",
                originals=(a.text, b.text),
                temperature=self.params.temperature,
            )
            if out:
                return engine.candidate(
                    out[0].text, operator="ga_crossover_mutation", generation=generation,
                    parents=[a, b], source=out[0].source,
                )
        return None
