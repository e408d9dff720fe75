"""A real two-node Ray cluster on this machine: the pool spreads over both nodes, and a killed
LLM actor costs nothing but its share of the work."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from evo.settings import Settings
from evo.spec_io import parse_spec
from evo.task import load_task
from storage import Store
from tests.test_e2e_local import small_copy
from workers.cache import MemoryCache
from workers.driver import Driver
from workers.runner import PoolFactory, optimize

pytestmark = [pytest.mark.ray, pytest.mark.model]

RAY = str(Path(sys.executable).with_name("ray"))


def ray_cli(*args: str) -> None:
    subprocess.run([RAY, *args], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "RAY_AUTH_MODE": "disabled"})


@pytest.fixture(scope="module")
def cluster():
    """Head node and a second node that joins it, one CPU each."""
    from servers import free_port

    assert shutil.which(RAY), "the ray command is missing"
    port = free_port()
    # a short folder of its own (Ray's socket paths must stay under 108 bytes): it names this
    # cluster's processes, so that only they are stopped afterwards
    temp_dir = tempfile.mkdtemp(prefix="evo-ray-", dir="/tmp")
    try:
        ray_cli("start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                "--disable-usage-stats", f"--temp-dir={temp_dir}")
        ray_cli("start", f"--address=127.0.0.1:{port}", "--num-cpus=1", "--disable-usage-stats")
        yield f"127.0.0.1:{port}"
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        stop_cluster(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def stop_cluster(temp_dir: str, grace_s: float = 10.0) -> None:
    """Stop the processes of the cluster that lives in ``temp_dir``: `ray stop` would stop every
    Ray cluster on the machine, another program's included."""
    def ours() -> list[int]:
        pids = (int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit())
        return [pid for pid in pids if pid != os.getpid() and temp_dir in _cmdline(pid)]

    for pid in ours():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in ours():
        _signal(pid, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(
            errors="replace")
    except OSError:
        return ""


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, sig)


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
