"""evo.gather: nothing keeps running after it returns or raises; strands are named by where
they started, not by when they ran."""

from __future__ import annotations

import asyncio

import pytest

from evo.engine import BudgetExhausted
from evo.gather import Strand, enter, fan_out, gather, strand


async def test_results_come_back_in_argument_order() -> None:
    async def after(delay: float, value: int) -> int:
        await asyncio.sleep(delay)
        return value

    assert await gather(after(0.03, 1), after(0.0, 2), after(0.01, 3)) == [1, 2, 3]
    assert await gather() == []


async def test_a_failure_stops_the_others_before_it_is_raised() -> None:
    finished: list[str] = []

    async def slow(name: str) -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.shield(asyncio.sleep(0.05))  # cleanup that takes a while
            finished.append(name)

    async def broke() -> None:
        await asyncio.sleep(0.01)
        raise BudgetExhausted("calls")

    with pytest.raises(BudgetExhausted):  # the error itself, not a group of them
        await gather(slow("a"), broke(), slow("b"))
    assert sorted(finished) == ["a", "b"]


async def test_asyncio_gather_would_leave_them_running() -> None:
    """What this module exists for: the same case through asyncio.gather returns early."""
    finished: list[str] = []

    async def slow() -> None:
        await asyncio.sleep(0.1)
        finished.append("slow")

    async def broke() -> None:
        raise BudgetExhausted("calls")

    with pytest.raises(BudgetExhausted):
        await asyncio.gather(slow(), broke())
    assert finished == []
    await asyncio.sleep(0.15)
    assert finished == ["slow"]  # it went on, unowned


async def test_cancelling_the_caller_waits_for_every_child_to_finish() -> None:
    finished: list[str] = []
    started = asyncio.Event()

    async def writes() -> None:
        started.set()
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.shield(asyncio.sleep(0.05))  # a write that must land
            finished.append("written")
            raise

    outer = asyncio.create_task(gather(writes(), writes()))
    await started.wait()
    outer.cancel()
    await asyncio.sleep(0)
    outer.cancel()  # a second request while the children wind down changes nothing
    with pytest.raises(asyncio.CancelledError):
        await outer
    assert finished == ["written", "written"]


async def test_a_cancellation_during_the_cleanup_of_a_failure_wins() -> None:
    async def slow_cleanup() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            await asyncio.shield(asyncio.sleep(0.1))

    async def broke() -> None:
        await asyncio.sleep(0.01)
        raise ValueError("bad")

    outer = asyncio.create_task(gather(slow_cleanup(), broke()))
    await asyncio.sleep(0.05)  # the failure happened; the other child is cleaning up
    outer.cancel()
    with pytest.raises(asyncio.CancelledError):
        await outer


async def test_strands_number_their_asks_the_same_whatever_the_interleaving() -> None:
    async def asker(delays: list[float]) -> list[tuple[tuple[int, ...], int]]:
        asked = []
        for delay in delays:
            line = strand()
            asked.append((line.path, line.asked["same request"]))
            line.asked["same request"] += 1
            await asyncio.sleep(delay)
        return asked

    async def search(first: list[float], second: list[float]) -> list:
        enter(Strand())
        one = await gather(asker(first), asker(second))
        await fan_out(asker([0]), asker([0]))  # the engine's own fan-out makes no strands
        two = await gather(asker([0]))
        return [one, two, strand().forks]

    # the first strand finishes first, then last: each still gets its own numbers
    a = await asyncio.create_task(search([0, 0, 0], [0.02, 0.02, 0.02]))
    b = await asyncio.create_task(search([0.02, 0.02, 0.02], [0, 0, 0]))
    assert a == b
    assert a[0] == [[((0, 0), 0), ((0, 0), 1), ((0, 0), 2)],
                    [((0, 1), 0), ((0, 1), 1), ((0, 1), 2)]]
    assert a[1] == [[((1, 0), 0)]] and a[2] == 2
