"""One running sandbox child: its pipes and its exit watched (by a selector, or by the event
loop), its process group killed, its work directory removed, and its verdict afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import selectors
import shutil
import signal
import stat
import subprocess
import time
from typing import Any

from workers.sandbox_types import NETNS, Limits, RunResult
from workers.sandbox_verdict import decode_result, output_tail, signal_name

RESULT_FILE = "result.json"
RESULT_MAX_BYTES = 16 * 1024 * 1024  # largest result file the parent will read
READ_CHUNK = 65536
KILL_GRACE_S = 2.0  # after SIGKILL, how long to wait for the pipes to close
EXIT_POLL_S = 0.02  # exit polling interval where pidfd_open is unavailable
CPU_SLACK_S = 0.05  # rusage rounding when deciding a SIGKILL came from RLIMIT_CPU


class Child:
    """One running child: its pipes, its exit, its deadline, and the verdict afterwards.

    The group is always killed before the leader is reaped, so its process-group id cannot have
    been reused by an unrelated process when the signal is sent.
    """

    def __init__(
        self, popen: subprocess.Popen[bytes], workdir: str, limits: Limits, isolation: str,
        started: float,
    ) -> None:
        assert popen.stdout is not None and popen.stderr is not None
        self.popen = popen
        self.workdir = workdir
        self.limits = limits
        self.isolation = isolation
        self.started = started
        self.deadline = started + limits.wall_s
        self.output = {popen.stdout.fileno(): bytearray(), popen.stderr.fileno(): bytearray()}
        self.open_pipes = set(self.output)
        self.captured = 0
        self.exited = self.timed_out = self.over_output = self.in_grace = self.gave_up = False
        self.status: int | None = None
        self.cpu_s = 0.0
        self.ended = started
        self.result_data: bytes | None = None
        try:
            self.pidfd: int | None = os.pidfd_open(popen.pid)
        except (AttributeError, OSError):
            self.pidfd = None

    @property
    def finished(self) -> bool:
        return (self.exited and not self.open_pipes) or self.gave_up

    def watched(self) -> set[int]:
        fds = set(self.open_pipes)
        if self.pidfd is not None and not self.exited:
            fds.add(self.pidfd)
        return fds

    def wait_time(self) -> float:
        remaining = max(0.0, self.deadline - time.monotonic())
        return remaining if self.pidfd is not None else min(remaining, EXIT_POLL_S)

    def handle(self, fd: int) -> None:
        """A watched descriptor is readable: output arrived, a pipe closed, or the child exited."""
        if fd == self.pidfd:
            self._on_exit()
            return
        try:
            chunk = os.read(fd, READ_CHUNK)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if not chunk:
            self.open_pipes.discard(fd)
            return
        room = max(0, self.limits.output_bytes - self.captured)
        self.output[fd] += chunk[:room]
        self.captured += len(chunk)
        if self.captured > self.limits.output_bytes and not self.over_output:
            self.over_output = True
            self.kill()

    def tick(self) -> None:
        """Between waits: notice an exit without pidfd, and act on the deadline."""
        if self.pidfd is None and not self.exited:
            with contextlib.suppress(ChildProcessError):
                info = os.waitid(os.P_PID, self.popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
                if info is not None:
                    self._on_exit()
        if self.finished or time.monotonic() < self.deadline:
            return
        if self.in_grace:
            self.gave_up = True  # something still holds a pipe after SIGKILL: stop reading
            return
        self.timed_out = not self.exited
        self.in_grace = True
        self.deadline = time.monotonic() + KILL_GRACE_S
        self.kill()

    def _on_exit(self) -> None:
        self.exited = True
        self.kill()  # whatever the child left behind goes with it, and releases the pipes

    def kill(self) -> None:
        if self.status is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.popen.pid, signal.SIGKILL)

    def stop(self) -> None:
        """Kill, reap, close and delete, whatever state the run is in."""
        self.kill()
        if self.status is None:
            try:
                _, self.status, usage = os.wait4(self.popen.pid, 0)
                self.cpu_s = usage.ru_utime + usage.ru_stime
            except ChildProcessError:  # reaped by someone else's waitpid(-1)
                self.status = 0
            self.popen.returncode = os.waitstatus_to_exitcode(self.status)
            self.ended = time.monotonic()
        for stream in (self.popen.stdout, self.popen.stderr):
            if stream is not None:
                stream.close()
        if self.pidfd is not None:
            os.close(self.pidfd)
            self.pidfd = None
        remove_tree(self.workdir)

    def result(self) -> RunResult:
        reason, value = self._verdict()
        stdout, stderr = (
            output_tail(bytes(b).decode("utf-8", "replace")) for b in self.output.values()
        )
        return RunResult(
            ok=reason is None, value=value, reason=reason, stdout=stdout, stderr=stderr,
            wall_s=self.ended - self.started,
        )

    def _verdict(self) -> tuple[str | None, Any]:
        if self.over_output:
            return "output_limit", None
        if self.timed_out:
            return "timeout", None
        if self.result_data is not None:
            return decode_result(self.result_data)
        return self._death_reason(), None

    def _death_reason(self) -> str:
        """The child ended without a result file: a signal, or an exit of its own."""
        status = self.status or 0
        code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else None
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        if sig is None and self.isolation == NETNS and code is not None and code > 128:
            sig = code - 128  # the namespace's shell reports a killed child as 128 + signal
        cpu_limit = max(1, math.ceil(self.limits.cpu_s)) - CPU_SLACK_S
        if sig == signal.SIGXCPU or (sig == signal.SIGKILL and self.cpu_s >= cpu_limit):
            return "cpu_limit"
        if sig == signal.SIGKILL:
            return "memory"  # killed by the kernel without reaching its CPU limit: out of memory
        if sig is not None:
            return f"killed: {signal_name(sig)}"
        return f"exception: SystemExit: exited with code {code} without a result"


def _read_result_file(child: Child) -> None:
    """Load the result file, refusing links, FIFOs and anything over RESULT_MAX_BYTES."""
    path = os.path.join(child.workdir, RESULT_FILE)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            return
        if info.st_size > RESULT_MAX_BYTES:
            child.result_data = b'{"ok": false, "reason": "bad_return"}'
            return
        child.result_data = f.read(RESULT_MAX_BYTES + 1)


def remove_tree(path: str) -> None:
    """Delete a work directory even where the code removed permissions from its contents."""
    def unlock(_function: Any, failed: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(failed), 0o700)
            os.chmod(failed, 0o700)
        with contextlib.suppress(OSError):
            if os.path.isdir(failed) and not os.path.islink(failed):
                shutil.rmtree(failed, ignore_errors=True)
            else:
                os.unlink(failed)

    shutil.rmtree(path, onerror=unlock)
    if os.path.lexists(path):
        shutil.rmtree(path, ignore_errors=True)


def watch_sync(child: Child) -> None:
    with selectors.DefaultSelector() as selector:
        registered: set[int] = set()
        while True:
            _sync_registrations(selector, registered, child.watched())
            if child.finished:
                break
            for key, _ in selector.select(child.wait_time()):
                child.handle(key.fd)
            child.tick()
    _read_result_file(child)


def _sync_registrations(
    selector: selectors.BaseSelector, registered: set[int], wanted: set[int]
) -> None:
    for fd in registered - wanted:
        selector.unregister(fd)
    for fd in wanted - registered:
        selector.register(fd, selectors.EVENT_READ)
    registered.clear()
    registered.update(wanted)


async def watch_async(child: Child) -> None:
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()
    registered: set[int] = set()

    def readable(fd: int) -> None:
        child.handle(fd)
        wake.set()

    def sync() -> None:
        wanted = child.watched()
        for fd in registered - wanted:
            loop.remove_reader(fd)
        for fd in wanted - registered:
            loop.add_reader(fd, readable, fd)
        registered.clear()
        registered.update(wanted)

    try:
        while True:
            sync()
            if child.finished:
                break
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), child.wait_time())
            child.tick()
    finally:
        for fd in registered:
            loop.remove_reader(fd)
    _read_result_file(child)
