"""The Markdown export: the job in a few lines, each exported prompt with its scores and where it
came from, and how to use the prompt again."""

from __future__ import annotations

from typing import Any

BUNDLED = "the bundled SmolLM2-135M-Instruct"
ROLES = {"task": "answers the task", "meta": "writes new prompts"}


def markdown(d: dict[str, Any]) -> str:
    cost = d["cost"]
    lines = [
        f"# {d['name']}",
        "",
        f"- job: `{d['job_id']}` ({d['status']})",
        f"- task: {d['task']} · algorithm: {d['algorithm']} · seed: {d['seed']}",
        *model_lines(d["model"]),
        f"- seed prompt: dev {_f(d['seed_prompt_scores']['dev'])}, "
        f"test {_f(d['seed_prompt_scores']['test'])}",
        *([f"- winner on test: {d['versus_seed']['sentence']}"] if d["versus_seed"] else []),
        *[f"- warning: {w}" for w in (d["label_bias"] or {}).get("warnings", [])],
        f"- cost: {_n(cost['calls'])} calls, {_n(cost['tokens'])} tokens, "
        f"{_n(cost['elapsed_s'])} s",
        "",
    ]
    for i, p in enumerate(d["prompts"], 1):
        lines += [f"## {i}. dev {_f(p['dev_score'])} · test {_f(p['test_score'])}", ""]
        if i == 1 and p["seed_prompt"]:
            lines += ["**The winner is a seed prompt**: the search found no prompt better than "
                      "it on the full dev split.", ""]
        lines += ["```text", p["prompt"], "```", "", origin(p), ""]
    lines += pareto(d.get("pareto"))
    lines += usage(d["task_format"])
    return "\n".join(lines)


def pareto(front: list[dict[str, Any]] | None) -> list[str]:
    """The finalists no other beats on both score and cost per use, best score first."""
    if not front:
        return []
    per_use = "prompt tokens" if "prompt_tokens" in front[0] else "USD per call"
    lines = ["## Pareto front", "", "The finalists no other beats on both the full-dev score and "
             f"the cost per use ({per_use}):", "", f"| dev score | {per_use} | prompt |",
             "|---|---|---|"]
    for p in front:
        cost = p.get("prompt_tokens", p.get("cost_per_call"))
        shown = f"{cost:.3g}" if isinstance(cost, float) else f"{cost}"
        text = " ".join(p["text"].split()).replace("|", "\\|")
        lines.append(f"| {_f(p['score'])} | {shown} | {text[:80]} |")
    return [*lines, ""]


def model_lines(models: dict[str, dict[str, Any]]) -> list[str]:
    """One line per model and what it did; the task model writes new prompts too when the job
    names no meta model. Never a key: the export holds only provider, model and base URL."""
    out = []
    for role, m in models.items():
        does = ROLES.get(role, role)
        if role == "task" and "meta" not in models:
            does += " and writes new prompts"
        name = m.get("model") or (BUNDLED if m.get("provider") == "local" else "its default")
        where = f" at {m['base_url']}" if m.get("base_url") else ""
        out.append(f"- model ({does}): {m.get('provider', '?')}, {name}{where}")
    return out


def origin(p: dict[str, Any]) -> str:
    """Where a prompt came from: a seed, or which operator made it from how many ancestors."""
    if p["seed_prompt"]:
        return "a seed prompt of the task (generation 0)"
    by = dict(p["lineage"].get("ancestor_operators") or {})
    n = p["lineage"]["ancestors"]
    seeds = by.pop("seed", 0)
    if n == 0:
        whence = ""
    elif not by:
        whence = " (both seed prompts)" if n == 2 else (
            " (a seed prompt)" if n == 1 else f" (all {n} seed prompts)")
    else:
        parts = [_plural(seeds, "seed prompt")] if seeds else []
        parts += [f"{k} made by `{op}`" for op, k in by.items()]
        whence = f" ({', '.join(parts)})"
    ancestors = f" from {_plural(n, 'ancestor')}" if n else ""
    return f"made by `{p['operator']}` in generation {p['generation']}{ancestors}{whence}"


def usage(fmt: dict[str, Any] | None) -> list[str]:
    """How to use the prompt again: for a prompt, the template it fills and the answers it asks
    for; for a program, the function it defines."""
    if fmt is None:
        return []
    if fmt["kind"] == "program":
        return ["## Using it", "", "The exported prompt is the program itself: it defines "
                f"`{fmt['entry']}`, which the problem's harness calls.", ""]
    lines = ["## Using the prompt", "",
             "It was scored in this template: the prompt fills `{prompt}`, the input `{input}`.",
             "", "```text", fmt["template"], "```", ""]
    if fmt["system"]:
        lines += ["With this system message:", "", "```text", fmt["system"], "```", ""]
    if fmt["labels"]:
        lines += ["The model answers with the word for a label (label: word):", ""]
        lines += [f"- {label}: `{fmt['verbalizers'].get(label, label)}`" for label in fmt["labels"]]
        lines += [""]
    return lines


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _f(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _n(v: float | None) -> str:
    """Thousands separated; "—" for a figure the job does not have."""
    if v is None:
        return "—"
    return f"{v:,}"
