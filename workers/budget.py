"""The job's budget: calls, tokens and wall time, with a reserve held back for final scoring."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from evo.engine import BudgetExhausted


@dataclass
class Budget:
    """Counts paid calls and tokens. ``reserve`` calls are kept for the final phase: the search may
    spend ``max_calls - reserve``; ``release_reserve()`` opens the rest for final scoring.

    Tokens are checked before a call with an estimate (prompt characters / 3 + max_tokens), so a
    token budget holds up to the accuracy of that estimate; calls and seconds are exact.
    """

    max_calls: int | None = None
    max_tokens: int | None = None
    max_seconds: float | None = None
    reserve: int = 0
    calls: int = 0
    tokens: int = 0
    cached: int = 0
    started: float = field(default_factory=time.monotonic)
    final: bool = False

    @property
    def call_limit(self) -> int | None:
        if self.max_calls is None:
            return None
        return self.max_calls if self.final else self.max_calls - self.reserve

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def affordable(self, wanted: int) -> int:
        """How many of ``wanted`` calls may start now (0 when time is up)."""
        if not self.final and self.max_seconds is not None and self.elapsed() >= self.max_seconds:
            return 0
        if self.call_limit is None:
            return wanted
        return max(0, min(wanted, self.call_limit - self.calls))

    def take(self, n: int, est_tokens: int = 0) -> None:
        """Commit to ``n`` calls, or raise ``BudgetExhausted`` without taking any."""
        if self.affordable(n) < n:
            what = "wall time" if self.affordable(n) == 0 and self.time_up() else "calls"
            raise BudgetExhausted(what)
        if self.max_tokens is not None and self.tokens + est_tokens > self.max_tokens:
            raise BudgetExhausted("tokens")
        self.calls += n

    def time_up(self) -> bool:
        return self.max_seconds is not None and self.elapsed() >= self.max_seconds

    def spend_tokens(self, tokens: int) -> None:
        self.tokens += tokens

    def release_reserve(self) -> None:
        self.final = True
