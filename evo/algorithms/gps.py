"""GPS, Genetic Prompt Search (Xu et al., EMNLP 2022): keep the best prompts, regenerate from them.

P ← seed prompts;  evaluate P
for t = 1..T:
    kept ← top K of P
    children ← for each generator, `children_per_generator` times (kept prompts in turn):
        back_translation(lang):  kept → LLM(into lang) → LLM(back into English)   (two calls)
        cloze:                   kept with a span masked as ___ → LLM(fill the blank)
        continuation:            a few kept prompts shown → LLM(write one more like them)
    evaluate children;  P ← kept ∪ children

The paper ran T5 and GPT-2 for the generators; here each is one meta-LLM call shape.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import ClassVar, Literal

from pydantic import Field

from evo.algorithms.base import Params, PopulationAlgorithm, Resume
from evo.candidate import Candidate
from evo.edits import mask_span
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.meta_prompt import MetaPrompt
from evo.operators import Proposal, distinct_new, propose
from evo.selection import top_k

Generator = Literal["back_translation", "cloze", "continuation"]
BLANK = "___"

# One worked example in each meta-prompt: small optimizer models copy a shown format far more
# reliably than they follow a described one. Its subject is made up (is a "zorb" a "wug" or a
# "dax"?) so that no task's can be mistaken for it, and a proposal that borrows from it is caught
# by words no task uses (``MetaPrompt.echo``). The cloze example has no subject at all.
TRANSLATE = """Translate the instruction into {language}. Keep its meaning. Write the translation \
only.

English: Say whether the zorb below is a wug or a dax.
French: <prompt>Dites si le zorb ci-dessous est un wug ou un dax.</prompt>

English: {prompt}
{language}:"""

BACK_TRANSLATE = """Translate the instruction into English. Keep its meaning. Write the \
translation only.

French: Lisez le zorb ci-dessous et répondez par wug ou dax.
English: <prompt>Read the zorb below and answer wug or dax.</prompt>

{language}: {translated}
English:"""

CLOZE = """Fill the blank ___ in the instruction with a few fitting words. Write out the whole \
instruction.

Instruction: Read the question below and ___ with a single word.
Filled in: <prompt>Read the question below and reply with a single word.</prompt>

Instruction: {masked}
Filled in:"""

CONTINUATION = """Here are instructions written for one task. Write one more instruction for \
it, in the same style but different from all of them.

Task: tell whether a zorb is a wug or a dax.
Instruction: Is the zorb below a wug or a dax?
Instruction: Say if this zorb is a wug or a dax. Use one word.
One more: <prompt>Look at the zorb and answer wug or dax.</prompt>

Task: {task}
{prompts}
One more:"""


class GPSParams(Params):
    keep: int = Field(8, ge=1, le=200, description="K, prompts kept each generation")
    generations: int = Field(6, ge=1, le=1000, description="T")
    children_per_generator: int = Field(
        8, ge=1, le=200, description="children each generator makes per generation (at the "
        "defaults: one per kept prompt)"
    )
    generators: list[Generator] = Field(
        default_factory=lambda: ["back_translation", "cloze", "continuation"], min_length=1,
        description="which generators run",
    )
    languages: list[str] = Field(
        default_factory=lambda: ["French", "German"], min_length=1,
        description="pivot languages for back-translation, one drawn per child",
    )
    shown: int = Field(3, ge=1, le=20, description="kept prompts shown to one continuation call")
    cloze_span: int = Field(3, ge=1, le=20, description="most words one cloze blank hides")
    dev_subset: int | None = Field(
        None, ge=1, description="score on a fixed random dev sample of this size (None: full "
        "dev; the paper used 32 examples per class)"
    )
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="meta-LLM sampling temperature")


class GPS(PopulationAlgorithm):
    name = "gps"
    summary = "GPS: keep the top K, regenerate by back-translation, cloze and continuation"
    params_model = GPSParams
    templates: ClassVar[Mapping[str, str]] = {
        "translate": TRANSLATE,
        "back_translate": BACK_TRANSLATE,
        "cloze": CLOZE,
        "continuation": CONTINUATION,
    }
    params: GPSParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        start, population, fitness = await self.start(engine, resume)

        for t in range(start, p.generations + 1):
            kept = top_k(population, [fitness[c.id] for c in population], p.keep)
            made = await gather(*self.offspring(engine, kept, t))
            children = distinct_new(engine, [c.text for c in population], made)
            fitness.update(await self.fitness(engine, children))
            population = kept + children
            await engine.generation_done(t, population, self.state(population, fitness))

    def offspring(
        self, engine: Engine, kept: list[Candidate], t: int
    ) -> list[Awaitable[Candidate | None]]:
        """One pending child per (generator, slot); every random draw happens here, before any
        call is awaited, so a run replays the same whatever order the answers come back in."""
        p = self.params
        jobs: list[Awaitable[Candidate | None]] = []
        for generator in p.generators:
            for slot in range(p.children_per_generator):
                source = kept[slot % len(kept)]
                if generator == "back_translation":
                    language = engine.rng.choice(p.languages)
                    jobs.append(self.back_translation(engine, source, language, t))
                elif generator == "cloze":
                    masked, _, _ = mask_span(source.text, engine.rng, p.cloze_span, BLANK)
                    jobs.append(self.cloze(engine, source, masked, t))
                else:
                    shown = engine.rng.sample(kept, min(p.shown, len(kept)))
                    jobs.append(self.continuation(engine, shown, t))
        return jobs

    async def back_translation(
        self, engine: Engine, source: Candidate, language: str, t: int
    ) -> Candidate | None:
        operator = f"back_translation({language})"
        there = await self.ask(
            engine, self.meta("translate", language=language, prompt=source.text), operator,
            (source.text,), in_task_language=False,
        )
        if there is None:
            return None
        back = await self.ask(
            engine,
            self.meta("back_translate", language=language, translated=there.text),
            operator,
            (source.text, there.text),
        )
        if back is None:
            return None
        return engine.candidate(
            back.text, operator=operator, generation=t, parents=[source],
            meta={"via": there.text}, source=back.source,
        )

    async def cloze(
        self, engine: Engine, source: Candidate, masked: str, t: int
    ) -> Candidate | None:
        filled = await self.ask(
            engine, self.meta("cloze", masked=masked), "cloze", (source.text, masked)
        )
        if filled is None:
            return None
        if BLANK in filled.text:  # the blank was copied, not filled
            engine.reject("cloze", "unfilled")
            return None
        return engine.candidate(
            filled.text, operator="cloze", generation=t, parents=[source],
            meta={"masked": masked}, source=filled.source,
        )

    async def continuation(
        self, engine: Engine, shown: list[Candidate], t: int
    ) -> Candidate | None:
        listed = "\n".join(f"Instruction: {c.text}" for c in shown)
        text = await self.ask(
            engine,
            self.meta("continuation", task=engine.task.description, prompts=listed),
            "continuation",
            [c.text for c in shown],
        )
        if text is None:
            return None
        return engine.candidate(text.text, operator="continuation", generation=t, parents=shown,
                                source=text.source)

    async def ask(
        self,
        engine: Engine,
        meta: MetaPrompt,
        operator: str,
        originals: tuple[str, ...] | list[str],
        in_task_language: bool = True,
    ) -> Proposal | None:
        out = await propose(
            engine,
            meta,
            operator=operator,
            originals=originals,
            temperature=self.params.temperature,
            in_task_language=in_task_language,  # off for the way out of back-translation
        )
        return out[0] if out else None

    async def initial_population(self, engine: Engine) -> list[Candidate]:
        return [
            engine.candidate(s, operator=SEED, generation=0)
            for s in dict.fromkeys(engine.task.seed_prompts)
        ]

    async def fitness(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        if not cands:
            return {}
        scores = await engine.evaluate(cands, "dev", self.params.dev_subset)
        return {s.candidate_id: s.value for s in scores}

