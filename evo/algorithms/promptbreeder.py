"""Promptbreeder (Fernando et al., 2023): task-prompts evolve, and so do the mutation-prompts that
rewrite them.

A unit is (task-prompt P, mutation-prompt M); with ``context`` > 0, P carries a few-shot context of
correct working-outs shown before its instruction.

U ← the task's seed prompts, each with a random M from the set; topped up to N with
    init:  P ← LLM(thinking style S + M + task)                       (S and M drawn at random)
evaluate every P (dev, or a fixed sample of it)
for t = 1..T:
    pair the units at random; in each pair the fitter is the winner, the other the loser
    for each pair, op drawn at random:
        zero_order   P' ← LLM(task)
        first_order  P' ← LLM(M + P)
        eda          P' ← LLM(the population's distinct P, in random order)
        eda_rank     P' ← LLM(M + the population's distinct P, worst to best)
        lineage      P' ← LLM(the best P of each generation so far, oldest first)
        hyper_zero   M' ← LLM(S + task);  P' ← LLM(M' + P)
        hyper_first  M' ← LLM(improve M); P' ← LLM(M' + P)
        lamarckian   P' ← LLM(an example the winner answered correctly, with its answer)
      or, with probability crossover_rate, instead: P' ← another unit's P (fitness-proportionate)
      context shuffling: P' gets the winner's context with one new correct working-out added or
      swapped in (or, with probability context_resample, all of it drawn afresh)
    evaluate every P';  the loser becomes (P', M' after a hypermutation, else the winner's M)

Lineage: a child task-prompt's parents are the winner's task-prompt, then the mutation-prompt that
wrote it, then whatever else the operator showed, and ``meta["roles"]`` names each parent's part
(``winner``, ``mutation_prompt``, ``shown``, ``donor``); a hypermutated mutation-prompt's parent is
the one it replaces. Mutation-prompts are stored unscored (``engine.record``): never finalists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import Field, StringConstraints

from evo.algorithms.base import Algorithm, Params, Resume
from evo.algorithms.promptbreeder_prompts import MUTATION_PROMPTS, TEMPLATES, THINKING_STYLES
from evo.algorithms.promptbreeder_units import (
    Plan,
    Unit,
    WorkingOut,
    context_of,
    distinct,
    instruction,
    shuffle_context,
    working_outs,
)
from evo.candidate import Candidate
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.meta_prompt import MetaPrompt
from evo.operators import propose
from evo.selection import roulette

Operator = Literal["zero_order", "first_order", "eda", "eda_rank", "lineage", "hyper_zero",
                   "hyper_first", "lamarckian"]
OPERATORS: tuple[str, ...] = get_args(Operator)
HYPER = ("hyper_zero", "hyper_first")
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
SHOWN = 10  # task-prompts shown by the eda and lineage operators, at most
# small models run on into the meta-prompt's next field; text after one is not the proposal
_RUN_ON = re.compile(r"\s(?:Rule|Improved|Changed|New|Next|Hint|Example|Their answer)\s*:", re.I)


class PromptbreederParams(Params):
    population: int = Field(10, ge=2, le=500, description="N, units (task-prompt, "
                            "mutation-prompt) kept")
    generations: int = Field(10, ge=1, le=1000, description="T; each runs N/2 binary tournaments")
    dev_subset: int | None = Field(
        None, ge=1, description="score on a fixed random dev sample of this size (None: full dev)"
    )
    operators: list[Operator] = Field(
        default_factory=lambda: list(OPERATORS), min_length=1,
        description="mutation operators, one drawn per tournament",
    )
    crossover_rate: float = Field(0.1, ge=0.0, le=1.0, description="chance that a child takes "
                                  "another unit's task-prompt (fitness-proportionate) instead")
    context: int = Field(0, ge=0, le=8, description="correct working-outs a unit shows before "
                         "its task-prompt (0: none, no context shuffling); they are dev examples")
    context_resample: float = Field(0.1, ge=0.0, le=1.0, description="chance that a child's "
                                    "context is drawn afresh rather than changed by one")
    mutation_prompts: list[Text] | None = Field(
        None, min_length=1, max_length=200, description="the starting mutation-prompts "
        "(None: the built-in set)",
    )
    thinking_styles: list[Text] | None = Field(
        None, min_length=1, max_length=200, description="thinking styles for init and "
        "hyper_zero (None: the built-in set)",
    )
    attempts: int = Field(2, ge=1, le=5, description="rounds of init calls to fill the population")
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="meta-LLM sampling temperature")


class Promptbreeder(Algorithm):
    name = "promptbreeder"
    summary = ("Promptbreeder: binary tournaments over (task-prompt, mutation-prompt) units; "
               "the mutation-prompts evolve too")
    params_model = PromptbreederParams
    templates: ClassVar[Mapping[str, str]] = TEMPLATES
    params: PromptbreederParams
    # the search's own records, kept in the checkpoint: fitness and correct working-outs of the
    # current task-prompts (by id); and the task's examples a working-out names
    fitness: dict[str, float]
    worked: dict[str, list[WorkingOut]]
    examples: dict[str, Any]

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        self.examples = {ex.id: ex for split in ("train", "dev")
                         for ex in engine.task.split(split)}
        if resume:
            start, state = resume[0] + 1, resume[1]
            tasks, mutators = engine.lookup([u[0] for u in state["units"]]), engine.lookup(
                [u[1] for u in state["units"]])
            units = list(zip(tasks, mutators, strict=True))
            self.fitness = dict(state["fitness"])
            self.worked = {k: [(e, o) for e, o in v] for k, v in state["worked"].items()}
            elites = engine.lookup(state["elites"])
        else:
            start, self.fitness, self.worked = 1, {}, {}
            units = await self.initial_population(engine)
            elites = []
            await self.end_generation(engine, 0, units, elites)

        for t in range(start, p.generations + 1):
            order = list(range(len(units)))
            engine.rng.shuffle(order)
            plans = [self.plan(engine, units, elites, order[i], order[i + 1])
                     for i in range(0, len(order) - 1, 2)]
            made = await gather(*(self.mutate(engine, plan, t) for plan in plans))
            children = [(plan, child) for plan, child in zip(plans, made, strict=True) if child]
            # a new mutation-prompt is stored before the task-prompt that names it as a parent
            engine.record([m for plan, (_, m) in children if m is not plan.winner[1]])
            await self.evaluate(engine, [task for _, (task, _) in children])
            for plan, child in children:
                units[plan.loser] = child
            await self.end_generation(engine, t, units, elites)

    # ---- generation 0 ----------------------------------------------------------------------

    async def initial_population(self, engine: Engine) -> list[Unit]:
        p = self.params
        pool = list(p.mutation_prompts or MUTATION_PROMPTS)
        styles = list(p.thinking_styles or THINKING_STYLES)
        mutators: dict[str, Candidate] = {}  # one candidate per mutation-prompt text used

        def mutator(text: str) -> Candidate:
            if text not in mutators:
                mutators[text] = engine.candidate(text, operator="initial", generation=0,
                                                  kind="mutation_prompt")
            return mutators[text]

        seeds = list(dict.fromkeys(engine.task.seed_prompts))[: p.population]
        units = [(engine.candidate(s, operator=SEED, generation=0),
                  mutator(engine.rng.choice(pool))) for s in seeds]
        for _ in range(p.attempts):
            missing = p.population - len(units)
            if missing <= 0:
                break
            draws = [(engine.rng.choice(styles), mutator(engine.rng.choice(pool)))
                     for _ in range(missing)]
            texts = [task.text for task, _ in units]
            made = await gather(*(self.init(engine, style, m, texts) for style, m in draws))
            for (_, m), task in zip(draws, made, strict=True):
                if task is not None and task.text not in texts:
                    texts.append(task.text)
                    units.append((task, m))
        engine.record(list(dict.fromkeys(m for _, m in units)))
        await self.evaluate(engine, [task for task, _ in units])
        return units

    async def init(
        self, engine: Engine, style: str, m: Candidate, avoid: list[str]
    ) -> Candidate | None:
        meta = self.meta("init", thinking_style=style, mutation_prompt=m.text,
                         task=engine.task.description)
        out = await self.ask(engine, "init", meta, avoid)
        if out is None:
            return None
        return engine.candidate(out[0], operator="init", generation=0, parents=[m],
                                meta={"roles": ["mutation_prompt"], "thinking_style": style},
                                source=out[1])

    # ---- one tournament --------------------------------------------------------------------

    def plan(self, engine: Engine, units: list[Unit], elites: list[Candidate], a: int,
             b: int) -> Plan:
        """Binary tournament between units a and b (a tie goes to a, drawn first), and what the
        winner's mutant will be made by."""
        p, rng = self.params, engine.rng
        win, lose = (a, b) if self.fitness[units[a][0].id] >= self.fitness[units[b][0].id] else (
            b, a)
        task = units[win][0]
        worked = self.worked.get(task.id, [])
        context = shuffle_context(rng, context_of(task), worked, p.context, p.context_resample)
        others = [u[0] for i, u in enumerate(units) if i != win]
        if rng.random() < p.crossover_rate:
            donor = roulette(rng, others, [self.fitness[c.id] for c in others], 1)[0]
            return Plan(units[win], lose, "crossover", donor=donor, context=context)
        usable = [op for op in p.operators if op != "lamarckian" or worked]
        if not usable:
            return Plan(units[win], lose, "none")
        op = rng.choice(usable)
        population = [u[0] for u in units]
        shown: list[Candidate] = []
        if op == "eda":
            shown = distinct(population)
            rng.shuffle(shown)
        elif op == "eda_rank":
            shown = sorted(distinct(population), key=lambda c: self.fitness[c.id])
        elif op == "lineage":
            shown = elites
        return Plan(
            units[win], lose, op, context=context, shown=tuple(shown[-SHOWN:]),
            style=rng.choice(self.params.thinking_styles or THINKING_STYLES)
            if op == "hyper_zero" else "",
            working=rng.choice(worked) if op == "lamarckian" else None,
        )

    async def mutate(self, engine: Engine, plan: Plan, t: int) -> Unit | None:
        """The winner's mutant (task-prompt, mutation-prompt), or None if no usable answer."""
        task, m = plan.winner
        if plan.operator == "none":
            return None
        if plan.operator == "crossover":
            assert plan.donor is not None
            return self.child(engine, instruction(plan.donor), plan, t, [task, plan.donor],
                              {"roles": ["winner", "donor"]}), m
        if plan.operator in HYPER:
            new_m = await self.hypermutate(engine, plan, t)
            if new_m is None:
                return None
            m = new_m
        meta, shown, avoid = self.showing(engine, plan, m)
        out = await self.ask(engine, plan.operator, meta, avoid)
        if out is None:
            return None
        parents = list(dict.fromkeys([task, *shown]))
        roles = ["winner", "mutation_prompt"] if shown[:1] == [m] else ["winner"]
        info: dict[str, Any] = {"roles": roles + ["shown"] * (len(parents) - len(roles))}
        if plan.working:
            info["working_out"] = plan.working[0]
        return self.child(engine, out[0], plan, t, parents, info, out[1]), m

    async def hypermutate(self, engine: Engine, plan: Plan, t: int) -> Candidate | None:
        """A new mutation-prompt for the unit: from a thinking style and the task (zero-order),
        or the winner's own improved (first-order); its parent is the one it replaces."""
        old = plan.winner[1]
        if plan.operator == "hyper_zero":
            meta = self.meta("hyper_zero", thinking_style=plan.style,
                             task=engine.task.description)
        else:
            meta = self.meta("hyper_first", mutation_prompt=old.text)
        out = await self.ask(engine, plan.operator, meta, [old.text])
        if out is None:
            return None
        about = {"thinking_style": plan.style} if plan.style else {}
        return engine.candidate(out[0], operator=plan.operator, generation=t, parents=[old],
                                kind="mutation_prompt", meta={"roles": ["replaced"], **about},
                                source=out[1])

    def showing(
        self, engine: Engine, plan: Plan, m: Candidate
    ) -> tuple[MetaPrompt, list[Candidate], list[str]]:
        """The operator's meta-prompt, what of the population it shows (the mutation-prompt
        first, where it is used), and the texts a proposal must not repeat."""
        op, task, description = plan.operator, plan.winner[0], engine.task.description
        avoid = [instruction(c) for c in (task, *plan.shown)]
        if op in ("first_order", *HYPER):  # a hypermutation's new M rewrites the task-prompt
            return (self.meta("first_order", mutation_prompt=m.text, prompt=instruction(task)),
                    [m], avoid)
        if op == "zero_order":
            return self.meta("zero_order", task=description), [], avoid
        if op == "lamarckian":
            assert plan.working is not None
            example, answer = plan.working
            shown_input = self.examples[example].input
            meta = self.meta("lamarckian", task=description, input=shown_input, output=answer)
            return meta, [], [*avoid, shown_input]  # the example itself is no instruction
        listed = "\n".join(f"- {instruction(c)}" for c in plan.shown)  # eda, eda_rank, lineage
        if op == "eda_rank":
            meta = self.meta(op, task=description, prompts=listed, mutation_prompt=m.text)
            return meta, [m, *plan.shown], avoid
        return self.meta(op, task=description, prompts=listed), list(plan.shown), avoid

    def child(self, engine: Engine, text: str, plan: Plan, t: int, parents: list[Candidate],
              info: dict[str, Any], source: Any = None) -> Candidate:
        """A task-prompt candidate: the instruction, after the few-shot context if it has one."""
        if plan.context:
            demos = [self.render("context_entry", input=self.examples[e].input, output=o)
                     for e, o in plan.context]
            info |= {"instruction": text, "context": [list(w) for w in plan.context]}
            text = "\n\n".join([*demos, text])
        return engine.candidate(text, operator=plan.operator, generation=t, parents=parents,
                                meta=info, source=source)

    async def ask(
        self, engine: Engine, operator: str, meta: MetaPrompt, avoid: Sequence[str]
    ) -> tuple[str, Any] | None:
        out = await propose(engine, meta, operator=operator, originals=avoid,
                            temperature=self.params.temperature, run_on=_RUN_ON)
        return (out[0].text, out[0].source) if out else None

    # ---- fitness and checkpoints -----------------------------------------------------------

    async def evaluate(self, engine: Engine, tasks: list[Candidate]) -> None:
        """Fitness of each task-prompt, and the examples it answered correctly (its working-outs,
        for Lamarckian mutation and the context)."""
        if not tasks:
            return
        for score in await engine.evaluate(tasks, "dev", self.params.dev_subset):
            self.fitness[score.candidate_id] = score.value
            self.worked[score.candidate_id] = working_outs(score, engine.task.verbalizers,
                                                           self.examples)

    async def end_generation(
        self, engine: Engine, t: int, units: list[Unit], elites: list[Candidate]
    ) -> None:
        """Note the generation's best task-prompt for the lineage operator, keep only what the
        next generation needs, and checkpoint."""
        best = max((task for task, _ in units), key=lambda c: self.fitness[c.id], default=None)
        if best is not None and (not elites or elites[-1].id != best.id):
            elites.append(best)
        members = {task.id for task, _ in units}
        self.fitness = {k: v for k, v in self.fitness.items() if k in members}
        self.worked = {k: v for k, v in self.worked.items() if k in members}
        state: dict[str, Any] = {
            "units": [[task.id, m.id] for task, m in units],
            "fitness": dict(self.fitness),
            "worked": {k: [list(w) for w in v] for k, v in self.worked.items()},
            "elites": [c.id for c in elites],
        }
        await engine.generation_done(t, [task for task, _ in units], state)
