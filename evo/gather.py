"""``gather`` that never leaves work running behind it.

``asyncio.gather`` returns as soon as one awaitable fails or is cancelled, while the others go on
running unowned: after a stop they may still pay for LLM calls, write rows or spend the final
phase's reserve. This one cancels the rest on the first failure, and on its own cancellation, and
returns only once every one of them has finished; then it raises the first error as it was (no
``ExceptionGroup``, so ``except BudgetExhausted`` still reads naturally).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def gather(*aws: Awaitable[T]) -> list[T]:
    """Results in argument order; the first failure (or a cancellation) stops the others."""
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
