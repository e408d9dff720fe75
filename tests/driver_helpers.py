"""Building a driver over the toy task and reading back what it stored."""

from __future__ import annotations

from evo.spec import JobSpec
from storage import Store
from tests.helpers import scripted, toy_task
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.pool import LocalWorker, Pool
from workers.scripted import ScriptedClient, hashed_reply


def run_toy(store: Store, spec: dict, reply=None, job_id: str = "j" * 32, task=None):
    client = ScriptedClient(reply or scripted(hashed_reply))
    pool = Pool([LocalWorker(client)], model="scripted", batch_size=3)
    base = {"task": "sentiment", "evaluation": {"top_k": 2}, "budget": {"calls": 100_000}}
    job = JobSpec.model_validate({**base, **spec})
    driver = Driver(job, task or toy_task(), store=store, task_pool=pool, meta_pool=pool,
                    cache=MemoryCache(), job_id=job_id)
    return driver


def snapshot(store: Store, job_id: str) -> list[tuple]:
    """Candidates, lineage (as positions, not ids) and scores, independent of the job id."""
    cands = store.candidates(job_id)
    index = {c.id: i for i, c in enumerate(cands)}
    scores = {}
    for e in store.evaluations(job_id):
        scores.setdefault(e.candidate_id, []).append((e.split, e.subset, e.value, e.n))
    return [(c.text, c.operator, c.generation, tuple(index[p] for p in c.parents),
             tuple(scores[c.id])) for c in cands]
