"""``gather`` that never leaves work running behind it.

``asyncio.gather`` returns as soon as one awaitable fails or is cancelled, while the others go on
running unowned: after a stop they may still pay for LLM calls, write rows or spend the final
phase's reserve. This one cancels the rest on the first failure, and on its own cancellation, and
returns only once every one of them has finished; then it raises the first error as it was (no
``ExceptionGroup``, so ``except BudgetExhausted`` still reads naturally).

Each awaitable runs as a strand of its own, named by where it was started (the i-th of the
caller's k-th gather), not by when it ran. The engine numbers a strand's repeated meta-LLM asks
within the strand, so which sample a request gets never depends on how concurrent strands
interleave: a run, and a run resumed after a crash that replays its answers without waiting,
ask for exactly the same samples.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass
class Strand:
    """One sequential line of an algorithm's work: its ``run`` (path ``()``) or a task started by
    ``gather``; ``forks`` counts the gathers it started, ``asked`` its asks per request."""

    path: tuple[int, ...] = ()
    forks: int = 0
    asked: Counter[str] = field(default_factory=Counter)


_STRAND: ContextVar[Strand | None] = ContextVar("evo_strand", default=None)


def strand() -> Strand:
    """The strand the caller runs in (a fresh root outside any)."""
    current = _STRAND.get()
    if current is None:
        current = Strand()
        _STRAND.set(current)
    return current


def enter(root: Strand) -> None:
    """Run the caller's task, and what it gathers, as ``root``."""
    _STRAND.set(root)


async def _within(line: Strand, aw: Awaitable[T]) -> T:
    _STRAND.set(line)  # a task's context is its own copy: siblings never see this
    return await aw


async def gather(*aws: Awaitable[T]) -> list[T]:
    """Results in argument order; the first failure (or a cancellation) stops the others. For an
    algorithm's concurrent work: each awaitable is a strand of the search."""
    parent = strand()
    fork = parent.forks
    parent.forks += 1
    return await _gather(
        [_within(Strand((*parent.path, fork, i)), a) for i, a in enumerate(aws)]
    )


async def fan_out(*aws: Awaitable[T]) -> list[T]:
    """``gather`` for the engine's own fan-out (calls to a pool, programs to a sandbox): no new
    strands, so a strand's numbering never depends on what a cache already held."""
    return await _gather(list(aws))


async def _gather(aws: list[Awaitable[T]]) -> list[T]:
    tasks = [asyncio.ensure_future(a) for a in aws]
    if not tasks:
        return []
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    except asyncio.CancelledError:
        await _stop(tasks)
        raise
    failed = [t for t in tasks if t.done() and (t.cancelled() or t.exception() is not None)]
    if failed:
        if await _stop(tasks):
            raise asyncio.CancelledError  # the caller was stopped meanwhile: that comes first
        errors = [t.exception() for t in failed if not t.cancelled()]
        if errors:
            raise errors[0]  # type: ignore[misc]
        raise asyncio.CancelledError
    return [t.result() for t in tasks]


async def _stop(tasks: list[asyncio.Future]) -> bool:
    """Cancel what still runs and wait until all of it has finished, even through cancellations
    of the caller meanwhile; says whether there were any."""
    for t in tasks:
        t.cancel()
    waiting = asyncio.ensure_future(asyncio.wait(tasks))
    interrupted = False
    while not waiting.done():
        try:
            await asyncio.shield(waiting)
        except asyncio.CancelledError:
            interrupted = True
    for t in tasks:  # mark every outcome retrieved: they were seen here
        if not t.cancelled():
            t.exception()
    return interrupted
