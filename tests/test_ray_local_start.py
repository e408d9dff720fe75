"""A local Ray cluster started from a short-lived thread (as a job's pools are built) outlives
that thread: the process's next job finds it. Ray binds its processes to the starting thread."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.ray

SCRIPT = """
import threading, time
import ray
from evo.app.settings import Settings
from workers.cluster import init_ray

starter = threading.Thread(target=init_ray, args=(Settings(),))
starter.start()
starter.join()  # the thread that asked for the cluster is gone

@ray.remote
def double(x):
    return 2 * x

time.sleep(2)  # a cluster bound to the ended thread would be dying by now
print("answer", ray.get(double.remote(21), timeout=60))
ray.shutdown()
"""


def test_a_cluster_started_from_a_thread_outlives_it() -> None:
    env = {k: v for k, v in os.environ.items() if k != "EVO_RAY_ADDRESS"}
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                         timeout=240, env={**env, "RAY_AUTH_MODE": "disabled"})
    assert "answer 42" in out.stdout, out.stderr[-3000:]
