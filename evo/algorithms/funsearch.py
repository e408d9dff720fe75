"""FunSearch (Romera-Paredes et al., Nature 2023): program search over islands of a program
database, with best-shot prompts for a code-completion model.

    score the seed programs; register them in every island
    for g = 1..G:
        for each of `prompts` prompts:
            island ← uniform; clusters ← k of the island's clusters, Boltzmann over their scores
            with the island's temperature; in each cluster one program, shorter ones likelier
            prompt ← the k programs as versions v0 … v(k-1), weakest first, then the header of vk
            `samples_per_prompt` completions ← LLM(prompt)          → new functions
        run the new functions in the sandbox; each that runs joins its island, in the cluster of
        its signature (its score on every instance)
        every `reset_every` generations: the weaker half of the islands is founded again from
        the best program of a random island of the stronger half
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from evo.algorithms.base import Algorithm, Params, Resume
from evo.best_shot import (
    IMPROVED,
    PROBLEM,
    STOP,
    function_body,
    link_versions,
    program,
    prompt,
)
from evo.candidate import Candidate, Score
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.llm import Message
from evo.program_db import ProgramDatabase, signature_of

OPERATOR = "best_shot"


class FunSearchParams(Params):
    generations: int = Field(20, ge=1, le=10_000)
    islands: int = Field(5, ge=1, le=100, description="populations evolving apart")
    prompts: int = Field(4, ge=1, le=256, description="prompts per generation")
    samples_per_prompt: int = Field(4, ge=1, le=64, description="completions of each prompt")
    functions_per_prompt: int = Field(2, ge=1, le=10, description="k versions shown")
    temperature: float = Field(
        0.1, gt=0.0, le=10.0, description="cluster-sampling temperature at its highest")
    temperature_period: int = Field(
        100, ge=1, le=1_000_000, description="programs an island registers while its "
        "temperature falls to 0, before it starts again")
    reset_every: int = Field(
        5, ge=1, le=10_000, description="generations between resets of the weaker islands")
    llm_temperature: float = Field(1.0, ge=0.0, le=2.0, description="of the sampling model")
    max_tokens: int = Field(384, ge=32, le=8192)
    split: str = Field("train", description="instances scored during the search")


class FunSearch(Algorithm):
    name = "funsearch"
    summary = ("FunSearch: islands of programs clustered by score signature, best-shot prompts "
               "for a completion model, run in a sandbox")
    params_model = FunSearchParams
    kinds = ("program",)
    # the prompt is a Python file (evo.best_shot); these are its two lines of prose
    templates: ClassVar[Mapping[str, str]] = {"problem": PROBLEM, "improved": IMPROVED}
    params: FunSearchParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        db = self.database(engine)
        if resume:
            start, state = resume[0] + 1, resume[1]
            db.restore(state["islands"])
        else:
            start = 1
            await self.seed(engine, db)
        for g in range(start, p.generations + 1):
            asks = [self.pick(engine, db) for _ in range(p.prompts)]
            made = await gather(*(self.complete(engine, island, shown, g)
                                  for island, shown in asks))
            children = _distinct([c for batch in made for c in batch], db, engine)
            for child, score in zip(children, await self.score(engine, children), strict=True):
                if score is not None:
                    db.register(child.island, child.id, _signature(score), score.value)
            if g % p.reset_every == 0:
                db.reset_weaker_half(engine.rng)
            await self.done(engine, db, g)

    def database(self, engine: Engine) -> ProgramDatabase:
        p = self.params
        return ProgramDatabase(p.islands, temperature=p.temperature, period=p.temperature_period,
                               length=lambda cid: len(engine.lookup([cid])[0].text))

    async def seed(self, engine: Engine, db: ProgramDatabase) -> None:
        seeds = [engine.candidate(s.code, operator=SEED, generation=0, kind="program",
                                  meta={"thought": s.thought}) for s in engine.task.seeds]
        for cand, score in zip(seeds, await self.score(engine, seeds), strict=True):
            if score is not None:
                for island in range(len(db.islands)):
                    db.register(island, cand.id, _signature(score), score.value)
        await self.done(engine, db, 0)

    def pick(self, engine: Engine, db: ProgramDatabase) -> tuple[int, list[Candidate]]:
        """An island and the programs its prompt shows, weakest first (drawn before any call)."""
        island = engine.rng.randrange(len(db.islands))
        shown = db.sample(engine.rng, island, self.params.functions_per_prompt)
        return island, engine.lookup([cid for cid, _ in shown])

    async def complete(self, engine: Engine, island: int, shown: list[Candidate],
                       generation: int) -> list[Candidate]:
        """The prompt's samples, read back into programs of the prompt's island."""
        task = engine.task
        if not shown:
            return []
        bodies = [function_body(c.text, task.entry) or "    pass" for c in shown]
        text, ask = prompt(task, bodies, problem=self.prompts["problem"],
                           improved=self.prompts["improved"])
        answers = await engine.generate(
            [Message("user", text)], n=self.params.samples_per_prompt,
            temperature=self.params.llm_temperature, max_tokens=self.params.max_tokens,
            prefill=ask, stop=STOP, purpose=OPERATOR,
        )
        out = []
        for sample in answers:
            if sample is None:
                engine.reject(OPERATOR, "call_failed")
                continue
            code, reason = program(task, sample.text)
            if code is None:
                engine.reject(OPERATOR, reason)  # type: ignore[arg-type]  # a Rejection
                continue
            code = link_versions(task, code, bodies)
            out.append(engine.candidate(code, operator=OPERATOR, generation=generation,
                                        parents=shown, kind="program", island=island,
                                        source=sample))
        return out

    async def score(self, engine: Engine, cands: list[Candidate]) -> list[Score | None]:
        """Each candidate's score, None where its run failed (it then joins no island)."""
        if not cands:
            return []
        scores = {s.candidate_id: s for s in await engine.evaluate(cands, self.params.split)}
        return [s if (s := scores.get(c.id)) is not None and s.n > 0 else None for c in cands]

    async def done(self, engine: Engine, db: ProgramDatabase, generation: int) -> None:
        state: dict[str, Any] = {"islands": db.to_json()}
        await engine.generation_done(generation, engine.lookup(db.program_ids()), state)


def _signature(score: Score) -> tuple[float, ...]:
    return signature_of([o.score for o in score.outcomes] or [score.value])


def _distinct(children: list[Candidate], db: ProgramDatabase, engine: Engine) -> list[Candidate]:
    """The children worth a sandbox run: not the function of a program the database holds, nor
    one written earlier this generation."""
    entry = engine.task.entry

    def body(cand: Candidate) -> str:
        return (function_body(cand.text, entry) or cand.text).strip()

    held = {body(c) for c in engine.lookup(db.program_ids())}
    out: dict[str, Candidate] = {}
    for child in children:
        key = body(child)
        if key in held:
            engine.reject(OPERATOR, "unchanged")
        elif key in out:
            engine.reject(OPERATOR, "duplicate")
        else:
            out[key] = child
    return list(out.values())
