"""Program-search problems: candidates are code, fitness comes from running it in the sandbox.

A ``ProgramTask`` names the function to evolve (its signature and a docstring the LLM sees), holds
seed programs, problem instances per split, and a *harness*: trusted code that runs beside the
candidate inside the sandbox, calls the candidate on every instance and returns one objective
value per instance. The service process never runs candidate code; it only parses it (``ast``) to
reject what cannot work before paying for a sandbox run.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal


@dataclass(frozen=True)
class SeedProgram:
    thought: str
    code: str


@dataclass(frozen=True)
class ProgramTask:
    name: str
    description: str
    entry: str  # the function a candidate must define
    signature: str  # shown to the LLM: imports, def line and docstring
    seeds: tuple[SeedProgram, ...]
    harness: str  # defines ``evo_harness(instances, **params)`` -> list of per-instance objectives
    splits: Mapping[str, tuple[Any, ...]]  # instances per split
    params: Mapping[str, Any]  # extra keyword arguments for the harness
    objective: str  # what the harness measures, for people
    direction: Literal["minimize", "maximize"] = "minimize"
    cpu_s: float = 20.0
    wall_s: float = 40.0
    memory_mb: int = 1024

    kind = "program"
    labels: tuple[str, ...] = ()

    @property
    def seed_prompts(self) -> tuple[str, ...]:
        return tuple(s.code for s in self.seeds)

    def split(self, name: str) -> tuple[Any, ...]:
        if name not in self.splits:
            from evo.task import TaskError

            raise TaskError(f"problem {self.name!r} has no split {name!r} "
                            f"(splits: {', '.join(self.splits)})")
        return self.splits[name]

    def fitness(self, objectives: Sequence[float]) -> float:
        """Higher is better everywhere in the engine: a minimized objective is negated."""
        mean = sum(objectives) / len(objectives)
        return -mean if self.direction == "minimize" else mean

    def program(self, code: str) -> str:
        """What the sandbox runs: the candidate, then the trusted harness."""
        return f"{code}\n\n\n{self.harness}\n"


_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)(?:```|$)", re.S)


def extract_program(raw: str, entry: str) -> tuple[str, str] | tuple[None, str]:
    """(thought, code) from an answer shaped ``idea</thought><code>...``, or (None, reason).

    The answer may put the code in a fenced block or in <code> tags; anything the model adds
    around it is dropped. The code must parse and define ``entry``.
    """
    thought, _, rest = raw.partition("</thought>")
    if not rest:
        thought, rest = "", raw
    body = rest.split("</code>", 1)[0]
    body = body.split("<code>", 1)[1] if "<code>" in body else body
    fenced = _FENCE.search(body)
    code = (fenced.group(1) if fenced else body).strip("\n")
    if not code.strip():
        return None, "empty"
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None, "syntax_error"
    if not any(isinstance(n, ast.FunctionDef) and n.name == entry for n in tree.body):
        return None, "missing_function"
    return " ".join(thought.split()), code
