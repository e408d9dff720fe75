"""A job that dies after its last checkpoint's cache hits were stored, and is resumed: the ledger
counts each cache hit once, as the job's stats do and as a run that never stopped would."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from storage import Store
from tests.helpers import Crash, scripted_job
from workers.scripted import hashed_reply

SPEC = {"algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 2,
                      "dev_subset": 6}, "seed": 4}


def hits(store: Store, job_id: str) -> tuple[int, int, int]:
    calls = store.llm_calls(job_id)
    stats = store.get_job(job_id).stats
    return sum(c.cached for c in calls), stats["cached"], sum(not c.cached for c in calls)


def test_hits_stored_after_the_checkpoint_are_not_stored_again(store: Store) -> None:
    straight, _, _ = scripted_job(SPEC, hashed_reply, store)
    asyncio.run(straight.run())
    crashing, _, _ = scripted_job(SPEC, hashed_reply, store)

    async def die(*args: Any, **kwargs: Any) -> None:
        raise Crash  # scored and stored, the job's end not yet written

    crashing._end = die  # type: ignore[method-assign]
    with contextlib.suppress(Crash):
        asyncio.run(crashing.run())
    stored, _, _ = hits(store, crashing.job_id)
    assert stored > 0  # the final phase's hits were stored before the crash
    resumed, _, _ = scripted_job(SPEC, hashed_reply, store, job_id=crashing.job_id)
    asyncio.run(resumed.run(resume=True))
    again = hits(store, crashing.job_id)
    assert again[0] == again[1] == hits(store, straight.job_id)[0]
    assert again == hits(store, straight.job_id)
