"""The interface an algorithm sees, and nothing more.

An algorithm asks the engine for meta-LLM text (``generate``), for fitness (``evaluate``), for new
candidates with their lineage (``candidate``), and tells it when a generation ends
(``generation_done``, which checkpoints and publishes). Storage, Ray and HTTP stay behind it.

Contract (every engine holds to it; ``evo.testing.FakeEngine`` is the in-memory one):

- ``generate`` returns one ``Sample`` per asked answer, keyed to the request that made it, or
  ``None`` where the call failed. A candidate written from a sample names it (``source=``): that
  is how the store links a candidate to the call that wrote it.
- ``evaluate`` returns a ``Score`` per candidate it could pay for, in order. When the job's budget
  cannot pay for the next call, the engine raises ``BudgetExhausted``; the algorithm does not
  catch it, and the driver ends the search cleanly with everything recorded so far.
- Seeds (the task's own prompts or programs) are made with operator ``seed``, in generation 0 and
  without parents or source: the final phase re-scores them as the baseline by that name.
- The ``state`` given to ``generation_done`` is plain JSON (dicts with string keys, lists,
  strings, numbers, booleans, None): it is the checkpoint a resumed job starts from.
- A proposal that cannot be used is recorded with ``reject(operator, reason)``, ``reason`` one of
  ``Rejection``.
- Candidates are stored when they are scored. One that is never scored is stored with ``record``:
  a part of the lineage (a mutation-prompt that writes task-prompts: never a finalist), or an item
  of a method whose result is its candidates themselves (a data set; its ``result`` says so).

Breaking a rule raises ``EngineMisuse`` at once, with what was wrong.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, get_args

from evo.candidate import Candidate, Kind, Score
from evo.llm import Message
from evo.programs import ProgramTask
from evo.task import Task

SEED = "seed"  # the operator of a task's own prompts and programs

# Why a meta-LLM answer (or a program made from one) was not used.
Rejection = Literal[
    "call_failed",  # the call failed after retries
    "empty",  # nothing usable between the tags
    "too_long",  # longer than an instruction can be
    "no_words",  # no words at all
    "unchanged",  # repeats a parent or a worked example
    "duplicate",  # repeats a sibling made in the same generation
    "echoed_meta_prompt",  # the meta-prompt's own instructions
    "copied_example",  # the worked example's content
    "example_word",  # a word of the worked example that the task never uses
    "unfilled",  # a cloze blank copied, not filled
    "no_final_prompt",  # steps written, but no final prompt after them
    "syntax_error",  # a program that does not parse
    "missing_function",  # a program without the function asked for
    "run_failed",  # a program that failed in the sandbox (the detail says how)
    "too_short",  # fewer words than an instruction of a data set needs
    "no_gain",  # an evolved instruction that asks for nothing its parent did not
    "unanswerable",  # the task model refused it, or answered with no content word
    "no_choice",  # a choice among options that names none of them (the default is taken)
    "lost_detail",  # a restated problem that drops a number of the original
]
REJECTIONS: frozenset[str] = frozenset(get_args(Rejection))
# Which model ``generate`` asks: the meta-LLM that writes candidates, or the task model.
ModelRole = Literal["meta", "task"]
KINDS: frozenset[str] = frozenset(get_args(Kind))


class BudgetExhausted(Exception):
    """The next call would cross the job's budget (calls, tokens or wall time)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"budget exhausted: {what}")
        self.what = what


class EngineMisuse(ValueError):
    """An algorithm broke the engine's contract (see this module's docstring)."""


@dataclass(frozen=True)
class Sample:
    """One answer of the meta-LLM (after the pre-filled text), keyed to the request that made it
    (its cache key, under which the store keeps the paid response)."""

    text: str
    request: str


class Engine(Protocol):
    rng: random.Random
    task: Task | ProgramTask

    async def generate(
        self,
        messages: Sequence[Message],
        *,
        n: int = 1,
        temperature: float = 1.0,
        max_tokens: int = 256,
        prefill: str = "",
        stop: Sequence[str] = (),
        purpose: str = "generate",
        model: ModelRole = "meta",
    ) -> list[Sample | None]:
        """``n`` samples of the meta-LLM's answer (``None`` where the call failed); with
        ``model="task"``, of the task model's (what a data set's responses are written by)."""
        ...

    async def evaluate(
        self, candidates: Sequence[Candidate], split: str = "dev", subset: int | None = None
    ) -> list[Score]:
        """Fitness of each candidate on ``split``; ``subset``: a fixed random sample of it."""
        ...

    def candidate(
        self,
        text: str,
        *,
        operator: str,
        generation: int,
        parents: Sequence[Candidate] = (),
        meta: dict[str, Any] | None = None,
        kind: Kind | None = None,
        island: int = 0,
        source: Sample | None = None,
    ) -> Candidate:
        """A new candidate with a job-unique id; its lineage is recorded when it is evaluated.
        ``kind`` defaults to the task's (``program`` for a program task, else ``prompt``);
        ``source`` is the sample it was written from."""
        ...

    def lookup(self, ids: Sequence[str]) -> list[Candidate]:
        """Candidates made earlier in this job (also before a resume), by id."""
        ...

    def record(self, candidates: Sequence[Candidate]) -> None:
        """Store candidates that are not scored (mutation-prompts, the items of a data set), with
        their lineage, at the next generation's end; their parents are stored already or in the
        same list; a candidate already stored is left as it is."""
        ...

    def prefer(self, fitness: dict[str, float]) -> None:
        """The algorithm's own fitness of some candidates (GrIPS: its objective), where it is
        not the task metric: the final top-k are chosen by it instead of the mean score."""
        ...

    def reject(self, operator: str, reason: Rejection, detail: str = "") -> None:
        """Note a meta-LLM answer that could not be used (empty, unchanged, unparsed)."""
        ...

    async def generation_done(
        self, generation: int, population: Sequence[Candidate], state: dict[str, Any]
    ) -> None:
        """End of a generation: the driver flushes writes, checkpoints ``state`` and publishes."""
        ...


# ---- the rules, checked by every engine ------------------------------------------------------


def new_candidate(
    cid: str,
    text: str,
    *,
    operator: str,
    generation: int,
    parents: Sequence[Candidate],
    meta: dict[str, Any] | None,
    kind: str,
    island: int,
    source: Sample | None,
) -> Candidate:
    """A candidate made by the contract's rules (``EngineMisuse`` names the one broken)."""
    if not operator:
        raise EngineMisuse("a candidate needs an operator name")
    if kind not in KINDS:
        raise EngineMisuse(f"unknown candidate kind {kind!r}; known: {', '.join(sorted(KINDS))}")
    if isinstance(island, bool) or not isinstance(island, int) or island < 0:
        raise EngineMisuse(f"island must be a whole number ≥ 0, not {island!r}")
    if operator == SEED and (generation != 0 or parents or source is not None):
        raise EngineMisuse("a seed belongs to generation 0 and has no parents and no source")
    meta = dict(meta or {})
    if source is not None:
        meta["made_by"] = source.request
    return Candidate(
        id=cid,
        text=text,
        generation=generation,
        operator=operator,
        parents=tuple(p.id for p in parents),
        kind=kind,  # type: ignore[arg-type]  # checked against KINDS above
        island=island,
        meta=meta,
    )


def check_recorded(candidates: Sequence[Candidate], stored: Container[str]) -> None:
    """``EngineMisuse`` when a candidate is recorded before one of its parents: each parent must
    be ``stored`` already or come earlier in ``candidates``."""
    seen = set()
    for cand in candidates:
        missing = [p for p in cand.parents if p not in stored and p not in seen]
        if missing:
            raise EngineMisuse(f"candidate {cand.id} is recorded before its parents {missing}")
        seen.add(cand.id)


def task_kind(task: Task | ProgramTask) -> Kind:
    """The kind of candidate a task scores."""
    return "program" if isinstance(task, ProgramTask) else "prompt"


def rejection_key(operator: str, reason: str, detail: str = "") -> str:
    """How a rejection is counted in a job's stats: ``operator:reason[: detail]``."""
    if reason not in REJECTIONS:
        raise EngineMisuse(f"unknown rejection reason {reason!r}; known: "
                           f"{', '.join(sorted(REJECTIONS))}")
    return f"{operator}:{reason}" + (f": {detail}" if detail else "")


def checked_state(state: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of an algorithm's state as plain JSON, or ``EngineMisuse`` naming where it
    is not (a set, a tuple key, a candidate object, NaN …)."""
    _check_json(state, "state")
    return json.loads(json.dumps(state))


def _check_json(value: Any, where: str) -> None:
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise EngineMisuse(f"{where} is {value}, which JSON cannot hold")
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            _check_json(item, f"{where}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise EngineMisuse(f"{where} has a key {key!r} that is not a string")
            _check_json(item, f"{where}[{key!r}]")
        return
    raise EngineMisuse(
        f"{where} is a {type(value).__name__}; a checkpoint holds only JSON "
        "(dicts with string keys, lists, strings, numbers, booleans, None)"
    )
