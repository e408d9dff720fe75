"""The interface an algorithm sees, and nothing more.

An algorithm asks the engine for meta-LLM text (``generate``), for fitness (``evaluate``), for new
candidates with their lineage (``candidate``), and tells it when a generation ends
(``generation_done``, which checkpoints and publishes). Storage, Ray and HTTP stay behind it.

When the job's budget cannot pay for a call, the engine raises ``BudgetExhausted``; the algorithm
does not catch it, and the driver ends the search cleanly with everything recorded so far.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any, Protocol

from evo.candidate import Candidate, Score
from evo.llm import Message
from evo.programs import ProgramTask
from evo.task import Task


class BudgetExhausted(Exception):
    """The next call would cross the job's budget (calls, tokens or wall time)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"budget exhausted: {what}")
        self.what = what


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
    ) -> list[str | None]:
        """``n`` samples of the meta-LLM's answer (``None`` where the call failed)."""
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
    ) -> Candidate:
        """A new candidate with a job-unique id; its lineage is recorded when it is evaluated."""
        ...

    def lookup(self, ids: Sequence[str]) -> list[Candidate]:
        """Candidates made earlier in this job (also before a resume), by id."""
        ...

    def prefer(self, fitness: dict[str, float]) -> None:
        """The algorithm's own fitness of some candidates (GrIPS: its objective), where it is
        not the task metric: the final top-k are chosen by it instead of the mean score."""
        ...

    def reject(self, operator: str, reason: str) -> None:
        """Note a meta-LLM answer that could not be used (empty, unchanged, unparsed)."""
        ...

    async def generation_done(
        self, generation: int, population: Sequence[Candidate], state: dict[str, Any]
    ) -> None:
        """End of a generation: the driver flushes writes, checkpoints ``state`` and publishes."""
        ...
