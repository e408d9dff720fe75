"""What a person sees in the terminal: live progress of a job, its leaderboard, its history."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from evo.events import (
    CallsMade,
    CandidateScored,
    Event,
    GenerationDone,
    JobEnded,
    JobStarted,
    PhaseChanged,
)


class ProgressDisplay:
    """A live line: phase, generation, calls done / budget, best score so far, elapsed."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self.plain = enabled and not console.is_terminal
        self.started = time.monotonic()
        self.state: dict[str, Any] = {"phase": "starting", "generation": 0, "calls": 0,
                                      "budget": None, "best": None, "cached": 0, "job": ""}
        self._live: Live | None = None

    def __enter__(self) -> ProgressDisplay:
        self.started = time.monotonic()
        if self.enabled:
            self._live = Live(self.render(), console=self.console, refresh_per_second=4,
                              transient=True)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)
            self._live = None

    def on_event(self, event: Event) -> None:
        s = self.state
        if isinstance(event, JobStarted):
            s.update(job=event.job_id, budget=event.budget_calls, phase="search")
        elif isinstance(event, CallsMade):
            s.update(calls=event.calls)
            s["cached"] += event.cached
        elif isinstance(event, CandidateScored) and s["phase"] == "search":
            if s["best"] is None or event.value > s["best"]:
                s["best"] = event.value
        elif isinstance(event, GenerationDone):
            s["generation"] = event.generation
            if self.plain:
                self.console.print(self.line(), highlight=False)
        elif isinstance(event, PhaseChanged):
            s["phase"] = event.phase
        elif isinstance(event, JobEnded):
            s["phase"] = event.status
        if self._live is not None:
            self._live.update(self.render())

    def line(self) -> str:
        s = self.state
        budget = f"/{s['budget']}" if s["budget"] else ""
        best = "-" if s["best"] is None else f"{s['best']:.3f}"
        elapsed = time.monotonic() - self.started
        return (f"{s['phase']:<8} generation {s['generation']:>3}  calls {s['calls']}{budget} "
                f"(+{s['cached']} cached)  best {best}  elapsed {elapsed:6.1f}s")

    def render(self) -> Group:
        return Group(Text(self.line(), style="bold cyan"))


def versus_seed(stats: dict[str, Any]) -> str | None:
    """The paired test of the winner against the best seed on test, as a sentence, and any
    warning of a label bias."""
    found = stats.get("vs_seed")
    lines = [f"Winner on test: {found['sentence']}."] if found else []
    lines += [f"Warning: {w}." for w in (stats.get("label_bias") or {}).get("warnings", [])]
    return "\n".join(lines) or None


def leaderboard_table(result: Any) -> Table:
    table = Table(title=f"Leaderboard — job {result.job_id[:8]}", show_lines=False,
                  caption=versus_seed(result.stats), caption_justify="left")
    for col in ("#", "dev", "test", "generation", "operator", "prompt"):
        table.add_column(col, overflow="fold")
    for i, entry in enumerate(result.leaderboard, 1):
        c = entry.candidate
        table.add_row(str(i), f"{entry.dev:.3f} (n={entry.dev_n})", _fmt(entry.test),
                      str(c.generation), c.operator, c.text)
    if result.seed is not None:
        e = result.seed
        table.add_row("seed", f"{e.dev:.3f} (n={e.dev_n})", _fmt(e.test), "0", "seed",
                      e.candidate.text, style="dim")
    return table


def show_job(console: Console, store: Any, job: Any) -> None:
    stats = job.stats or {}
    console.print(f"[bold]{job.name}[/]  {job.id}  [{job.status}]"
                  + (f"  — {job.reason}" if job.reason else ""), highlight=False)
    console.print(f"task {job.task} · algorithm {job.algorithm} · seed {job.seed} · calls "
                  f"{stats.get('calls', 0)} (+{stats.get('cached', 0)} cached) · tokens "
                  f"{stats.get('tokens', 0)} · {stats.get('elapsed_s', 0)} s", highlight=False)
    made = {g.generation: g for g in store.generations(job.id)}
    gens = Table("generation", "population best", "population mean", "size", "new", "new best",
                 "calls so far", title="Population per generation (search scores)")
    for _, e in store.events(job.id, kind="GenerationDone"):
        g = made.get(e["generation"])
        gens.add_row(str(e["generation"]), f"{e['best']:.3f}", f"{e['mean']:.3f}", str(e["size"]),
                     str(g.size if g else 0), _fmt(g.best if g else None), str(e["calls"]))
    console.print(gens)
    board = Table("#", "dev", "n", "generation", "operator", "prompt", title="Best on full dev")
    for i, (cand, ev) in enumerate(store.leaderboard(job.id, split="dev", k=5), 1):
        board.add_row(str(i), f"{ev.value:.3f}", str(ev.n), str(cand.generation), cand.operator,
                      cand.text)
    console.print(board)
    if stats.get("best_test") is not None:
        console.print(f"winner test score {stats['best_test']:.3f}"
                      + (f" · seed test score {stats['seed_test']:.3f}"
                         if stats.get("seed_test") is not None else ""), highlight=False)
    if line := versus_seed(stats):
        console.print(line, highlight=False)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"
