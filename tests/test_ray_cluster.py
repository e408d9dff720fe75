"""A real two-node Ray cluster on this machine: the pool spreads over both nodes, and a killed
LLM actor costs nothing but its share of the work."""

from __future__ import annotations

from pathlib import Path

import pytest

from evo.app.settings import Settings
from evo.spec_io import parse_spec
from evo.task import load_task
from storage import Store
from tests.ray_helpers import ray_cluster
from tests.test_e2e_local import small_copy
from workers.cache import MemoryCache
from workers.cluster import PoolFactory
from workers.driver import Driver
from workers.runner import optimize

pytestmark = [pytest.mark.ray, pytest.mark.model]



@pytest.fixture(scope="module")
def cluster():
    """Head node and a second node that joins it, one CPU each."""
    with ray_cluster(1, 1) as address:
        yield address


def spec_for(tmp_path: Path, generations: int) -> dict:
    return {
        "task": small_copy(tmp_path, "topic", n=10),
        "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": generations},
        "models": {"task": {"provider": "local"}},
        "evaluation": {"top_k": 1, "batch_size": 4},
        "budget": {"calls": 2000},
    }


def test_calls_run_on_both_nodes(tmp_path: Path, cluster: str) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'c.db'}", executor="ray",
                        ray_address=cluster)
    result = optimize(spec_for(tmp_path, 1), settings=settings)
    assert result.status == "completed"
    served = result.stats["served_by"]
    assert len(served) == 2 and all(n > 0 for n in served.values())  # two node ids, both busy


async def test_killed_actor_is_retried_elsewhere(tmp_path: Path, cluster: str) -> None:
    import ray

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}", executor="ray",
                        ray_address=cluster)
    spec = parse_spec(spec_for(tmp_path, 3))
    pools = PoolFactory(settings, spec.evaluation.batch_size)
    pool = pools.build(spec.models.task)
    assert len(pool.workers) == 2
    with Store(settings.database_url) as store:
        driver = Driver(spec, load_task(spec.task), store=store, task_pool=pool, meta_pool=pool,
                        cache=MemoryCache(), job_id="k" * 32)
        victim = pool.workers[0].handle
        killed = []

        def kill_once(event) -> None:
            if type(event).__name__ == "GenerationDone" and not killed:
                ray.kill(victim)  # the actor process dies mid-job
                killed.append(event.generation)

        driver.bus.subscribe(kill_once)
        try:
            result = await driver.run()
        finally:
            pools.close()
        assert killed == [0]
        assert result.status == "completed" and result.best.test is not None
        assert pool.dead == {0}
        generations = [e["generation"] for _, e in store.events(driver.job_id,
                                                                kind="GenerationDone")]
        assert generations == [0, 1, 2, 3]
