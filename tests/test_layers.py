"""The core (``evo/`` outside ``evo/app/``) does no I/O of the service's kind: it never imports the
service's packages or their drivers. Only ``evo.optimize`` may reach the runner, lazily."""

from __future__ import annotations

import ast
from pathlib import Path

import evo

CORE = Path(evo.__file__).parent
FORBIDDEN = {"workers", "storage", "api", "ray", "sqlalchemy", "httpx", "aiohttp", "fastapi"}
# (module, imported top-level package) pairs the rule allows
ALLOWED = {("evo/__init__.py", "workers")}


def _imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def core_violations() -> list[str]:
    found = []
    for path in sorted(CORE.rglob("*.py")):
        rel = path.relative_to(CORE.parent).as_posix()
        if rel.startswith("evo/app/"):
            continue
        for name in sorted(_imports(ast.parse(path.read_text(), rel)) & FORBIDDEN):
            if (rel, name) not in ALLOWED:
                found.append(f"{rel} imports {name}")
    return found


def test_core_imports_nothing_of_the_service():
    assert core_violations() == []


def test_the_check_sees_imports_at_any_depth(tmp_path):
    # nested (lazy) imports count as much as top-level ones
    tree = ast.parse("def f():\n    import ray\n    from storage.db import x\n")
    assert _imports(tree) == {"ray", "storage"}
    assert "workers" in _imports(ast.parse("from workers.runner import optimize"))
