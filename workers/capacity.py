"""Whether a cluster can ever hold a job's model workers.

A local-model worker is a Ray actor that asks for ``threads`` CPUs on one node, and a pool has
``workers`` of them at once. A demand the cluster cannot meet even when idle would wait forever:
it is refused when the job is submitted (``problems``, one per field), and a job whose cluster
shrank after submission fails after a bounded start-up time (``PoolFactory``) instead of
holding a service's slot for ever. Remote-endpoint workers ask for no CPU and always fit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from evo.app.settings import Settings
from evo.spec import JobSpec, ModelSpec


class CannotSchedule(RuntimeError):
    """The cluster cannot hold the job's model workers (the message says which and why)."""


@dataclass(frozen=True)
class Capacity:
    """CPUs of the cluster's live nodes: all together, and on the largest one."""

    total: float
    largest: float


def local_capacity() -> Capacity:
    """What a local cluster started on this machine will have."""
    n = float(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
              else os.cpu_count() or 1)
    return Capacity(n, n)


def cluster_capacity(settings: Settings) -> Capacity | None:
    """CPUs of the cluster that runs model workers under these settings (None: workers run in
    process, where threads compete but never wait)."""
    if settings.executor != "ray":
        return None
    import ray

    if not ray.is_initialized():
        if settings.ray_address is None:
            return local_capacity()  # the cluster a job here will start
        from workers.cluster import init_ray

        init_ray(settings)
    return ray_capacity()


def ray_capacity() -> Capacity:
    """The connected Ray cluster's live nodes."""
    import ray

    cpus = [float(n.get("Resources", {}).get("CPU", 0.0)) for n in ray.nodes() if n.get("Alive")]
    return Capacity(sum(cpus), max(cpus, default=0.0))


def pool_size(model: ModelSpec, capacity: Capacity, taken: float = 0.0) -> int:
    """Workers a local model's pool gets: as asked, or one per ``threads`` CPUs of the cluster
    that another pool of the job (``taken``) has not."""
    return model.workers or max(1, int(capacity.total - taken) // model.threads)


def shortfall(threads: int, cpus: float, capacity: Capacity) -> str | None:
    """Why workers of ``threads`` CPUs each, ``cpus`` in all, cannot all run on the cluster even
    when it is idle; None when they can."""
    if threads > capacity.largest:
        return (f"each worker asks for {threads} CPUs on one node, and the cluster's largest "
                f"node has {capacity.largest:g}")
    if cpus > capacity.total:
        return f"the workers need {cpus:g} CPUs, and the cluster has {capacity.total:g}"
    return None


def problems(spec: JobSpec, capacity: Capacity) -> list[tuple[tuple[str, ...], str]]:
    """(field location, why) for each model pool of the spec that the cluster cannot hold, even
    idle, beside the job's other pool."""
    roles = spec.models.roles()
    out = []
    taken = 0.0
    for role, model in roles:
        if model.provider != "local":
            continue
        if model.threads > capacity.largest:
            why = shortfall(model.threads, 0, capacity)
            out.append(((("models", role, "threads")), f"the cluster cannot run this job: {why}"))
            continue
        size = pool_size(model, capacity, taken)
        taken += size * model.threads
        if taken > capacity.total:
            out.append(((("models", role, "workers")), f"the cluster cannot run this job: "
                        f"{size} workers x {model.threads} threads need {size * model.threads} "
                        f"CPUs, and the cluster has {capacity.total:g}"
                        + (" beside the task model's workers" if role != "task" else "")))
    return out
