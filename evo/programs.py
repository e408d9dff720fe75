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


def extract_program(
    raw: str, entry: str, arity: int | None = None
) -> tuple[str, str] | tuple[None, str]:
    """(thought, code) from an answer shaped ``idea</thought><code>...``, or (None, reason).

    The answer may put the code in a fenced block or in <code> tags; anything the model adds
    around it is dropped. Small models write prose before or after the code and copy the name
    of the example function, so the parse is forgiving: leading prose lines and trailing lines
    that break the parse are cut, and when ``entry`` is missing, the last top-level function
    taking ``arity`` arguments is renamed to it. The code must then parse and define ``entry``.
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
    parsed = _parse_leniently(code)
    if parsed is None:
        return None, "syntax_error"
    code, tree = parsed
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef)]
    if not any(f.name == entry for f in functions):
        fitting = [f for f in functions if arity is not None and _arity(f) == arity]
        if not fitting:
            return None, "missing_function"
        name = fitting[-1].name
        code = re.sub(rf"^def {re.escape(name)}\(", f"def {entry}(", code, count=1, flags=re.M)
    return " ".join(thought.split()), code


_CODE_START = re.compile(r"^(import |from |def |@|class )")


def _parse_leniently(code: str) -> tuple[str, ast.Module] | None:
    """The code, or the longest run of its lines from its first code line that parses."""
    lines = code.split("\n")
    first = next((i for i, line in enumerate(lines) if _CODE_START.match(line)), None)
    if first is None:
        return None
    lines = lines[first:]
    for end in range(len(lines), 0, -1):
        candidate = "\n".join(lines[:end]).rstrip()
        if "def " not in candidate:
            return None
        try:
            return candidate, ast.parse(candidate)
        except SyntaxError:
            continue
    return None


def _arity(fn: ast.FunctionDef) -> int:
    return len(fn.args.posonlyargs) + len(fn.args.args)


def signature_arity(signature: str, entry: str) -> int | None:
    """How many positional arguments ``entry`` takes in a task's signature text."""
    try:
        tree = ast.parse(signature.rstrip() + "\n    pass\n")
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry:
            return _arity(node)
    return None


def objective_text(fitness: float | None, direction: str) -> str:
    """A program's objective as a meta-prompt shows it (the task's own sign, not the engine's)."""
    if fitness is None:
        return "not yet scored"
    return f"{-fitness if direction == 'minimize' else fitness:.4f}"
