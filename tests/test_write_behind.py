"""A job's records written behind it: in order, coalesced, never lost by a stop or a dropped
connection, other errors raised."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from storage import LLMCallRecord, Store
from workers.write_behind import WriteBehind


def row(job: str, i: int) -> LLMCallRecord:
    return LLMCallRecord(job, None, "evaluate", "m", i, 1, 0.1, False, None)


class SlowWrites:
    """Records each write; each takes ``delay`` seconds, like a transaction, and the first one
    waits for ``gate`` (when given) before it starts."""

    def __init__(self, delay: float = 0.05, fail_on: int | None = None,
                 gate: threading.Event | None = None) -> None:
        self.delay, self.fail_on, self.gate = delay, fail_on, gate
        self.writes: list[list[int]] = []
        self.calls = 0
        self.started = threading.Event()
        self.threads: set[int] = set()

    def __call__(self, job: str, ledger: list, paid: list) -> None:
        self.threads.add(threading.get_ident())
        self.started.set()
        if self.gate is not None and self.calls == 0:
            assert self.gate.wait(10), "the test never opened the gate"
        time.sleep(self.delay)
        self.calls += 1
        if self.calls - 1 == self.fail_on:
            raise RuntimeError("database is gone")
        self.writes.append([seq for seq, _, _ in paid])


def test_rounds_are_written_in_order_and_coalesced_while_a_write_runs() -> None:
    gate = threading.Event()
    writes = SlowWrites(delay=0.0, gate=gate)

    async def job() -> None:
        w = WriteBehind(writes, "j")
        w.put([row("j", 0)], [(0, "k0", {"text": "0"})])
        await asyncio.to_thread(writes.started.wait, 10)  # the first write is in the database
        for seq in range(1, 5):  # four rounds return while it is still running
            w.put([row("j", seq)], [(seq, f"k{seq}", {"text": str(seq)})])
        assert writes.writes == []  # put() never waited for the database
        gate.set()
        await w.drain()

    asyncio.run(job())
    assert writes.writes == [[0], [1, 2, 3, 4]]  # in paying order, the waiting ones in one write
    assert threading.get_ident() not in writes.threads  # off the event loop's thread


def test_a_failed_write_is_raised_to_the_job() -> None:
    writes = SlowWrites(delay=0.0, fail_on=0)

    async def job() -> None:
        w = WriteBehind(writes, "j")
        w.put([row("j", 0)], [(0, "k0", {})])
        with pytest.raises(RuntimeError, match="database is gone"):
            await w.drain()
        w.put([row("j", 1)], [(1, "k1", {})])  # the next round is written again
        await w.drain()

    asyncio.run(job())
    assert writes.writes == [[1]]


def test_a_cancelled_drain_still_lets_the_write_finish() -> None:
    writes = SlowWrites(delay=0.2)

    async def job() -> None:
        w = WriteBehind(writes, "j")
        w.put([row("j", 0)], [(0, "k0", {})])
        waiter = asyncio.create_task(w.drain())
        await asyncio.sleep(0.05)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert writes.writes == [[0]]  # the stop waited for what was paid to be stored

    asyncio.run(job())


def test_records_land_in_the_store_as_paid(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'w.db'}") as store:
        store.create_job(job_id="j", name="j", task="t", algorithm="a", spec={}, seed=0,
                         status="running")

        async def job() -> None:
            w = WriteBehind(store.write_paid, "j")
            for seq in range(30):
                w.put([row("j", seq)], [(seq, f"k{seq}", {"text": f"answer {seq}"})])
                await asyncio.sleep(0)
            await w.drain()

        asyncio.run(job())
        assert [k for k, _ in store.paid_responses("j")] == [f"k{i}" for i in range(30)]
        assert sorted(c.prompt_tokens for c in store.llm_calls("j")) == list(range(30))


class Steps:
    """A store's two writes, logged in the order they are made; a step waits for ``gate``."""

    def __init__(self) -> None:
        self.log: list[object] = []
        self.gate = threading.Event()

    def paid(self, job: str, ledger: list, paid: list) -> None:
        self.log.append([seq for seq, _, _ in paid])

    def step(self, job: str, **fields: object) -> None:
        assert self.gate.wait(10), "the test never opened the gate"
        self.log.append(fields["checkpoint"])


def test_a_step_is_written_after_the_rounds_before_it_and_announced_once_stored() -> None:
    steps = Steps()
    announced: list[int] = []

    async def job() -> None:
        w = WriteBehind(steps.paid, "j", steps.step)
        w.put([row("j", 0)], [(0, "k0", {})])
        w.step(lambda: announced.append(1), checkpoint=1)  # never waits for the database
        w.put([row("j", 1)], [(1, "k1", {})])  # the next generation's round, meanwhile
        await asyncio.sleep(0.05)
        assert steps.log == [[0]] and announced == []  # the step is still being written
        steps.gate.set()
        await w.drain()

    asyncio.run(job())
    assert steps.log == [[0], 1, [1]]  # a checkpoint never lands before what it counts
    assert announced == [1]


def test_keep_up_lets_a_job_run_at_most_one_step_ahead_of_its_store() -> None:
    steps = Steps()

    async def job() -> None:
        w = WriteBehind(steps.paid, "j", steps.step)
        w.step(checkpoint=1)
        await w.keep_up()  # one step unwritten: the job goes on
        w.step(checkpoint=2)
        waiting = asyncio.create_task(w.keep_up())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # two unwritten: it waits for the first
        steps.gate.set()
        await waiting
        assert 1 in steps.log
        await w.drain()

    asyncio.run(job())
    assert steps.log == [1, 2]


def test_a_write_cut_off_by_a_dropped_connection_is_tried_again(pg_url: str) -> None:
    # A real PostgreSQL session ends under the writer mid-transaction (what a restarting
    # server or a lost network does); the write is tried again and the records land.
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with Store(pg_url) as store, admin.connect() as conn:
        store.create_job(job_id="j", name="j", task="t", algorithm="a", spec={}, seed=0,
                         status="running")
        locker = admin.connect()
        locker.execute(text("BEGIN"))
        locker.execute(text("LOCK TABLE llm_calls IN ACCESS EXCLUSIVE MODE"))
        me = locker.execute(text("SELECT pg_backend_pid()")).scalar()

        async def job() -> None:
            w = WriteBehind(store.write_paid, "j")
            w.FIRST_PAUSE_S = 0.05
            w.put([row("j", 0)], [(0, "k0", {"text": "0"})])
            for _ in range(200):  # the write now waits for the lock; end its session
                blocked = conn.execute(text(
                    "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND datname = current_database() AND pid <> :me"), {"me": me}).scalars()
                if pids := list(blocked):
                    for pid in pids:
                        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
                    break
                await asyncio.sleep(0.02)
            else:
                raise AssertionError("the write never reached the database")
            locker.execute(text("ROLLBACK"))
            await w.drain()  # no error: the second try went through

        try:
            asyncio.run(job())
        finally:
            locker.close()
        assert [k for k, _ in store.paid_responses("j")] == ["k0"]
        assert [c.prompt_tokens for c in store.llm_calls("j")] == [0]
    admin.dispose()


def test_a_failing_announcement_is_raised_to_the_job_like_a_failed_write() -> None:
    steps = Steps()
    steps.gate.set()

    def announce() -> None:
        raise ConnectionError("the event bus is gone")

    async def job() -> None:
        w = WriteBehind(steps.paid, "j", steps.step)
        w.step(announce, checkpoint=1)
        w.step(checkpoint=2)
        with pytest.raises(ConnectionError, match="bus is gone"):
            await w.keep_up(0)
        await w.drain()  # raised once; what was queued after it is still written

    asyncio.run(job())
    assert steps.log == [1, 2]
