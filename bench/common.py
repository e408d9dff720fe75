"""Helpers shared by the benchmark scripts: tables, percentiles, process CPU, a scratch schema."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

# The same server the test suite uses (tests/conftest.py), unless told otherwise.
DEFAULT_PG_URL = os.environ.get(
    "EVO_BENCH_POSTGRES_URL",
    os.environ.get("EVO_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation between closest ranks."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(pos), math.ceil(pos)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def run_job(spec: dict[str, Any], folder: Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """A job run as ``evo run`` runs it, on a SQLite store in ``folder``: its result, its last
    checkpoint and its candidates by id. A job that did not complete ends the benchmark."""
    from evo.app.settings import Settings
    from storage import Store
    from workers.runner import optimize

    url = f"sqlite:///{folder / 'job.db'}"
    with Store(url) as store:
        result = optimize(spec, store=store, settings=Settings(database_url=url))
        checkpoint = store.latest_checkpoint(result.job_id)
        cands = {c.id: c for c in store.candidates(result.job_id)}
    if result.status != "completed" or checkpoint is None:
        raise SystemExit(f"the job ended {result.status}: {result.reason}")
    return result, checkpoint[1], cands


def write_record(path: Path, data: Any) -> None:
    """A benchmark's figures as JSON, readable in a diff (its folder made if need be)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table: text columns to the left, numbers to the right."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) and bool(rows)
        for i in range(len(headers))
    ]

    def line(values: Sequence[str]) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out += [line(r) for r in cells]
    return "\n".join(out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.2f}"
    return str(value)


# --- CPU time of other processes (Linux /proc; figures are None elsewhere) ---------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def process_cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a live process, or None when it cannot be read."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name may hold spaces and parentheses: fields start after the last ')'
    fields = raw[raw.rfind(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICK


def parent_pid(pid: int) -> int | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(raw[raw.rfind(")") + 2 :].split()[1])


def descends_from(pid: int, ancestor: int, depth: int = 6) -> bool:
    for _ in range(depth):
        parent = parent_pid(pid)
        if parent is None or parent <= 1:
            return False
        if parent == ancestor:
            return True
        pid = parent
    return False


def pids_matching(prefix: str, ancestor: int | None = None) -> list[int]:
    """Processes whose command line starts with ``prefix`` (Ray names its workers this way),
    only those below ``ancestor`` when given (another program's Ray workers are not ours)."""
    found: list[int] = []
    proc = Path("/proc")
    if not proc.is_dir():
        return found
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmd.startswith(prefix) and (
            ancestor is None or descends_from(int(entry.name), ancestor)
        ):
            found.append(int(entry.name))
    return found


def cpu_of(pids: Sequence[int]) -> dict[int, float]:
    out = {}
    for pid in pids:
        cpu = process_cpu_s(pid)
        if cpu is not None:
            out[pid] = cpu
    return out


# --- a PostgreSQL schema of our own ------------------------------------------------------------


@contextlib.contextmanager
def pg_schema(url: str = DEFAULT_PG_URL, prefix: str = "evo_bench") -> Iterator[str]:
    """Create a fresh schema, yield a URL whose connections use it first, drop it afterwards.

    Nothing outside the schema is read or written, so other data on the server is safe.
    """
    from sqlalchemy import create_engine, text

    admin = create_engine(url, connect_args={"connect_timeout": 5})
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        scoped = admin.url.update_query_dict({"options": f"-csearch_path={schema}"})
        try:
            yield scoped.render_as_string(hide_password=False)
        finally:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    finally:
        admin.dispose()


# --- a real OpenAI-compatible server on loopback ----------------------------------------------


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def start_llama_server(
    model_path: str, *, n_ctx: int = 2048, threads: int = 1, timeout_s: float = 60.0
) -> Iterator[str]:
    """Run ``python -m llama_cpp.server`` on a free loopback port; yield its ``/v1`` base URL."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        model_path,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
        "--n_threads_batch",
        str(threads),
    ]
    with tempfile.TemporaryFile() as logfile:
        proc = subprocess.Popen(
            cmd,
            stdout=logfile,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        base_url = f"http://127.0.0.1:{port}/v1"
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                if proc.poll() is not None:
                    logfile.seek(0)
                    tail = logfile.read()[-2000:].decode(errors="replace")
                    raise RuntimeError(f"llama_cpp.server exited with {proc.returncode}:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"llama_cpp.server did not answer within {timeout_s}s")
                time.sleep(0.2)
            yield base_url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
