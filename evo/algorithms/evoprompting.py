"""EvoPrompting (Chen et al., NeurIPS 2023): the LLM as crossover and mutation operator over code,
prompted with parent programs that carry their scores and a target score better than theirs.

    P ← seed programs; run them in the sandbox
    for t = 1..T (rounds):
        C ← ∅
        for i = 1..m (prompts per round):
            E ← `parents` programs of P drawn uniformly, without replacement
            prompt ← the programs of E, each headed by its objective, worst first, then a
                     header asking for a program at the target: the best objective in E
                     improved by `target_gain` (a share of its size)
            C ← C ∪ `children` samples of the LLM's next program
        run C in the sandbox; a child that fails gets no fitness and is dropped
        P ← the fittest `survivors` of P ∪ C (distinct code)
    the final phase re-scores the fittest on dev; the best is the job's winner

The paper also prompt-tunes the LM on each round's children (soft-prompt adaptation); that step
is not available here: the method works with any model, local or behind an endpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, cast

from pydantic import Field

from evo.algorithms.base import Params, PopulationAlgorithm, Resume
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.llm import Message
from evo.operators import distinct_new, program_from_sample
from evo.programs import ProgramTask, objective_text
from evo.selection import top_k

OPERATOR = "cross_mut"  # the paper's name for its LLM step: crossover and mutation in one

INTRO = """{description}
Every program below defines this function, with the same name and arguments:
{signature}

Each program is headed by its score: {objective} ({better} is better). Study what the \
better programs do differently, then write the next program: one that reaches the target \
score. Answer with its Python code only."""

EXAMPLE = """Program {n}, score {score}:
```python
{code}
```"""

TARGET = """Program {n}, target score {target}:"""


class EvoPromptingParams(Params):
    rounds: int = Field(10, ge=1, le=1000, description="T, rounds of prompting and selection")
    prompts: int = Field(10, ge=1, le=200, description="m, few-shot prompts per round")
    parents: int = Field(2, ge=1, le=10, description="n, parent programs shown in each prompt")
    children: int = Field(16, ge=1, le=64, description="k, programs sampled from each prompt")
    survivors: int = Field(10, ge=1, le=500, description="programs kept as next round's parents")
    target_gain: float = Field(
        0.1, gt=0.0, le=1.0,
        description="how much better than the best parent shown the target is, as a share of it",
    )
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    max_tokens: int = Field(512, ge=64, le=8192)
    split: str = Field("train", description="instances scored during the search")


class EvoPrompting(PopulationAlgorithm):
    name = "evoprompting"
    summary = "EvoPrompting: few-shot prompts of scored parent programs and a target score"
    params_model = EvoPromptingParams
    kinds = ("program",)
    templates: ClassVar[Mapping[str, str]] = {"intro": INTRO, "example": EXAMPLE, "target": TARGET}
    params: EvoPromptingParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        start, population, fitness = await self.start(engine, resume)

        for t in range(start, p.rounds + 1):
            if not population:
                break  # no seed ran: nothing to show the model
            # every draw before any call, so the run replays whatever order answers arrive in
            shown = [
                engine.rng.sample(population, min(p.parents, len(population)))
                for _ in range(p.prompts)
            ]
            made = await gather(
                *(self.cross_mut(engine, parents, fitness, t, population) for parents in shown)
            )
            made_now = [c for batch in made for c in batch]
            children = distinct_new(engine, [c.text for c in population], made_now)
            fitness.update(await self.fitness(engine, children))
            pool = population + [c for c in children if c.id in fitness]
            population = top_k(pool, [fitness[c.id] for c in pool], p.survivors)
            await engine.generation_done(t, population, self.state(population, fitness))

    async def initial_population(self, engine: Engine) -> list[Candidate]:
        return [
            engine.candidate(s.code, operator=SEED, generation=0, kind="program",
                             meta={"thought": s.thought})
            for s in self.task(engine).seeds
        ]

    def prompt(self, task: ProgramTask, parents: list[Candidate], fitness: dict[str, float]) -> str:
        """The few-shot prompt: the parents worst first, so the target follows the best."""
        ordered = sorted(parents, key=lambda c: fitness[c.id])
        examples = [
            self.render("example", n=i + 1, score=objective_text(fitness[c.id], task.direction),
                        code=c.text.strip())
            for i, c in enumerate(ordered)
        ]
        target = self.target(task, fitness[ordered[-1].id])
        return "\n\n".join([
            self.render("intro", description=task.description, signature=task.signature,
                        objective=task.objective,
                        better="lower" if task.direction == "minimize" else "higher"),
            *examples,
            self.render("target", n=len(ordered) + 1,
                        target=objective_text(target, task.direction)),
        ])

    def target(self, task: ProgramTask, best: float) -> float:
        """The fitness asked for: the best parent's, moved by ``target_gain`` of its size toward
        better (fitness is higher-is-better whatever the task's direction)."""
        return best + self.params.target_gain * max(abs(best), 1e-9)

    async def cross_mut(
        self,
        engine: Engine,
        parents: list[Candidate],
        fitness: dict[str, float],
        generation: int,
        population: list[Candidate],
    ) -> list[Candidate]:
        """``children`` programs sampled from one few-shot prompt of ``parents``."""
        task = self.task(engine)
        # The answer starts inside a code block, after the signature's imports: the model
        # writes code, not prose, and small models that drop the imports still run.
        head = imports(task.signature)
        answers = await engine.generate(
            [Message("user", self.prompt(task, parents, fitness))],
            n=self.params.children,
            temperature=self.params.temperature,
            max_tokens=self.params.max_tokens,
            prefill="```python\n" + head,
            stop=("```",),
            purpose=OPERATOR,
        )
        target = self.target(task, max(fitness[c.id] for c in parents))
        existing = [c.text for c in population]
        children = []
        for sample in answers:
            made = program_from_sample(engine, sample, OPERATOR, existing, prefix=head)
            if made is None:
                continue
            children.append(engine.candidate(
                made[1], operator=OPERATOR, generation=generation, parents=parents,
                kind="program", meta={"target": objective_text(target, task.direction)},
                source=sample,
            ))
        return children

    async def fitness(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        scores = await engine.evaluate(cands, self.params.split)
        return {s.candidate_id: s.value for s in scores if s.n > 0}  # failed runs have no fitness

    @staticmethod
    def task(engine: Engine) -> ProgramTask:
        return cast(ProgramTask, engine.task)  # the spec reader refuses a prompt task


def imports(signature: str) -> str:
    """The import lines of a task's signature, each ended by a newline ("" when none)."""
    return "".join(f"{line}\n" for line in signature.splitlines()
                   if line.startswith(("import ", "from ")))
