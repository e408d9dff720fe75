"""What a person sees in the terminal while a job runs: a live line of its progress, through the
search and the final scoring, and its warnings.

In a terminal the line is redrawn in place and warnings are printed above it; written to a file
or a pipe, each step is one whole line, never wrapped (rich wraps at 80 columns there).
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from evo.events import (
    CallsMade,
    CandidateScored,
    Event,
    GenerationDone,
    JobEnded,
    JobStarted,
    PhaseChanged,
    SearchWarning,
)

__all__ = ["ProgressDisplay"]

# Off a terminal, the final scoring prints a line each time this share of its reserved calls is
# spent (besides one per prompt scored): a handful of lines however long it takes.
FINAL_STEP = 0.25


class ProgressDisplay:
    """Phase, generation, calls done / what the phase may spend, best score so far, elapsed."""

    def __init__(self, console: Console, *, enabled: bool = True) -> None:
        self.console = console
        self.enabled = enabled and console.is_terminal
        self.plain = enabled and not console.is_terminal
        self.started = time.monotonic()
        self.state: dict[str, Any] = {
            "phase": "starting", "generation": 0, "calls": 0, "budget": None, "reserved": 0,
            "best": None, "cached": 0, "job": "",
            # the final scoring: calls when it began, prompts scored on each split, the best on
            # full dev, lines printed for its calls
            "final_from": 0, "dev": 0, "test": 0, "final_best": None, "steps": 0,
        }
        self.warned: set[tuple[str, str]] = set()
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
            s.update(job=event.job_id, budget=event.budget_calls, reserved=event.reserved_calls,
                     phase="search")
        elif isinstance(event, CallsMade):
            s.update(calls=event.calls)
            s["cached"] += event.cached
            if s["phase"] == "final":
                self._final_step()
        elif isinstance(event, CandidateScored):
            self._scored(event)
        elif isinstance(event, GenerationDone):
            s["generation"] = event.generation
            self._print_line()
        elif isinstance(event, PhaseChanged):
            s["phase"] = event.phase
            if event.phase == "final":
                s["final_from"] = s["calls"]
                self._print_line()
        elif isinstance(event, SearchWarning):
            self._warn(event)
        elif isinstance(event, JobEnded):
            s["phase"] = event.status
        if self._live is not None:
            self._live.update(self.render())

    def _scored(self, event: CandidateScored) -> None:
        s = self.state
        if event.n == 0:  # a program that failed in the sandbox: no score, only a reason
            return
        if s["phase"] == "search":
            if s["best"] is None or event.value > s["best"]:
                s["best"] = event.value
        elif s["phase"] == "final":
            s["test" if event.split == "test" else "dev"] += 1
            if event.split == "dev" and (s["final_best"] is None or event.value > s["final_best"]):
                s["final_best"] = event.value
            self._print_line()

    def _final_step(self) -> None:
        """Off a terminal, a line at each ``FINAL_STEP`` of the reserve spent."""
        s = self.state
        if not s["reserved"]:
            return
        step = int((s["calls"] - s["final_from"]) / (s["reserved"] * FINAL_STEP))
        if step > s["steps"]:
            s["steps"] = step
            self._print_line()

    def _warn(self, event: SearchWarning) -> None:
        key = (event.code, event.message)
        if key in self.warned or not (self.enabled or self.plain):
            return
        self.warned.add(key)
        # printed through the console: with a live line shown, rich puts it above that line
        self.console.print(f"warning: {event.message}", style="yellow", soft_wrap=True,
                           markup=False, highlight=False)

    def _print_line(self) -> None:
        if self.plain:
            self.console.print(self.line(), soft_wrap=True, markup=False, highlight=False)

    def line(self) -> str:
        s = self.state
        calls = f"calls {s['calls']:,}"
        cached = f"(+{s['cached']:,} cached)"
        elapsed = f"elapsed {time.monotonic() - self.started:6.1f}s"
        if s["phase"] == "final":
            # the final phase may spend the whole budget: the search's share and the reserve
            budget = f"/{s['budget']:,}" if s["budget"] else ""
            best = "" if s["final_best"] is None else f"  best dev {s['final_best']:.3f}"
            return (f"final    scoring finalists: {calls}{budget} {cached}  {s['dev']} on full "
                    f"dev, {s['test']} on test{best}  {elapsed}")
        # the search may spend the budget less what is reserved for the final scoring; once
        # the job has ended, the whole budget is the measure
        limit = s["budget"] - s["reserved"] if s["phase"] == "search" else s["budget"]
        budget = f"/{limit:,}" if s["budget"] else ""
        best = "-" if s["best"] is None else f"{s['best']:.3f}"
        return (f"{s['phase']:<8} generation {s['generation']:>3}  {calls}{budget} {cached}  "
                f"best {best}  {elapsed}")

    def render(self) -> Group:
        return Group(Text(self.line(), style="bold cyan"))
