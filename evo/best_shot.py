"""FunSearch's best-shot prompt, and reading the model's answer back into a program.

The prompt is a Python file: the problem in a module docstring, the task's imports, then the
chosen programs as versions of the evolved function, ``<entry>_v0``, ``<entry>_v1``, … (weakest
first), each after the first said to improve on the one before, and last the header of the next
version with its docstring, so that a model continues with its body. The prompt ends right after
the docstring's closing quotes: a small base model writes code from there, and an extra newline
makes it write prose. The same text works as a plain completion (base models) and as a chat
message with the header as the answer's prefill (chat models).

The answer is the body of the new version: it ends at the first line that is not indented. The
program kept is the task's imports and the function under its own name with that body. A body
that calls a version the prompt showed (``priority_v1(item, bins) + ...``, common from small
models) gets those versions' definitions as the prompt gave them, so it runs as its author read
it; a call of its own version is a call of the function itself.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass

from evo.programs import ProgramTask, extract_program, signature_arity

STOP = ("\ndef ", "\nclass ", "\nif __name__", "\n```")  # what follows a function body


@dataclass(frozen=True)
class Header:
    """The task's function, split: imports, the ``def`` line(s) and the docstring's text."""

    imports: str
    define: str  # "def priority(item: float, bins: np.ndarray) -> np.ndarray:"
    docstring: str
    entry: str

    def named(self, version: int | None) -> str:
        """The ``def`` line(s) under the name of a version (None: the entry's own name)."""
        name = self.entry if version is None else f"{self.entry}_v{version}"
        return re.sub(rf"\bdef {re.escape(self.entry)}\(", f"def {name}(", self.define, count=1)


def header(task: ProgramTask) -> Header:
    source = task.signature.rstrip() + "\n    pass\n"
    tree = ast.parse(source)
    lines = source.split("\n")
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == task.entry)
    first = fn.body[0]
    doc = ast.get_docstring(fn) if _is_docstring(first) else None
    body_start = first.lineno - 1
    define = "\n".join(lines[fn.lineno - 1 : body_start]).rstrip()
    imports = "\n".join(lines[: (fn.decorator_list[0] if fn.decorator_list else fn).lineno - 1])
    return Header(imports.strip(), define, " ".join((doc or "").split()), task.entry)


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def function_body(code: str, entry: str) -> str | None:
    """The body of ``entry`` in a program (its docstring dropped), indented as written."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return None
    fn = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == entry), None)
    if fn is None:
        return None
    body = fn.body[1:] if len(fn.body) > 1 and _is_docstring(fn.body[0]) else fn.body
    lines = code.split("\n")
    return "\n".join(lines[body[0].lineno - 1 : fn.end_lineno]).rstrip()


PROBLEM = '"""{description}"""'  # the file's first lines
IMPROVED = "Improved version of `{previous}`."  # the docstring of every version after v0


def prompt(task: ProgramTask, bodies: Sequence[str], *, problem: str = PROBLEM,
           improved: str = IMPROVED) -> tuple[str, str]:
    """(file text up to the new version, the new version's header: the prefill). ``bodies``:
    the shown programs' bodies, weakest first; ``problem`` and ``improved``: the templates of
    the file's opening and of a later version's docstring."""
    head = header(task)

    def version(n: int, body: str | None) -> str:
        doc = head.docstring if n == 0 else improved.format(previous=f"{head.entry}_v{n - 1}")
        return f'{head.named(n)}\n    """{doc}"""' + ("" if body is None else f"\n{body}")

    shown = "\n\n\n".join(version(i, body) for i, body in enumerate(bodies))
    intro = problem.format(description=task.description)
    text = "\n\n".join(p for p in (intro, head.imports) if p) + "\n\n\n" + shown + "\n\n\n"
    return text, version(len(bodies), None)


def program(task: ProgramTask, answer: str) -> tuple[str, None] | tuple[None, str]:
    """(program, None) from the text written after the new version's header, or (None, reason):
    the body ends at the first line that is not indented; trailing lines that break the parse
    are cut. A chat model may instead answer with a whole function (in a fenced block, after a
    sentence): then that function is the program, under the entry's name."""
    first, _, rest = answer.partition("\n")
    if first.strip():  # not a body that goes on from the header's line
        return _whole_function(task, answer)
    lines: list[str] = []
    for line in rest.split("\n"):
        if line.strip() and not line[:1].isspace():
            break
        lines.append(line.rstrip())
    while lines and not lines[-1].strip():
        lines.pop()
    if not any(line.strip() and not line.strip().startswith("#") for line in lines):
        return None, "empty"
    head = header(task)
    top = f"{head.imports}\n\n\n" if head.imports else ""
    for end in range(len(lines), 0, -1):
        code = f"{top}{head.named(None)}\n" + "\n".join(lines[:end]) + "\n"
        try:
            ast.parse(code)
        except SyntaxError:
            continue
        return code, None
    return None, "syntax_error"


def link_versions(task: ProgramTask, code: str, bodies: Sequence[str]) -> str:
    """``code`` with the definitions of the shown versions (``bodies``, weakest first) that it
    calls, directly or through another version, placed before the function."""
    head = header(task)
    call = re.compile(rf"\b{re.escape(head.entry)}_v(\d+)\b")
    code = re.sub(rf"\b{re.escape(head.entry)}_v{len(bodies)}\b", head.entry, code)
    needed: set[int] = set()
    todo = [int(k) for k in call.findall(code)]
    while todo:
        k = todo.pop()
        if k < len(bodies) and k not in needed:
            needed.add(k)
            todo += [int(j) for j in call.findall(bodies[k])]
    if not needed:
        return code
    versions = "".join(f"{head.named(k)}\n{bodies[k]}\n\n\n" for k in sorted(needed))
    at = code.find(head.named(None).split("(", 1)[0] + "(")
    at = at if at >= 0 else 0
    return code[:at] + versions + code[at:]


def _whole_function(task: ProgramTask, answer: str) -> tuple[str, None] | tuple[None, str]:
    thought, code = extract_program(answer, task.entry, signature_arity(task.signature,
                                                                        task.entry))
    if thought is None:
        return None, code  # the reason
    imports = header(task).imports
    return (f"{imports}\n\n\n{code}\n" if imports else f"{code}\n"), None
