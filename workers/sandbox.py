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

This module chooses the isolation and user and starts the children; ``sandbox_types`` holds the
public types, ``sandbox_process`` watches a running child and ``sandbox_verdict`` reads what it
left.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from workers.sandbox_process import Child, remove_tree, watch_async, watch_sync
from workers.sandbox_types import (
    DEFAULT_LIMITS,
    ISOLATIONS,
    NETNS,
    PYTHON_GUARDS,
    Limits,
    RunResult,
    Sandbox,
    SandboxUnavailable,
)
from workers.sandbox_verdict import OUTPUT_TAIL_CHARS, OUTPUT_TAIL_LINES, REASON_CHARS

# Names importers take from here, whichever module now defines them.
__all__ = [
    "CHILD_PROGRAM",
    "DEFAULT_LIMITS",
    "ISOLATIONS",
    "NETNS",
    "OUTPUT_TAIL_CHARS",
    "OUTPUT_TAIL_LINES",
    "PYTHON_GUARDS",
    "REASON_CHARS",
    "Limits",
    "RunResult",
    "Sandbox",
    "SandboxUnavailable",
    "SubprocessSandbox",
]

log = logging.getLogger(__name__)

CHILD_PROGRAM = Path(__file__).with_name("sandbox_child.py")
JOB_FILE = "job.json"
CHILD_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
NOBODY_UID = 65534  # the unprivileged user where the passwd database has no "nobody"


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
            await watch_async(child)
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
            watch_sync(child)
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
    ) -> Child:
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
            remove_tree(workdir)
            if isinstance(exc, OSError):
                raise SandboxUnavailable(f"cannot start a sandbox child: {exc}") from exc
            raise
        return Child(popen, workdir, limits, isolation, started)


def _nobody() -> int:
    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        return NOBODY_UID


def _who(user: int | None) -> str:
    return "the service's user" if user is None else f"uid {user}"
