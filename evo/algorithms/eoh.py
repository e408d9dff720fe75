"""EoH, Evolution of Heuristics (Liu et al., ICML 2024): evolve (thought, code) pairs.

    P ← seed programs, topped up to N with I1 (fresh ideas from the problem alone); evaluate P
    for g = 1..G:
        for each strategy s in E1, E2, M1, M2, M3, `per_strategy` times:
            parents ← rank-based draw from P (E1/E2: `parents` of them; M1-M3: one)
            child ← LLM(s, parents' thoughts, code and scores)   → a new (thought, code)
        run the children in the sandbox; a child that fails gets no fitness and is dropped
        P ← best N of P ∪ children (distinct code)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal, get_args

from pydantic import Field

from evo.algorithms.base import Params, PopulationAlgorithm, Resume
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.llm import Message
from evo.operators import program_from_sample
from evo.programs import objective_text
from evo.selection import rank_based, top_k

FORMAT = """Answer in exactly this shape: first the idea in one sentence between <thought> and \
</thought>, then the complete Python function between <code> and </code>. For example:
<thought>Prefer the option with the smallest leftover, breaking ties by age.</thought>
<code>
import numpy as np

def score(x, options):
    return -(options - x)
</code>"""

PROBLEM = """Problem: {description}
The function to write (same name and arguments):
{signature}"""

Strategy = Literal["e1", "e2", "m1", "m2", "m3"]  # i1 makes the initial population only
STRATEGIES = {
    "i1": "Design a heuristic for this problem.",
    "e1": "Here are existing heuristics with their scores ({better} objective is better). Design a "
    "new heuristic whose idea is clearly different from all of them.",
    "e2": "Here are existing heuristics with their scores ({better} objective is better). Find the "
    "idea they share, then design a new heuristic built on that shared idea but improved.",
    "m1": "Here is a heuristic and its score ({better} objective is better). Change it in a way "
    "you expect to score better.",
    "m2": "Here is a heuristic and its score ({better} objective is better). Keep its idea but "
    "change the numbers and parameters in its scoring.",
    "m3": "Here is a heuristic and its score ({better} objective is better). Remove the parts that "
    "do not help and keep it simple and general.",
}
PARENT = """Heuristic {n} (objective {objective}):
<thought>{thought}</thought>
<code>
{code}
</code>"""


class EoHParams(Params):
    population: int = Field(20, ge=2, le=500, description="N, heuristics kept")
    generations: int = Field(20, ge=1, le=1000)
    per_strategy: int = Field(4, ge=1, le=100, description="children per strategy per generation")
    parents: int = Field(2, ge=2, le=10, description="parents shown to E1 and E2")
    strategies: list[Strategy] = Field(
        list(get_args(Strategy)), min_length=1, description="of e1, e2, m1, m2, m3"
    )
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=64, le=8192)
    split: str = Field("train", description="instances scored during the search")


class EoH(PopulationAlgorithm):
    name = "eoh"
    summary = "EoH: evolve (thought, code) heuristics with five prompt strategies, run in a sandbox"
    params_model = EoHParams
    kinds = ("program",)
    templates: ClassVar[Mapping[str, str]] = {
        "format": FORMAT,
        "problem": PROBLEM,
        "parent": PARENT,
        **{f"strategy_{k}": v for k, v in STRATEGIES.items()},
    }
    params: EoHParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        start, population, fitness = await self.start(engine, resume)

        for g in range(start, p.generations + 1):
            if not population:
                break
            jobs = [
                (s, self.pick_parents(engine, s, population, fitness))
                for s in p.strategies
                for _ in range(p.per_strategy)
            ]
            made = await gather(
                *(self.child(engine, s, parents, fitness, g, population) for s, parents in jobs)
            )
            children = list({c.text: c for c in made if c is not None}.values())
            fitness.update(await self.fitness(engine, children))
            pool = population + [c for c in children if c.id in fitness]
            population = top_k(pool, [fitness[c.id] for c in pool], p.population)
            await engine.generation_done(g, population, self.state(population, fitness))

    async def initial_population(self, engine: Engine) -> list[Candidate]:
        task = engine.task
        population = [
            engine.candidate(s.code, operator=SEED, generation=0, kind="program",
                             meta={"thought": s.thought})
            for s in task.seeds[: self.params.population]
        ]
        missing = self.params.population - len(population)
        if missing > 0:
            made = await gather(
                *(self.child(engine, "i1", [], {}, 0, population) for _ in range(missing))
            )
            population += list({c.text: c for c in made if c is not None}.values())
        return population

    def pick_parents(
        self, engine: Engine, strategy: str, population: list[Candidate], fitness: dict
    ) -> list[Candidate]:
        k = min(self.params.parents if strategy in ("e1", "e2") else 1, len(population))
        return rank_based(engine.rng, population, [fitness[c.id] for c in population], k)

    async def child(
        self,
        engine: Engine,
        strategy: Strategy | Literal["i1"],
        parents: list[Candidate],
        fitness: dict[str, float],
        generation: int,
        population: list[Candidate],
    ) -> Candidate | None:
        task = engine.task
        shown = "\n\n".join(
            self.render(
                "parent",
                n=i + 1,
                objective=objective_text(fitness.get(c.id), task.direction),
                thought=c.meta.get("thought", ""),
                code=c.text.strip(),
            )
            for i, c in enumerate(parents)
        )
        parts = [
            self.render("problem", description=task.description, signature=task.signature),
            self.render(
                f"strategy_{strategy}",
                better="lower" if task.direction == "minimize" else "higher",
            ),
            shown,
            self.render("format"),
        ]
        answers = await engine.generate(
            [Message("user", "\n\n".join(p for p in parts if p))],
            temperature=self.params.temperature,
            max_tokens=self.params.max_tokens,
            prefill="<thought>",
            stop=("</code>",),
            purpose=strategy,
        )
        sample = answers[0]
        made = program_from_sample(engine, sample, strategy, [c.text for c in population])
        if made is None:
            return None
        thought, code = made
        return engine.candidate(
            code, operator=strategy, generation=generation, parents=parents, kind="program",
            meta={"thought": thought}, source=sample,
        )

    async def fitness(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        scores = await engine.evaluate(cands, self.params.split)
        return {s.candidate_id: s.value for s in scores if s.n > 0}  # failed runs have no fitness
