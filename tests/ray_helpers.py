"""Ray clusters of the tests' own on this machine, and the processes they run."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.servers import free_port

RAY = str(Path(sys.executable).with_name("ray"))
DRIVER_TITLE = "ray::_ray_entry"  # the process title of a Ray worker running a job's driver


def ray_cli(*args: str) -> None:
    subprocess.run([RAY, *args], check=True, capture_output=True, timeout=120,
                   env={**os.environ, "RAY_AUTH_MODE": "disabled"})


@contextlib.contextmanager
def ray_cluster(*cpus: int) -> Iterator[str]:
    """A head node and a node per further entry of ``cpus`` (CPUs of each); its address."""
    assert shutil.which(RAY), "the ray command is missing"
    port = free_port()
    # a short folder of its own (Ray's socket paths must stay under 108 bytes): it names this
    # cluster's processes, so that only they are stopped afterwards
    temp_dir = tempfile.mkdtemp(prefix="evo-ray-", dir="/tmp")
    try:
        ray_cli("start", "--head", f"--port={port}", f"--num-cpus={cpus[0]}",
                "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp_dir}")
        for n in cpus[1:]:
            ray_cli("start", f"--address=127.0.0.1:{port}", f"--num-cpus={n}",
                    "--disable-usage-stats")
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
        # by command line, or, for processes that retitle themselves (agents, workers), by the
        # files they hold open in the cluster's folder
        return [pid for pid, cmd in processes()
                if pid != os.getpid() and (temp_dir in cmd or holds(pid, temp_dir))]

    for pid in ours():
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while ours() and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in ours():
        _signal(pid, signal.SIGKILL)


def processes() -> list[tuple[int, str]]:
    """(pid, command line) of every process of this machine."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace")
            except OSError:
                continue  # it ended meanwhile
            out.append((int(entry.name), cmd))
    return out


def holds(pid: int, folder: str) -> bool:
    """Whether the process has a file open under ``folder``."""
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            if os.readlink(fd).startswith(folder):
                return True
    return False


def marked(name: str, value: str) -> list[int]:
    """Pids of processes whose environment has ``name=value`` (inherited from a test's child)."""
    needle = f"{name}={value}".encode()
    out = []
    for pid, _ in processes():
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                out.append(pid)
    return out


def drivers() -> list[int]:
    """Pids of the Ray workers running a job's driver now."""
    return [pid for pid, cmd in processes() if cmd.startswith(DRIVER_TITLE)]


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
        os.kill(pid, sig)
