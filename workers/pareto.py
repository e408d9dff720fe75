"""A second objective beside the score: the finalists no other beats on both.

With ``evaluation.objectives: [score, -prompt_tokens]`` (or ``-cost_per_call``) the final phase
scores its finalists as with one objective, then keeps those that are non-dominated:

    for each finalist f (full-dev score s_f, cost c_f: its length or its cost per call):
        f is on the front unless some g has s_g >= s_f and c_g <= c_f, one of them strictly

Two finalists equal on both are both kept. The front is stored with the job (``stats["pareto"]``,
best score first); the winner stays the best by score.

What the cost is:
  prompt_tokens   the prompt's length, counted without a tokenizer: words and punctuation marks
                  (``\\w+`` runs and single other non-space characters), a stable stand-in for a
                  BPE count that ranks prompts the same way for ordinary text
  cost_per_call   the mean USD of one of the candidate's task calls at the task model's price,
                  from the tokens its ledger rows record (cache hits count at the tokens of the
                  answer they reuse, so a cached prompt is not free by luck)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from evo.spec import Price
from storage import LLMCallRecord
from workers.final import Entry

_TOKEN = re.compile(r"\w+|[^\w\s]")
EVALUATE = "evaluate"  # the ledger purpose of a task-model call that scores a prompt


def prompt_tokens(text: str) -> int:
    """A prompt's length in tokens, estimated without a tokenizer (see the module docstring)."""
    return len(_TOKEN.findall(text))


def pareto_front(points: Sequence[tuple[str, float, float]]) -> list[str]:
    """The ids of the points (id, score to maximise, cost to minimise) no other point dominates,
    best score first (then lower cost, then the given order)."""
    def dominated(s: float, c: float) -> bool:
        return any(s2 >= s and c2 <= c and (s2 > s or c2 < c) for _, s2, c2 in points)

    keep = [(i, p) for i, p in enumerate(points) if not dominated(p[1], p[2])]
    keep.sort(key=lambda ip: (-ip[1][1], ip[1][2], ip[0]))
    return [p[0] for _, p in keep]


def cost_per_call(calls: Iterable[LLMCallRecord], price: Price) -> dict[str, float]:
    """Candidate id -> the mean cost of its error-free task calls at ``price``."""
    sums: dict[str, list[float]] = {}
    for c in calls:
        if c.candidate_id is None or c.purpose != EVALUATE or c.error is not None:
            continue
        usd = (c.prompt_tokens * price.input + c.completion_tokens * price.output) / 1_000_000
        acc = sums.setdefault(c.candidate_id, [0.0, 0])
        acc[0] += usd
        acc[1] += 1
    return {cid: total / n for cid, (total, n) in sums.items()}


def front_of(
    board: Sequence[Entry], objective: str, costs: dict[str, float] | None = None
) -> list[dict[str, Any]]:
    """The board's Pareto front as stored: ``{candidate_id, score, <cost name>, text}`` each.
    ``objective`` is ``-prompt_tokens`` or ``-cost_per_call`` (then ``costs`` by candidate id; a
    finalist without one is left out: nothing says what it costs)."""
    name = objective.removeprefix("-")
    rows: dict[str, dict[str, Any]] = {}
    for e in board:
        cid = e.candidate.id
        if name == "prompt_tokens":
            cost: float = prompt_tokens(e.candidate.text)
        elif costs is not None and cid in costs:
            cost = costs[cid]
        else:
            continue
        rows.setdefault(cid, {"candidate_id": cid, "score": e.dev, name: cost,
                              "text": e.candidate.text})
    front = pareto_front([(cid, r["score"], r[name]) for cid, r in rows.items()])
    return [rows[cid] for cid in front]
