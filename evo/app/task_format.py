"""What it takes to use an exported prompt again outside Evo: the template the prompt was scored
in, the system message, and for a label task the labels and the word the model answers each by.

A built-in task is loaded by name; a task defined in the spec is read from the stored spec alone
(its data files may be gone), completed from the built-in it adapts, if any. A program problem has
no template: the exported "prompt" is the program.
"""

from __future__ import annotations

from typing import Any

from evo.programs import ProgramTask
from evo.task import DEFAULT_TEMPLATE, TaskError, load_task


def task_format(task: str | dict[str, Any], stats: dict[str, Any]) -> dict[str, Any] | None:
    """``{"kind": "prompt", "template", "system", "labels", "verbalizers"}``, or for a program
    ``{"kind": "program", "entry"}``; None when the task is not known here (not built in and
    not defined in the spec)."""
    if isinstance(task, str):
        try:
            loaded = load_task(task)
        except (TaskError, OSError):
            return None
        if isinstance(loaded, ProgramTask):
            return {"kind": "program", "entry": loaded.entry}
        return _prompt_format(loaded.template, loaded.system, list(loaded.labels),
                              dict(loaded.verbalizers))
    return _from_spec(task, stats)


def _from_spec(spec: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
    from evo.tasks import BUILTINS, builtin_definition

    base = builtin_definition(spec["builtin"]) if spec.get("builtin") in BUILTINS else {}
    merged = {**base, **{k: v for k, v in spec.items() if v is not None}}
    # labels a spec leaves out are inferred from the data when the job loads it; the job's
    # label counts name them
    labels = list(merged.get("labels") or (stats.get("label_bias") or {}).get("true") or [])
    verbalizers = {label: label for label in labels}
    verbalizers.update({k: v for k, v in (merged.get("verbalizers") or {}).items()
                        if k in verbalizers})
    return _prompt_format(merged.get("template") or DEFAULT_TEMPLATE, merged.get("system"),
                          labels, verbalizers)


def _prompt_format(template: str, system: str | None, labels: list[str],
                   verbalizers: dict[str, str]) -> dict[str, Any]:
    return {"kind": "prompt", "template": template, "system": system, "labels": labels,
            "verbalizers": verbalizers}
