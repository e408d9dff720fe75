"""A method added as docs/adding-a-method.md says, touching nothing but its own code and the
registry: the spec reader checks its parameters, it runs on the in-memory engine and on the real
driver, and a crashed job of it resumes as if never stopped."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import ClassVar, Literal

import pytest
from pydantic import Field

from evo.algorithms import REGISTRY, get_algorithm
from evo.algorithms.base import Params, PopulationAlgorithm, Resume
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.llm import LLMRequest
from evo.operators import propose
from evo.spec_io import SpecError, parse_spec
from evo.testing import Ask, FakeEngine
from storage import Store
from tests.helpers import crash_and_resume, draw, job_record, quality, toy_task

REWRITE = """Rewrite the instruction so that it works better.

Instruction: {prompt}
Rewritten:"""
SHORTEN = """Say the instruction in fewer words.

Instruction: {prompt}
Shorter:"""


class HillParams(Params):
    steps: int = Field(3, ge=1, le=100)
    samples: int = Field(2, ge=1, le=16, description="rewrites asked for per step")
    move: Literal["rewrite", "shorten"] = "rewrite"


class HillClimb(PopulationAlgorithm):
    """P ← the best seed;  for t = 1..T: C ← `samples` rewrites of P;  P ← the best of P ∪ C."""

    name = "hill-climb"
    summary = "Hill climbing: rewrite the incumbent, keep a rewrite only when it scores better"
    params_model = HillParams
    templates: ClassVar[Mapping[str, str]] = {"rewrite": REWRITE, "shorten": SHORTEN}
    params: HillParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        start, population, fitness = await self.start(engine, resume)
        for t in range(start, self.params.steps + 1):
            incumbent = max(population, key=lambda c: fitness[c.id])
            proposals = await propose(
                engine, self.meta(self.params.move, prompt=incumbent.text),
                operator=self.params.move, originals=[incumbent.text], n=self.params.samples,
            )
            children = [engine.candidate(p.text, operator=self.params.move, generation=t,
                                         parents=[incumbent], source=p.source) for p in proposals]
            fitness.update(await self.fitness(engine, children))
            # ties keep the incumbent: max returns the first of equals
            population = [max([incumbent, *children], key=lambda c: fitness[c.id])]
            await engine.generation_done(t, population, self.state(population, fitness))

    async def initial_population(self, engine: Engine) -> list[Candidate]:
        return [engine.candidate(s, operator=SEED, generation=0)
                for s in dict.fromkeys(engine.task.seed_prompts)]

    async def fitness(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        return {s.candidate_id: s.value for s in await engine.evaluate(cands, "dev")}


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> type[HillClimb]:
    monkeypatch.setitem(REGISTRY, HillClimb.name, HillClimb)
    return HillClimb


def better(prompt: str, tag: str) -> str:
    """A rewrite a tenth better than ``prompt`` (by its q=…), told apart by ``tag``."""
    return f"Improved {tag}. q={min(1.0, quality(prompt) + 0.1):.2f}</prompt>"


def shown(text: str) -> str:
    return text.rsplit("Instruction:", 1)[1]


def test_the_spec_reader_knows_the_method_and_checks_its_parameters(registered) -> None:
    assert get_algorithm("hill-climb") is registered
    spec = parse_spec({"task": "sentiment", "algorithm": {"name": "hill-climb", "steps": 2}})
    assert spec.algorithm.name == "hill-climb"
    with pytest.raises(SpecError) as err:
        parse_spec({"task": "sentiment", "algorithm": {"name": "hill-climb", "move": "jump"}})
    assert "algorithm.move" in str(err.value) and "'rewrite' or 'shorten'" in str(err.value)


async def test_on_the_in_memory_engine_only_better_rewrites_are_kept(registered) -> None:
    engine = FakeEngine(toy_task(("Answer. q=0.2",)), fitness=lambda c, split: quality(c.text),
                        reply=lambda ask: better(shown(ask.prompt), str(len(engine.asked))))
    await registered(HillParams(steps=3, samples=2)).run(engine)
    incumbents = [ids[0] for _, ids, _ in engine.checkpoints]
    by_id = {c.id: c for c in engine.made}
    assert [round(quality(by_id[i].text), 2) for i in incumbents] == [0.2, 0.3, 0.4, 0.5]
    assert all(by_id[i].parents == (prev,) for prev, i in itertools.pairwise(incumbents))
    assert all(isinstance(a, Ask) and a.purpose == "rewrite" for a in engine.asked)


async def test_a_crashed_job_of_it_resumes_as_if_never_stopped(registered, store: Store) -> None:
    def meta(request: LLMRequest) -> str:
        return better(shown(request.messages[-1].content), draw(request))

    spec = {"algorithm": {"name": "hill-climb", "steps": 3}}
    straight, resumed = await crash_and_resume(spec, meta, store, ("Answer. q=0.2",), crash_at=3)
    record = job_record(store, resumed)
    assert record == job_record(store, straight)
    assert record["status"] == "completed"
    assert {op for _, op, *_ in record["candidates"]} == {"seed", "rewrite"}
