"""The program a sandbox child runs: limits, guards, then one call into untrusted code.

Started as ``python -I -S -B sandbox_child.py WORKDIR`` by ``workers.sandbox``. It reads
``WORKDIR/job.json`` (code, entry name, JSON arguments, limits), writes ``WORKDIR/result.json``
(``{"ok": true, "value": ...}`` or ``{"ok": false, "reason": ...}``) and leaves with ``os._exit``.
It imports only the standard library, never the project, so the code it runs sees no service
module, setting or secret.

The guards are an audit hook (PEP 578) plus a short list of modules that cannot be imported. An
audit hook cannot be removed from Python code, and a forbidden action ends the run at once with
``forbidden: <what>``, even where the code catches the exception. They remain a best-effort guard
inside one interpreter, not a security boundary: native code (a shared object written and
loaded by the candidate, for instance) is not seen by them. The kernel-level parts are the
resource limits and, where ``workers.sandbox`` could create them, the namespaces.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import os
import resource
import sys
from typing import Any, NoReturn

JOB_FILE = "job.json"
RESULT_FILE = "result.json"
WORKDIR = os.getcwd()  # replaced by main() with the real work directory
MB = 1024 * 1024
REASON_CHARS = 200  # the parent cuts and checks the reason again: the code can write this file

# Importing these gives direct system access that the audit events do not cover (ctypes calls
# libc directly; subinterpreters start without our hook; the test modules poke at internals).
ALWAYS_BLOCKED = frozenset({
    "ctypes", "_ctypes", "_xxsubinterpreters", "_xxinterpchannels", "_testcapi",
    "_testinternalcapi", "_testmultiphase",
})
# Blocked only while the code may not start processes.
PROCESS_MODULES = frozenset({
    "subprocess", "_posixsubprocess", "multiprocessing", "_multiprocessing", "pty",
})
SPAWN_EVENTS = frozenset({
    "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "os.system", "subprocess.Popen",
})
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
# Path-changing os events: (index of each path argument, index of its dir_fd or None, whether
# the last component is followed). Renames and links check both ends, since either end outside
# the directory touches a file outside it.
PATH_EVENTS: dict[str, tuple[tuple[int, int | None, bool], ...]] = {
    "os.chmod": ((0, 2, True),),
    "os.chown": ((0, 3, True),),
    "os.mkdir": ((0, 2, False),),
    "os.remove": ((0, 1, False),),
    "os.rmdir": ((0, 1, False),),
    "os.rename": ((0, 2, False), (1, 3, False)),
    "os.link": ((0, 2, True), (1, 3, False)),
    "os.symlink": ((1, 2, False),),
    "os.truncate": ((0, None, True),),
    "os.utime": ((0, 3, True),),
    "os.setxattr": ((0, None, True),),
    "os.removexattr": ((0, None, True),),
}


def write_result(data: bytes, *, replace: bool) -> None:
    """Write the result file; ``replace`` is False for the normal end, so a verdict written by
    the guard (possibly in a forked process) is never overwritten by a later success."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | (os.O_TRUNC if replace else os.O_EXCL)
    try:
        # Absolute: the code may have changed the working directory.
        fd = os.open(os.path.join(WORKDIR, RESULT_FILE), flags, 0o600)
    except FileExistsError:
        return
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def failure(reason: str) -> bytes:
    return json.dumps({"ok": False, "reason": reason}).encode()


def leave(data: bytes, *, replace: bool = False) -> NoReturn:
    """Record the result and end the process now: no atexit handlers, no lingering threads."""
    with contextlib.suppress(OSError):  # e.g. the code made result.json a directory
        write_result(data, replace=replace)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # the code may have closed or replaced the stream
            stream.flush()
    os._exit(0)


class Guard:
    """The audit hook: refuse network, processes, exec, signals to others, new resource limits,
    writes outside the working directory and reads of other processes' /proc entries."""

    def __init__(self, root: str, processes: int, network: bool) -> None:
        self.root = os.path.realpath(root)
        self.processes_left = processes
        self.network = network
        self.blocked = ALWAYS_BLOCKED | (PROCESS_MODULES if processes <= 0 else frozenset())
        self.main_pid = os.getpid()
        self.own_proc = os.path.join("/proc", os.readlink("/proc/self"))
        # A forked copy of the code may not fork in turn: the count belongs to the first process.
        os.register_at_fork(after_in_child=self._in_forked_child)

    def _in_forked_child(self) -> None:
        self.processes_left = 0

    def wrap_unaudited(self) -> None:
        """os.mkfifo and os.mknod raise no audit event: check their path before the real call."""
        import posix

        for name in ("mkfifo", "mknod"):
            original = getattr(posix, name)

            def checked(path: Any, *args: Any, _original: Any = original, _name: str = name,
                        **kwargs: Any) -> Any:
                target = self._resolve(path, kwargs.get("dir_fd"), False)
                if target is not None and not self._inside(target):
                    self.deny("write", f"os.{_name} {target}")
                return _original(path, *args, **kwargs)

            setattr(posix, name, checked)
            setattr(os, name, checked)

    def deny(self, what: str, detail: str) -> NoReturn:
        with contextlib.suppress(Exception):
            sys.stderr.write(f"sandbox: forbidden {what}: {detail}\n")
        leave(failure(f"forbidden: {what}"), replace=True)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            self._check_open(args)
        elif event == "import":
            if args[0].partition(".")[0] in self.blocked:
                raise ImportError(f"import of {args[0]!r} is not allowed in the sandbox")
        elif event in PATH_EVENTS:
            for index, dir_fd_index, follow in PATH_EVENTS[event]:
                dir_fd = args[dir_fd_index] if dir_fd_index is not None else None
                path = self._resolve(args[index], dir_fd, follow)
                if path is not None and not self._inside(path):
                    self.deny("write", f"{event} {path}")
        elif event.startswith("socket.") and not self.network:
            self.deny("network", event)
        elif event in SPAWN_EVENTS:
            if self.processes_left <= 0:
                self.deny("fork", event)
            self.processes_left -= 1
        elif event == "os.exec":
            self.deny("exec", str(args[0]))
        elif event in ("os.kill", "os.killpg"):
            if args[0] != os.getpid():
                self.deny("signal", f"{event} {args[0]}")
        elif event in ("resource.setrlimit", "resource.prlimit"):
            self.deny("rlimit", event)

    def _check_open(self, args: tuple[Any, ...]) -> None:
        path = self._resolve(args[0], None, True)
        if path is None:
            return
        flags = args[2] if isinstance(args[2], int) else 0
        mode = args[1] if isinstance(args[1], str) else ""
        if flags & WRITE_FLAGS or any(c in mode for c in "wax+"):
            if not self._inside(path) and path != os.devnull:
                self.deny("write", path)
        elif self._other_process(path):
            self.deny("proc", path)

    def _resolve(self, path: Any, dir_fd: Any, follow: bool) -> str | None:
        """The absolute, symlink-free form of a path argument; None for an open descriptor."""
        if isinstance(path, int):
            return None
        try:
            text = os.fsdecode(os.fspath(path))
        except TypeError:
            return None
        if isinstance(dir_fd, int) and dir_fd >= 0 and not os.path.isabs(text):
            text = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), text)
        text = os.path.abspath(text)
        if follow:
            return os.path.realpath(text)
        head, tail = os.path.split(text)
        return os.path.join(os.path.realpath(head), tail)

    def _inside(self, path: str) -> bool:
        return path == self.root or path.startswith(self.root + os.sep)

    def _other_process(self, path: str) -> bool:
        # /proc/<pid>/ of any other process exposes its environment and memory.
        parts = path.split(os.sep)
        if len(parts) < 3 or parts[1] != "proc" or not parts[2].isdigit():
            return False
        return not (path == self.own_proc or path.startswith(self.own_proc + os.sep))


def apply_limits(limits: dict[str, Any]) -> None:
    memory = int(limits["memory_mb"]) * MB
    cpu = max(1, math.ceil(float(limits["cpu_s"])))
    # The soft CPU limit sends SIGXCPU; the hard one, a second later, SIGKILL for code that
    # ignores SIGXCPU.
    wanted = {
        resource.RLIMIT_AS: (memory, memory),
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_FSIZE: (memory, memory),  # no single file larger than the memory limit
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_NOFILE: (256, 256),
    }
    if int(limits["processes"]) <= 0:
        # Counted per user (all children of one sandbox user together) and ignored for root;
        # the audit hook covers that case.
        wanted[resource.RLIMIT_NPROC] = (1, 1)
    for which, (soft, hard) in wanted.items():
        _, current_hard = resource.getrlimit(which)
        if current_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, current_hard), min(hard, current_hard)
        resource.setrlimit(which, (soft, hard))


def first_line(text: str) -> str:
    """The first line of ``text`` that has any, whitespace collapsed and control characters
    dropped: a message many lines long (a file the code read, say) is not carried further."""
    for line in text[: REASON_CHARS * 4].splitlines():
        words = "".join(c if c.isprintable() else " " for c in line).split()
        if words:
            return " ".join(words)
    return ""


def describe(exc: BaseException) -> str:
    if isinstance(exc, MemoryError):
        return "memory"
    try:
        message = first_line(str(exc))
    except Exception:
        message = "<unprintable>"
    name = first_line(type(exc).__name__) or "?"
    return f"exception: {name}: {message}"[:REASON_CHARS]


def plain(obj: Any) -> Any:
    """JSON fallback: numpy arrays and scalars become lists and numbers; anything else fails."""
    tolist = getattr(obj, "tolist", None)
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


def call(job: dict[str, Any]) -> bytes:
    """Compile, execute and call the candidate; the result file's content."""
    try:
        code = compile(job["code"], "<candidate>", "exec")
    except (SyntaxError, ValueError):  # ValueError: source with null bytes
        return failure("syntax_error")
    namespace: dict[str, Any] = {"__name__": "__candidate__", "__builtins__": builtins}
    args = job["args"]
    try:
        exec(code, namespace)
        function = namespace.get(job["entry"])
        if not callable(function):
            return failure("missing_function")
        try:
            value = function(**args) if isinstance(args, dict) else function(*args)
        except TypeError as exc:
            # Raised by the call itself (no frame of the candidate below ours): wrong arity.
            if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                return failure("bad_signature")
            raise
    except BaseException as exc:
        return failure(describe(exc))
    try:
        text = json.dumps(value, allow_nan=False, default=plain)
    except ValueError as exc:
        return failure("non_finite" if "Out of range float" in str(exc) else "bad_return")
    except MemoryError:
        return failure("memory")
    except BaseException:  # unserializable, circular, or a hostile __str__/tolist
        return failure("bad_return")
    return b'{"ok": true, "value": ' + text.encode() + b"}"


def main(workdir: str) -> NoReturn:
    global WORKDIR
    WORKDIR = os.path.realpath(workdir)
    os.chdir(WORKDIR)
    with open(JOB_FILE, encoding="utf-8") as f:
        job = json.load(f)
    apply_limits(job["limits"])
    # The same environment in every mode (a namespace's shell adds PWD, for one).
    for name in set(os.environ) - {"PATH", "LANG"}:
        del os.environ[name]
    # One thread per numeric library: fewer threads to count and less address space reserved.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = "1"
    os.environ["TMPDIR"] = os.environ["HOME"] = WORKDIR
    # -S skipped site: add the interpreter's package directories without running .pth files.
    import site

    sys.path.extend(p for p in site.getsitepackages() if os.path.isdir(p))
    guard = Guard(WORKDIR, int(job["limits"]["processes"]), bool(job["limits"]["network"]))
    sys.addaudithook(guard)
    guard.wrap_unaudited()
    result = call(job)
    if os.getpid() != guard.main_pid:
        os._exit(0)  # a forked copy returning through here: only the first process reports
    leave(result)


if __name__ == "__main__":
    main(sys.argv[1])
