"""What callers of the sandbox see: the limits of a run, its result, the ``Sandbox`` protocol,
the error raised when no child can start, and the names of the isolations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

NETNS = "netns"
PYTHON_GUARDS = "python-guards"
ISOLATIONS = (NETNS, PYTHON_GUARDS)


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
