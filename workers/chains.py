"""Many short chains of model calls run side by side, their calls sent a round at a time.

An evaluation strategy (``evo/strategies.py``) answers one example with a few calls, one after
another. Scoring a prompt runs one chain per example; sending each call alone would lose the
batching that makes a local model fast. ``lockstep`` runs the chains as tasks and, whenever every
unfinished chain waits on the model, sends what they asked together: one ``send`` per purpose,
in the order the purposes were first asked, and the answers are handed back only once the whole
round is answered. The rounds, their order and their contents depend on the chains alone, never
on timing, so a resumed job asks again exactly what it asked before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

from evo.llm import LLMRequest, LLMResponse

T = TypeVar("T")
Ask = Callable[[LLMRequest, str], Awaitable[LLMResponse]]
# (requests, purpose, owners) -> responses in order
Send = Callable[[list[LLMRequest], str, list[str | None]], Awaitable[list[LLMResponse]]]


async def lockstep(
    chains: Sequence[Callable[[Ask], Awaitable[T]]],
    owners: Sequence[str | None],
    send: Send,
) -> list[T]:
    """Each chain's result, in order; ``owners[i]`` is who chain ``i``'s calls are for. An
    exception of ``send`` or of a chain ends them all and is raised."""
    loop = asyncio.get_running_loop()
    waiting: list[tuple[str, LLMRequest, str | None, asyncio.Future[LLMResponse]]] = []
    running = len(chains)
    round_ready = asyncio.Event()

    def check() -> None:
        if len(waiting) == running:  # every unfinished chain waits (or none is left)
            round_ready.set()

    def asker(owner: str | None) -> Ask:
        async def ask(request: LLMRequest, purpose: str) -> LLMResponse:
            future: asyncio.Future[LLMResponse] = loop.create_future()
            waiting.append((purpose, request, owner, future))
            check()
            return await future

        return ask

    async def run(chain: Callable[[Ask], Awaitable[T]], owner: str | None) -> T:
        nonlocal running
        try:
            return await chain(asker(owner))
        finally:
            running -= 1
            check()

    tasks = [asyncio.ensure_future(run(c, o)) for c, o in zip(chains, owners, strict=True)]
    try:
        while running:
            await round_ready.wait()
            round_ready.clear()
            if any(t.done() and not t.cancelled() and t.exception() is not None for t in tasks):
                break  # a chain failed: the others are not worth paying for
            batch, waiting[:] = list(waiting), []
            answers: list[tuple[asyncio.Future[LLMResponse], LLMResponse]] = []
            for purpose in dict.fromkeys(p for p, _, _, _ in batch):
                group = [b for b in batch if b[0] == purpose]
                got = await send([r for _, r, _, _ in group], purpose, [o for _, _, o, _ in group])
                answers += [(f, a) for (_, _, _, f), a in zip(group, got, strict=True)]
            for future, response in answers:
                future.set_result(response)
        for t in tasks:
            if t.done() and not t.cancelled() and t.exception() is not None:
                raise t.exception()  # type: ignore[misc]  # a failed chain's own error
        return [t.result() for t in tasks]
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
