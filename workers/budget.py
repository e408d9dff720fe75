"""The job's budget: calls, tokens, money and wall time, with a reserve held back for final
scoring."""

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

    Money (``max_usd``) is never exceeded: a round of calls is taken only if what was spent, what
    rounds still in flight may cost, and the round's upper bound (``workers/cost.py``) fit under
    the limit; a round that returns charges its actual cost and gives back its bound.
    ``reserve_usd`` is held for the final phase like ``reserve``.
    """

    max_calls: int | None = None
    max_tokens: int | None = None
    max_seconds: float | None = None
    reserve: int = 0
    max_usd: float | None = None
    reserve_usd: float = 0.0
    usd: float = 0.0  # spent
    usd_held: float = 0.0  # the bounds of rounds in flight
    calls: int = 0
    tokens: int = 0
    cached: int = 0
    started: float = field(default_factory=time.monotonic)
    final: bool = False
    short: str = "calls"  # what the last candidate left unscored could not be paid with

    @property
    def call_limit(self) -> int | None:
        if self.max_calls is None:
            return None
        return self.max_calls if self.final else self.max_calls - self.reserve

    @property
    def usd_limit(self) -> float | None:
        if self.max_usd is None:
            return None
        return self.max_usd if self.final else self.max_usd - self.reserve_usd

    def usd_left(self) -> float | None:
        """What a new round may still cost (None: no money budget)."""
        limit = self.usd_limit
        return None if limit is None else limit - self.usd - self.usd_held

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def affordable(self, wanted: int) -> int:
        """How many of ``wanted`` calls may start now (0 when time is up)."""
        if not self.final and self.max_seconds is not None and self.elapsed() >= self.max_seconds:
            return 0
        if self.call_limit is None:
            return wanted
        return max(0, min(wanted, self.call_limit - self.calls))

    def take(self, n: int, est_tokens: int = 0, usd_bound: float = 0.0) -> None:
        """Commit to ``n`` calls that cost at most ``usd_bound``, or raise ``BudgetExhausted``
        without taking any."""
        if self.affordable(n) < n:
            what = "wall time" if self.affordable(n) == 0 and self.time_up() else "calls"
            raise BudgetExhausted(what)
        if self.max_tokens is not None and self.tokens + est_tokens > self.max_tokens:
            raise BudgetExhausted("tokens")
        left = self.usd_left()
        if left is not None and usd_bound > left:
            raise BudgetExhausted("usd")
        self.calls += n
        self.usd_held += usd_bound

    def short_of(self) -> str:
        """Why scoring stopped short: the wall time, or what the scorer found missing."""
        return "wall time" if self.time_up() else self.short

    def time_up(self) -> bool:
        return self.max_seconds is not None and self.elapsed() >= self.max_seconds

    def spend_tokens(self, tokens: int) -> None:
        self.tokens += tokens

    def settle(self, usd_bound: float, spent: float) -> None:
        """A round taken with ``usd_bound`` came back having cost ``spent`` (0 if cancelled)."""
        self.usd_held = max(0.0, self.usd_held - usd_bound)
        self.usd += spent

    def release_reserve(self) -> None:
        self.final = True
