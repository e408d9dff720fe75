"""EvoPrompt-DE (Guo et al., ICLR 2024): differential evolution whose operator is one meta-LLM call.

P ← seed prompts, topped up to N with meta-LLM paraphrases (as EvoPrompt-GA);  evaluate P
for t = 1..T:
    b ← the best of P
    for i = 1..N:   r1, r2 ← two distinct random members other than p_i
                    u_i ← LLM(1. parts where p_r1 and p_r2 differ  2. mutate those parts
                              3. merge them into p_b  4. cross the result with p_i)
    evaluate all u_i together;  for each i: p_i ← u_i if f(u_i) > f(p_i)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from evo.algorithms.base import Resume
from evo.algorithms.evoprompt import PARAPHRASE, EvoPrompt, EvoPromptParams
from evo.candidate import Candidate
from evo.engine import Engine
from evo.gather import gather
from evo.operators import MAX_TOKENS, propose

# The worked example spells out the four steps, on a made-up subject (see evoprompt.py); by
# default the answer is pre-filled with the final tag, because a small model that writes the steps
# itself rarely gets to the tag.
DE = """Make a new instruction from four given ones, in four steps:
1. Find the words where Instruction 1 and Instruction 2 differ.
2. Change those words into new words with a similar purpose.
3. Put the changed words into the Best instruction.
4. Mix the result of step 3 with the Current instruction. That is the final instruction.

Instruction 1: Tell me if the zorb is a wug or a dax.
Instruction 2: Say whether this zorb is a wug or a dax.
Best instruction: Decide whether the zorb below is a wug or a dax.
Current instruction: Wug or dax?
1. Differences: "Tell me if" / "Say whether"; "the zorb" / "this zorb"
2. Changed: "State whether"; "the given zorb"
3. Into Best: State whether the given zorb below is a wug or a dax.
4. Final: <prompt>State whether the given zorb below is a wug or a dax, in one word.</prompt>

Task: {task}
Instruction 1: {other_1}
Instruction 2: {other_2}
Best instruction: {best}
Current instruction: {current}"""

STEPS_PREFILL = "1. Differences:"
STEPS_MAX_TOKENS = 320  # the three steps, then the final prompt
_FIELD = re.compile(r"\s(?:Instruction [12]|Best instruction|Current instruction)\s*:", re.I)


class DEParams(EvoPromptParams):
    population: int = Field(
        10, ge=3, le=500, description="N, prompts kept (each needs two others to differ from)"
    )
    write_steps: bool = Field(
        False, description="let the optimizer write steps 1-3 before the final prompt, as in "
        "the paper (for capable models; the bundled small one does better answering directly)"
    )


class EvoPromptDE(EvoPrompt):
    """Shares EvoPrompt-GA's initial population (seeds plus paraphrases) and fitness."""

    name = "evoprompt-de"
    summary = "EvoPrompt DE: mutate p_best by the difference of two others, cross with p_i"
    params_model = DEParams
    templates: ClassVar[Mapping[str, str]] = {"paraphrase": PARAPHRASE, "de": DE}
    params: DEParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        start, population, fitness = await self.start(engine, resume)

        for t in range(start, p.generations + 1):
            best = max(population, key=lambda c: fitness[c.id])
            donors = [self.donors(engine, population, i) for i in range(len(population))]
            trials = await gather(
                *(
                    self.trial(engine, current, best, pair, t)
                    for current, pair in zip(population, donors, strict=True)
                    if pair is not None
                )
            )
            made = [u for u in trials if u is not None]
            fitness.update(await self.fitness(engine, made) if made else {})
            trial_of = {u.parents[0]: u for u in made}  # p_i's id → its trial
            population = [self.select(c, trial_of.get(c.id), fitness) for c in population]
            await engine.generation_done(t, population, self.state(population, fitness))

    @staticmethod
    def select(
        member: Candidate, trial: Candidate | None, fitness: dict[str, float]
    ) -> Candidate:
        """The trial takes its target's place only when strictly fitter; a tie keeps the member."""
        return trial if trial is not None and fitness[trial.id] > fitness[member.id] else member

    @staticmethod
    def donors(
        engine: Engine, population: list[Candidate], i: int
    ) -> tuple[Candidate, Candidate] | None:
        """p_r1, p_r2: two distinct members other than p_i (None when fewer than two exist, which
        happens only if paraphrasing could not fill the population)."""
        others = population[:i] + population[i + 1 :]
        if len(others) < 2:
            return None
        r1, r2 = engine.rng.sample(others, 2)
        return r1, r2

    async def trial(
        self,
        engine: Engine,
        current: Candidate,
        best: Candidate,
        pair: tuple[Candidate, Candidate],
        t: int,
    ) -> Candidate | None:
        parents = [current, best, *pair]  # the order lineage records: p_i first
        meta = self.meta(
            "de",
            task=engine.task.description,
            other_1=pair[0].text,
            other_2=pair[1].text,
            best=best.text,
            current=current.text,
        )
        steps = self.params.write_steps
        for _ in range(self.params.attempts):
            # directly, the answer starts inside the final tag; with ``write_steps`` the
            # optimizer writes the steps first and the final prompt follows the last opening tag
            out = await propose(
                engine,
                meta,
                operator="de",
                originals=[c.text for c in parents],
                temperature=self.params.temperature,
                max_tokens=STEPS_MAX_TOKENS if steps else MAX_TOKENS,
                prefill=STEPS_PREFILL if steps else None,
                run_on=_FIELD,  # small models run on into the next field ("Instruction 1: ...")
            )
            if out:
                return engine.candidate(out[0].text, operator="de", generation=t,
                                        parents=parents, source=out[0].source)
        return None
