"""Run model-written code in a child process with CPU, memory, output and network limits.

The service never imports or executes candidate code itself. ``SubprocessSandbox.run`` writes the
code, the entry name and the JSON arguments to a fresh temporary directory, starts one child
(``python -I -S -B workers/sandbox_child.py DIR``) and reads back one JSON result. Per call:

* a fresh working directory, deleted afterwards whatever happened; stdin on /dev/null; an
  environment of ``PATH`` and ``LANG`` only (no API keys, no ``EVO_*``);
* its own session and process group, killed with SIGKILL at the end of every run;
* RLIMIT_AS, RLIMIT_CPU, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE=0 and, without extra processes,
  RLIMIT_NPROC=1 (the kernel ignores it for root);
* a wall-clock limit, and stdout/stderr read as they come and cut at ``output_bytes``;
* an audit hook in the child (see ``sandbox_child``) that ends the run on network use, process
  creation, exec, writes outside its directory, reads of other processes' /proc entries, signals
  to other processes and new resource limits.

Isolation (the ``isolation`` attribute, detected once per sandbox object, at first use):

* ``"netns"``: ``unshare(1)`` works here, so the child also runs in new network, PID and mount
  namespaces: no network interface is up (not even loopback), it sees only its own processes
  in /proc, and every process it starts dies with it.
* ``"python-guards"``: namespaces are not available (no ``unshare`` binary, or no
  CAP_SYS_ADMIN, as in a default container); only the limits and the audit hook apply. That
  hook is a best-effort guard, not a security boundary: native code gets past it.

The user (the ``user`` attribute, detected together with the isolation): a service running as
root starts every child as an unprivileged user, so that file permissions (no /etc/shadow, no
other users' files), RLIMIT_NPROC and the kernel's checks on /proc/<pid>/ apply to it. With
``run_as="auto"`` (the default) that user is ``nobody`` (65534 where the system has no such
entry), provided a probe run as that user works: the interpreter, ``sandbox_child.py`` and the
temporary directory's parents must be reachable by it. Where it is not, children run as root
and a warning says why. A service that is not root has no one to switch to: children run as its
own user. ``run_as`` may also name a uid (used as gid too; a failing probe then raises), or be
None (never switch). Under ``netns`` the namespaces are made first, as root, then ``unshare``
switches user before it starts the child's shell.

Failures of the candidate are data (``RunResult.reason``: one line of at most ``REASON_CHARS``
characters from a known set of kinds); a sandbox that cannot start a child at all raises
``SandboxUnavailable``. The output kept in a result is a short tail (``OUTPUT_TAIL_LINES``,
``OUTPUT_TAIL_CHARS``) without control characters, so that nothing long that the code printed
(a file it read, for one) reaches a store or a terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import pwd
import selectors
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

CHILD_PROGRAM = Path(__file__).with_name("sandbox_child.py")
JOB_FILE = "job.json"
RESULT_FILE = "result.json"
NETNS = "netns"
PYTHON_GUARDS = "python-guards"
ISOLATIONS = (NETNS, PYTHON_GUARDS)
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
RESULT_MAX_BYTES = 16 * 1024 * 1024  # largest result file the parent will read
READ_CHUNK = 65536
KILL_GRACE_S = 2.0  # after SIGKILL, how long to wait for the pipes to close
EXIT_POLL_S = 0.02  # exit polling interval where pidfd_open is unavailable
CPU_SLACK_S = 0.05  # rusage rounding when deciding a SIGKILL came from RLIMIT_CPU
REASON_CHARS = 200  # longest failure reason
OUTPUT_TAIL_LINES = 5  # of stdout and of stderr, the last lines kept in a RunResult
OUTPUT_TAIL_CHARS = 500  # and at most this many characters of them
NOBODY_UID = 65534  # the unprivileged user where the passwd database has no "nobody"
# Reasons the child may write itself; anything else in its result file is "bad_return".
CHILD_REASONS = frozenset({
    "syntax_error", "missing_function", "bad_signature", "non_finite", "bad_return", "memory",
})
CHILD_REASON_PREFIXES = ("exception: ", "forbidden: ")


class SandboxUnavailable(RuntimeError):
    """No child can be started here (interpreter missing or unreadable, bad ``run_as``)."""


@dataclass(frozen=True)
class Limits:
    cpu_s: float = 10.0  # CPU seconds for the child (RLIMIT_CPU, rounded up to whole seconds)
    wall_s: float = 20.0  # wall-clock limit; the process group is killed at expiry
    memory_mb: int = 512  # address space (RLIMIT_AS); also the largest file it may write
    output_bytes: int = 1_000_000  # stdout and stderr together; past this the run is killed
    processes: int = 0  # extra processes the code may start (0: any attempt fails the run)
    network: bool = False

    def __post_init__(self) -> None:
        if min(self.cpu_s, self.wall_s, self.memory_mb, self.output_bytes) <= 0:
            raise ValueError("sandbox limits must be positive")
        if self.processes < 0:
            raise ValueError("processes must be >= 0")


@dataclass(frozen=True)
class RunResult:
    ok: bool
    value: Any | None  # JSON-decoded return value when ok
    # When not ok: "timeout", "cpu_limit", "memory", "output_limit", "syntax_error",
    # "missing_function", "bad_signature", "exception: <Type>: <first line of the message>",
    # "non_finite", "bad_return", "forbidden: <what>" or "killed: <signal>"; one line, at most
    # REASON_CHARS characters.
    reason: str | None
    stdout: str  # the last OUTPUT_TAIL_LINES lines, at most OUTPUT_TAIL_CHARS, printable only
    stderr: str  # the same for stderr
    wall_s: float


class Sandbox(Protocol):
    """Runs ``entry(*args)`` (or ``entry(**args)``) of untrusted ``code`` and returns its value.

    Every failure of the code (crash, limit, forbidden action, bad value) is a ``RunResult`` with
    ``ok=False`` and a reason; only a sandbox unable to run anything raises.
    """

    def run(
        self, code: str, entry: str, args: list | dict, *, limits: Limits | None = None
    ) -> RunResult: ...

    async def arun(
        self, code: str, entry: str, args: list | dict, *, limits: Limits | None = None
    ) -> RunResult: ...


DEFAULT_LIMITS = Limits()


class SubprocessSandbox:
    """One fresh child process per call; calls share no state and no lock, so they run in
    parallel from threads or from ``asyncio.gather``."""

    def __init__(
        self,
        limits: Limits = DEFAULT_LIMITS,
        python: str = sys.executable,
        *,
        isolation: str = "auto",
        run_as: int | Literal["auto"] | None = "auto",
        tmp_root: str | os.PathLike[str] | None = None,
    ) -> None:
        if isolation not in ("auto", *ISOLATIONS):
            raise ValueError(f"isolation must be 'auto' or one of {ISOLATIONS}")
        if not (run_as is None or run_as == "auto" or (
            isinstance(run_as, int) and not isinstance(run_as, bool) and run_as >= 0
        )):
            raise ValueError("run_as must be 'auto', None or a uid (>= 0)")
        self.limits = limits
        self.python = python
        self.run_as = run_as
        self.tmp_root = os.fspath(tmp_root) if tmp_root is not None else None
        self._requested = isolation
        self._detected: tuple[str, int | None] | None = None
        self._unshare = shutil.which("unshare", path=CHILD_ENV["PATH"] + ":/usr/sbin:/sbin")
        self._detect_lock = threading.Lock()

    @property
    def isolation(self) -> str:
        """``"netns"`` or ``"python-guards"``: what the children of this sandbox run under."""
        return self._settings()[0]

    @property
    def user(self) -> int | None:
        """The uid (and gid) children run as; None where they run as the service's own user."""
        return self._settings()[1]

    def _settings(self) -> tuple[str, int | None]:
        if self._detected is None:
            with self._detect_lock:
                if self._detected is None:
                    self._detected = self._detect()
        return self._detected

    def run(
        self, code: str, entry: str, args: list | dict, *, limits: Limits | None = None
    ) -> RunResult:
        isolation, user = self._settings()
        return self._run(isolation, user, code, entry, args, limits or self.limits)

    async def arun(
        self, code: str, entry: str, args: list | dict, *, limits: Limits | None = None
    ) -> RunResult:
        """``run`` without blocking the event loop: pipes and exit are watched by the loop.

        Not asyncio's subprocess API: its child watcher reaps the child itself, and the sandbox
        must kill the group before the reap (no pid reuse) and read the CPU time from wait4.
        """
        isolation, user = self._detected or await asyncio.to_thread(self._settings)
        child = self._start(isolation, user, code, entry, args, limits or self.limits)
        try:
            await _watch_async(child)
        finally:
            child.stop()
        return child.result()

    # -- internals -------------------------------------------------------------------------

    def _run(
        self, isolation: str, user: int | None, code: str, entry: str, args: list | dict,
        limits: Limits,
    ) -> RunResult:
        child = self._start(isolation, user, code, entry, args, limits)
        try:
            _watch_sync(child)
        finally:
            child.stop()
        return child.result()

    def _detect(self) -> tuple[str, int | None]:
        """Run a trivial job under each (user, isolation) in turn and keep the first that works.

        The user comes first: a child as ``nobody`` without namespaces is safer than one as root
        in them (root in a network namespace still reads and writes every file).
        """
        isolations = ISOLATIONS if self._requested == "auto" else (self._requested,)
        users = self._users()
        failures: list[str] = []
        for user in users:
            for isolation in isolations:
                label = f"{isolation} as {_who(user)}"
                if isolation == NETNS and not (self._unshare and os.path.exists("/bin/sh")):
                    failures.append(f"{label}: no unshare(1) or /bin/sh")
                    continue
                probe_code = "import os\ndef probe():\n    return os.getuid()\n"
                try:
                    probe = self._run(isolation, user, probe_code, "probe", [], Limits())
                except SandboxUnavailable as exc:
                    failures.append(f"{label}: {exc}")
                    continue
                if probe.ok and probe.value == (os.getuid() if user is None else user):
                    if failures:
                        log.warning("sandbox falls back to %s: %s", label, "; ".join(failures))
                    if user is None and len(users) > 1:
                        log.warning("sandbox children run as root: uid %s cannot run %s with %s "
                                    "in %s", users[0], self.python, CHILD_PROGRAM,
                                    self.tmp_root or tempfile.gettempdir())
                    log.info("sandbox isolation: %s", label)
                    return isolation, user
                failures.append(f"{label}: {probe.reason}: {probe.stderr.strip()}")
        raise SandboxUnavailable("no sandbox isolation works here; " + " | ".join(failures))

    def _users(self) -> list[int | None]:
        """The users to try, best first (None: the service's own)."""
        if self.run_as != "auto":
            return [self.run_as]
        if os.geteuid() != 0:
            return [None]  # nothing to switch to without root
        return [_nobody(), None]

    def _argv(self, isolation: str, user: int | None, workdir: str, network: bool) -> list[str]:
        child = [self.python, "-I", "-S", "-B", str(CHILD_PROGRAM), workdir]
        if isolation == PYTHON_GUARDS:
            return child
        unshare = [self._unshare or "unshare", "--pid", "--fork", "--kill-child", "--mount-proc"]
        if not network:
            unshare.append("--net")
        if user is not None:
            # unshare makes the namespaces and mounts /proc as root, then drops to the user.
            unshare += ["--setuid", str(user), "--setgid", str(user)]
        # A shell as the namespace's PID 1, so that the interpreter is not PID 1 (which the
        # kernel shields from its own signals, SIGXCPU included); it exits with 128+signal
        # when the interpreter is killed.
        return [*unshare, "--", "/bin/sh", "-c", '"$@"; exit $?', "evo-sandbox", *child]

    def _start(
        self, isolation: str, user: int | None, code: str, entry: str, args: list | dict,
        limits: Limits,
    ) -> _Child:
        if not isinstance(args, list | dict):
            raise TypeError("args must be a list or a dict")
        job = json.dumps({"code": code, "entry": entry, "args": args, "limits": asdict(limits)})
        workdir = tempfile.mkdtemp(prefix="evo-sandbox-", dir=self.tmp_root)
        try:
            job_path = Path(workdir, JOB_FILE)
            job_path.write_text(job, encoding="utf-8")
            extra: dict[str, Any] = {}
            if user is not None:
                # The directory (0700) and the job become the user's, whatever the umask.
                os.chown(workdir, user, user)
                os.chown(job_path, user, user)
                if isolation == PYTHON_GUARDS:
                    extra = {"user": user, "group": user, "extra_groups": []}
            started = time.monotonic()
            popen = subprocess.Popen(
                self._argv(isolation, user, workdir, limits.network),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=workdir,
                env=dict(CHILD_ENV),
                start_new_session=True,
                close_fds=True,
                **extra,
            )
        except BaseException as exc:
            _remove_tree(workdir)
            if isinstance(exc, OSError):
                raise SandboxUnavailable(f"cannot start a sandbox child: {exc}") from exc
            raise
        return _Child(popen, workdir, limits, isolation, started)


class _Child:
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
        _remove_tree(self.workdir)

    def result(self) -> RunResult:
        reason, value = self._verdict()
        stdout, stderr = (_tail(bytes(b).decode("utf-8", "replace")) for b in self.output.values())
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
            return _decode_result(self.result_data)
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
            return f"killed: {_signal_name(sig)}"
        return f"exception: SystemExit: exited with code {code} without a result"


def _decode_result(data: bytes) -> tuple[str | None, Any]:
    """Check the child's result file as untrusted input (the code could have written it)."""
    def finite(text: str) -> float:
        number = float(text)
        if not math.isfinite(number):
            raise _NonFinite
        return number

    def reject(_: str) -> float:
        raise _NonFinite

    try:
        result = json.loads(data, parse_float=finite, parse_constant=reject)
    except _NonFinite:
        return "non_finite", None
    except (ValueError, RecursionError):
        return "bad_return", None
    if not isinstance(result, dict) or not isinstance(result.get("ok"), bool):
        return "bad_return", None
    if result["ok"]:
        return None, result.get("value")
    return _child_reason(result.get("reason")), None


def _child_reason(reason: Any) -> str:
    """A reason from the result file: its first line, cut, and of a kind the child writes."""
    if not isinstance(reason, str):
        return "bad_return"
    lines = reason[: REASON_CHARS * 4].splitlines()
    line = _printable(lines[0])[:REASON_CHARS] if lines else ""
    if line in CHILD_REASONS or line.startswith(CHILD_REASON_PREFIXES):
        return line
    return "bad_return"


def _printable(text: str, keep: str = "") -> str:
    """``text`` with each control or format character (escape sequences, bidi overrides) but
    those in ``keep`` replaced by "?"."""
    return "".join(c if c.isprintable() or c in keep else "?" for c in text)


def _tail(text: str) -> str:
    """The last lines of an output stream, bounded and printable (see ``RunResult``)."""
    tail = text[-OUTPUT_TAIL_CHARS * 4:].replace("\r\n", "\n")
    lines = tail.splitlines(keepends=True)[-OUTPUT_TAIL_LINES:]
    return _printable("".join(lines), keep="\n\t")[-OUTPUT_TAIL_CHARS:]


def _nobody() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return NOBODY_UID


def _who(user: int | None) -> str:
    return "the service's user" if user is None else f"uid {user}"


class _NonFinite(Exception):
    pass


def _read_result_file(child: _Child) -> None:
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


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def _remove_tree(path: str) -> None:
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


def _watch_sync(child: _Child) -> None:
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


async def _watch_async(child: _Child) -> None:
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
