"""Typed events out of a job. The driver publishes; the store writer, the progress display and
(later) the API's live stream subscribe. The driver never imports a subscriber."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    job_id: str

    @property
    def kind(self) -> str:
        return type(self).__name__

    def payload(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}


@dataclass(frozen=True)
class JobStarted(Event):
    algorithm: str
    task: str
    budget_calls: int | None
    reserved_calls: int
    epoch: int = 0  # the lease it runs under
    driver: str | None = None  # the driver that runs it: one per epoch


@dataclass(frozen=True)
class CallsMade(Event):
    calls: int
    tokens: int
    cached: int


@dataclass(frozen=True)
class CandidateScored(Event):
    candidate_id: str
    generation: int
    operator: str
    split: str
    value: float
    n: int


@dataclass(frozen=True)
class GenerationDone(Event):
    generation: int
    best: float
    mean: float
    size: int
    calls: int
    tokens: int
    epoch: int = 0
    driver: str | None = None


@dataclass(frozen=True)
class PhaseChanged(Event):
    phase: str  # "search" | "final"


@dataclass(frozen=True)
class SearchWarning(Event):
    """Something the user should know while the job runs, said once: ``code`` names it for
    programs (``no_spread``: every candidate scored the same), ``message`` for people."""

    code: str
    message: str


@dataclass(frozen=True)
class JobEnded(Event):
    status: str
    reason: str | None = None
    best_candidate_id: str | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    driver: str | None = None  # None: ended from outside its driver (a takeover, a service)


Subscriber = Callable[[Event], None]


class InProcessBus:
    """Delivers each event to every subscriber, in order, in the publishing thread.

    A failing subscriber is logged and skipped: a broken progress bar must not stop a job.
    """

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, fn: Subscriber) -> Callable[[], None]:
        self._subscribers.append(fn)
        return lambda: self._subscribers.remove(fn)

    def publish(self, event: Event) -> None:
        for fn in list(self._subscribers):
            try:
                fn(event)
            except Exception:
                log.exception("event subscriber failed on %s", event.kind)
