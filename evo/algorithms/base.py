"""What every algorithm has: validated parameters, named meta-prompt templates, and ``run``."""

from __future__ import annotations

import string
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from evo.candidate import Candidate
from evo.engine import Engine
from evo.meta_prompt import MetaPrompt

if TYPE_CHECKING:
    from evo.spec import JobSpec


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


Resume = tuple[int, dict[str, Any]]


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Algorithm(ABC):
    """One search method. Subclasses set ``name``, ``params_model`` and ``templates`` and implement
    ``run`` so that it reads like the method's loop."""

    name: ClassVar[str]
    summary: ClassVar[str]
    params_model: ClassVar[type[Params]]
    templates: ClassVar[Mapping[str, str]]
    kinds: ClassVar[tuple[str, ...]] = ("prompt",)  # the candidate kinds it searches
    # what a job of it hands back: its best candidates, re-scored on dev and test by the final
    # phase, or a data set of the candidates it recorded (``engine.record``), never scored
    result: ClassVar[Literal["best", "dataset"]] = "best"
    # parameters that name a file: a spec file's relative path is resolved against its folder
    file_params: ClassVar[tuple[str, ...]] = ()
    # the evaluation strategy its candidates are answered with (None: the spec's own)
    strategy: ClassVar[str | None] = None
    # whether its own fitness (``engine.prefer``) picks the result: then the final phase does
    # not put a seed prompt that scores as well on full dev in front (GrIPS: its objective is
    # the paper's). Otherwise that fitness only names the finalists (a loss, as BBT's)
    result_by_own_fitness: ClassVar[bool] = False

    def __init__(self, params: Params, templates: Mapping[str, str] | None = None) -> None:
        self.params = params
        self.prompts = {**self.templates, **(templates or {})}

    @classmethod
    def spec_problems(cls, spec: JobSpec, labels: Sequence[str] | None) -> list[tuple[tuple, str]]:
        """What in an otherwise valid spec this method cannot run with, as (field path, why);
        ``labels``: the task's labels (None where the spec does not say, e.g. data files)."""
        return []

    @classmethod
    def check_templates(cls, overrides: Mapping[str, str]) -> list[str]:
        """Problems with user templates: unknown names, or fields the algorithm cannot fill."""
        problems = []
        for key, text in overrides.items():
            if key not in cls.templates:
                known = ", ".join(sorted(cls.templates))
                problems.append(f"unknown template {key!r} for {cls.name} (known: {known})")
                continue
            extra = placeholders(text) - placeholders(cls.templates[key])
            if extra:
                allowed = ", ".join(sorted(placeholders(cls.templates[key])))
                problems.append(
                    f"template {key!r} uses {sorted(extra)}; available fields: {allowed}"
                )
        return problems

    def render(self, key: str, **fields: Any) -> str:
        return self.prompts[key].format(**fields)

    def meta(self, key: str, **fields: Any) -> MetaPrompt:
        """A meta-prompt for the optimizer: the template filled in, knowing its own words."""
        return MetaPrompt(self.prompts[key], fields)

    @abstractmethod
    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        """Search until done. ``resume`` = (generation, state) of the last checkpoint: continue
        with the generation after it, from that state (candidates via ``engine.lookup``)."""


def label_problems(name: str, spec: JobSpec, labels: Sequence[str] | None,
                   why: str = "") -> list[tuple[tuple, str]]:
    """What keeps a method that learns from label log-probabilities (BBT, BDPL) from a spec:
    label scoring turned off, or a task without labels (``why``: what else needs them)."""
    problems: list[tuple[tuple, str]] = []
    if not spec.evaluation.label_scoring:
        problems.append((("evaluation", "label_scoring"), f"{name} learns from label "
                         "log-probabilities: it needs label_scoring: true"))
    if labels is not None and not labels:
        problems.append((("task",), f"{name} learns from label log-probabilities{why}: it needs "
                                    "a task with labels"))
    return problems


class PopulationAlgorithm(Algorithm):
    """A method that keeps a scored population: it says how generation 0 is made and how a
    candidate is scored; this class starts the search or picks it up from a checkpoint."""

    @abstractmethod
    async def initial_population(self, engine: Engine) -> list[Candidate]: ...

    @abstractmethod
    async def fitness(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        """Fitness by candidate id; a candidate that could not be scored is left out."""

    async def start(
        self, engine: Engine, resume: Resume | None
    ) -> tuple[int, list[Candidate], dict[str, float]]:
        """(first generation still to run, population, fitness), restored or made afresh."""
        if resume:
            generation, state = resume
            return generation + 1, engine.lookup(state["population"]), state["fitness"]
        population = await self.initial_population(engine)
        fitness = await self.fitness(engine, population)
        population = [c for c in population if c.id in fitness]
        await engine.generation_done(0, population, self.state(population, fitness))
        return 1, population, fitness

    @staticmethod
    def state(population: list[Candidate], fitness: dict[str, float]) -> dict[str, Any]:
        return {"population": [c.id for c in population], "fitness": dict(fitness)}
