"""The code sandbox with real child processes: values, typed failure reasons, nothing left behind.

Most tests run under both isolations: ``netns`` where ``unshare(1)`` works on this machine (skipped
otherwise) and ``python-guards``, the fallback every machine has. After each test the fixture
checks that no sandbox process survives and that every work directory is gone. The tests of the
user switch need root and an interpreter that user ``nobody`` can run (skipped otherwise).
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import os
import pwd
import resource
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import workers.sandbox
from workers.sandbox import SubprocessSandbox
from workers.sandbox_types import (
    NETNS,
    PYTHON_GUARDS,
    Limits,
    RunResult,
    SandboxUnavailable,
)

FAST = Limits(cpu_s=1, wall_s=5)
try:
    NOBODY = pwd.getpwnam("nobody").pw_uid
except KeyError:
    NOBODY = 65534
PRIORITY = "def priority(item, bins):\n    return [-(b - item) for b in bins]\n"


def _works(isolation: str) -> bool:
    try:
        return SubprocessSandbox(isolation=isolation).isolation == isolation
    except SandboxUnavailable:
        return False


NETNS_WORKS = _works(NETNS)


def _processes_mentioning(marker: str) -> list[int]:
    """Live processes whose command line names ``marker`` (each child's work dir is in it)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry))
    return found


def _assert_clean(root: Path) -> None:
    # A process killed a moment ago may take a few milliseconds to disappear from /proc.
    deadline = time.monotonic() + 2.0
    while _processes_mentioning(str(root)) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _processes_mentioning(str(root)) == []
    assert list(root.iterdir()) == []


@pytest.fixture(params=[NETNS, PYTHON_GUARDS])
def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SubprocessSandbox]:
    if request.param == NETNS and not NETNS_WORKS:
        pytest.skip("network namespaces are not available here (unshare(1) fails)")
    root = tmp_path / "sandboxes"
    root.mkdir()
    box = SubprocessSandbox(FAST, isolation=request.param, tmp_root=root)
    yield box
    _assert_clean(root)


def _failed(result: RunResult, reason: str) -> None:
    assert not result.ok, result
    assert result.value is None
    assert result.reason == reason, (result.reason, result.stderr[-500:])


# -- values --------------------------------------------------------------------------------


def test_the_public_names_stay_importable_from_workers_sandbox() -> None:
    # other modules (the driver, the scorer) import them from there, wherever they are defined
    for name in workers.sandbox.__all__:
        assert getattr(workers.sandbox, name) is not None
    assert workers.sandbox.Limits is Limits and workers.sandbox.NETNS == NETNS


def test_priority_function_returns_its_list(sandbox: SubprocessSandbox) -> None:
    result = sandbox.run(PRIORITY, "priority", [3, [5, 7, 10]])
    assert result.ok and result.reason is None
    assert result.value == [-2, -4, -7]
    assert 0 < result.wall_s < 5


def test_keyword_arguments_and_output_are_returned(sandbox: SubprocessSandbox) -> None:
    code = (
        "import sys\n"
        "def f(a, b=0):\n"
        "    print('hi')\n"
        "    print('warn', file=sys.stderr)\n"
        "    return {'sum': a + b}\n"
    )
    result = sandbox.run(code, "f", {"a": 1, "b": 2.5})
    assert result.value == {"sum": 3.5}
    assert result.stdout == "hi\n" and result.stderr == "warn\n"


def test_numpy_imports_under_the_default_memory_limit(sandbox: SubprocessSandbox) -> None:
    code = (
        "import numpy as np\n"
        "def priority(item, bins):\n"
        "    bins = np.asarray(bins, dtype=float)\n"
        "    return -(bins - item)\n"
    )
    result = sandbox.run(code, "priority", [1.0, [2.0, 4.0]], limits=Limits())
    assert result.ok, result
    assert result.value == [-1.0, -3.0]  # arrays come back as lists


def test_writing_inside_its_own_directory_is_allowed(sandbox: SubprocessSandbox) -> None:
    code = (
        "import os, tempfile\n"
        "def f():\n"
        "    with open('notes.txt', 'w') as out:\n"
        "        out.write('x')\n"
        "    with tempfile.NamedTemporaryFile('w', delete=False) as t:\n"
        "        t.write('y')\n"
        "    os.rename('notes.txt', 'renamed.txt')\n"
        "    return sorted(os.listdir('.'))\n"
    )
    result = sandbox.run(code, "f", [])
    assert result.ok, result
    assert "renamed.txt" in result.value


def test_the_parent_never_runs_the_code(sandbox: SubprocessSandbox) -> None:
    code = "import builtins\nbuiltins.EVO_SANDBOX_MARK = True\ndef f():\n    return 1\n"
    assert sandbox.run(code, "f", []).ok
    assert not hasattr(builtins, "EVO_SANDBOX_MARK")


# -- failures of the code ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "entry", "args", "reason"),
    [
        ("def f(:\n    pass\n", "f", [], "syntax_error"),
        ("def g():\n    return 1\n", "f", [], "missing_function"),
        ("f = 3\n", "f", [], "missing_function"),
        ("def f(a, b):\n    return a\n", "f", [1], "bad_signature"),
        ("def f(a):\n    return a\n", "f", {"b": 1}, "bad_signature"),
        ("def f():\n    return float('nan')\n", "f", [], "non_finite"),
        ("def f():\n    return [1.0, [2.0, float('inf')]]\n", "f", [], "non_finite"),
        ("def f():\n    return object()\n", "f", [], "bad_return"),
        ("def f():\n    return {1, 2}\n", "f", [], "bad_return"),
        ("def f():\n    raise ValueError('no bins')\n", "f", [], "exception: ValueError: no bins"),
        ("def f(x):\n    return len(x)\n", "f", [5], "exception: TypeError: object of type "
         "'int' has no len()"),
        ("raise KeyError('at import')\n", "f", [], "exception: KeyError: 'at import'"),
        ("import sys\ndef f():\n    sys.exit(3)\n", "f", [], "exception: SystemExit: 3"),
    ],
)
def test_failures_have_typed_reasons(
    sandbox: SubprocessSandbox, code: str, entry: str, args: list | dict, reason: str
) -> None:
    _failed(sandbox.run(code, entry, args), reason)


def test_numpy_nan_is_non_finite(sandbox: SubprocessSandbox) -> None:
    code = "import numpy as np\ndef f():\n    return np.array([1.0, np.nan])\n"
    _failed(sandbox.run(code, "f", [], limits=Limits()), "non_finite")


# -- hostile programs ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    [
        "def f():\n    while True:\n        pass\n",
        # Ignoring SIGXCPU only postpones the end to the hard limit's SIGKILL.
        "import signal\ndef f():\n    signal.signal(signal.SIGXCPU, signal.SIG_IGN)\n"
        "    while True:\n        pass\n",
    ],
)
def test_infinite_loop_is_stopped(sandbox: SubprocessSandbox, code: str) -> None:
    result = sandbox.run(code, "f", [], limits=Limits(cpu_s=1, wall_s=10))
    assert not result.ok and result.reason in ("cpu_limit", "timeout"), result


def test_sleep_loop_times_out(sandbox: SubprocessSandbox) -> None:
    code = "import time\ndef f():\n    while True:\n        time.sleep(0.05)\n"
    result = sandbox.run(code, "f", [], limits=Limits(cpu_s=5, wall_s=1))
    _failed(result, "timeout")
    assert 1 <= result.wall_s < 4


def test_memory_hog_is_refused(sandbox: SubprocessSandbox) -> None:
    code = "def f():\n    block = bytearray(2 * 1024 ** 3)\n    return len(block)\n"
    _failed(sandbox.run(code, "f", []), "memory")


def test_growing_memory_is_refused(sandbox: SubprocessSandbox) -> None:
    code = "def f():\n    parts = []\n    while True:\n        parts.append(bytearray(10 ** 7))\n"
    _failed(sandbox.run(code, "f", [], limits=Limits(memory_mb=256, cpu_s=5)), "memory")


@pytest.mark.parametrize(
    ("code", "reasons"),
    [
        # The classic bomb, which also swallows the error: the first fork ends the run.
        ("import os\ndef f():\n    while True:\n        try:\n            os.fork()\n"
         "        except Exception:\n            pass\n", {"forbidden: fork"}),
        ("import os\ndef f():\n    return os.system('true')\n", {"forbidden: fork"}),
        ("import os\ndef f():\n    return os.posix_spawn('/bin/true', ['true'], {})\n",
         {"forbidden: fork"}),
        ("import os\ndef f():\n    os.execv('/bin/sh', ['sh', '-c', 'true'])\n",
         {"forbidden: exec"}),
        ("import subprocess\ndef f():\n    return subprocess.run(['true']).returncode\n",
         {"exception: ImportError: import of 'subprocess' is not allowed in the sandbox"}),
        ("def f():\n    import multiprocessing\n    return multiprocessing.cpu_count()\n",
         {"exception: ImportError: import of 'multiprocessing' is not allowed in the sandbox"}),
        ("def f():\n    import ctypes\n    return ctypes.CDLL(None).fork()\n",
         {"exception: ImportError: import of 'ctypes' is not allowed in the sandbox"}),
    ],
)
def test_process_creation_is_refused(
    sandbox: SubprocessSandbox, code: str, reasons: set[str]
) -> None:
    result = sandbox.run(code, "f", [])
    assert not result.ok and result.reason in reasons, result


def test_extra_processes_can_be_allowed_and_are_counted(sandbox: SubprocessSandbox) -> None:
    code = (
        "import os\n"
        "def f(n):\n"
        "    for _ in range(n):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            os._exit(0)\n"
        "        os.waitpid(pid, 0)\n"
        "    return n\n"
    )
    allowed = Limits(cpu_s=2, wall_s=5, processes=1)
    assert sandbox.run(code, "f", [1], limits=allowed).value == 1
    _failed(sandbox.run(code, "f", [2], limits=allowed), "forbidden: fork")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _connections(server: socket.socket) -> int:
    count = 0
    while True:
        try:
            conn, _ = server.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


@pytest.mark.parametrize(
    "code",
    [
        "import socket\ndef f(port):\n    socket.create_connection(('127.0.0.1', port), 2)\n",
        # Swallowing the error and going under the socket module does not help.
        "import _socket, socket\ndef f(port):\n    try:\n        socket.create_connection("
        "('127.0.0.1', port), 2)\n    except Exception:\n        pass\n"
        "    s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)\n"
        "    s.connect(('127.0.0.1', port))\n",
    ],
)
def test_network_is_refused(
    sandbox: SubprocessSandbox, listener: socket.socket, code: str
) -> None:
    result = sandbox.run(code, "f", [listener.getsockname()[1]])
    _failed(result, "forbidden: network")
    assert _connections(listener) == 0


def test_namespace_has_no_network_and_no_other_processes(tmp_path: Path) -> None:
    if not NETNS_WORKS:
        pytest.skip("network namespaces are not available here (unshare(1) fails)")
    box = SubprocessSandbox(FAST, isolation=NETNS, tmp_root=tmp_path)
    code = (
        "import os\n"
        "def f():\n"
        "    lines = open('/proc/net/dev').read().splitlines()[2:]\n"
        "    pids = [p for p in os.listdir('/proc') if p.isdigit()]\n"
        "    return [line.split(':')[0].strip() for line in lines], len(pids)\n"
    )
    result = box.run(code, "f", [])
    assert result.ok, result
    interfaces, process_count = result.value
    assert interfaces == ["lo"]  # and it is down: see test_network_is_refused's kernel view
    assert process_count <= 3  # the namespace's shell and the interpreter


@pytest.mark.parametrize(
    "attack",
    [
        "open(target, 'w').write('x')",
        "os.close(os.open(target, os.O_CREAT | os.O_WRONLY))",
        "pathlib.Path(target).write_text('x')",
        "os.symlink(target, 'link')\n    open('link', 'w').write('x')",
        "open('inside', 'w').write('x')\n    os.rename('inside', target)",
        "open('inside', 'w').write('x')\n    shutil.copy('inside', target)",
        "os.chdir('/tmp')\n    open(os.path.basename(target), 'w').write('x')",
        "os.mkfifo(target)",
    ],
)
def test_writing_outside_its_directory_is_refused(
    sandbox: SubprocessSandbox, attack: str
) -> None:
    target = f"/tmp/evo_sandbox_escape_{uuid.uuid4().hex}"
    code = f"import os, pathlib, shutil\ndef f(target):\n    {attack}\n"
    try:
        result = sandbox.run(code, "f", [target])
        _failed(result, "forbidden: write")
        assert not os.path.lexists(target)
    finally:
        if os.path.lexists(target):
            os.unlink(target)


def test_environment_is_scrubbed(
    sandbox: SubprocessSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVO_SECRET_TEST", "sk-planted")
    result = sandbox.run("import os\ndef f():\n    return dict(os.environ)\n", "f", [])
    assert result.ok, result
    assert "sk-planted" not in repr(result)
    assert set(result.value) <= {
        "PATH", "LANG", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "TMPDIR",
        "HOME",
    }


def test_parent_environment_cannot_be_read_through_proc(
    sandbox: SubprocessSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVO_SECRET_TEST", "sk-planted")
    code = (
        "import os\n"
        "def f():\n"
        "    seen = []\n"
        "    for pid in [str(os.getppid())] + os.listdir('/proc'):\n"
        "        try:\n"
        "            seen.append(open(f'/proc/{pid}/environ', 'rb').read().decode())\n"
        "        except OSError:\n"
        "            pass\n"
        "    return seen\n"
    )
    result = sandbox.run(code, "f", [])
    assert "sk-planted" not in repr(result)
    _failed(result, "forbidden: proc")


def test_printing_gigabytes_is_cut_quickly(sandbox: SubprocessSandbox) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code = "import os\ndef f():\n    while True:\n        os.write(1, b'x' * 1048576)\n"
    limits = Limits(cpu_s=5, wall_s=10, output_bytes=100_000)
    result = sandbox.run(code, "f", [], limits=limits)
    _failed(result, "output_limit")
    assert len(result.stdout) + len(result.stderr) <= 100_000
    assert result.wall_s < 3
    grown_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kb < 50_000


def test_a_forged_result_file_cannot_stall_the_parent(sandbox: SubprocessSandbox) -> None:
    code = "import os\ndef f():\n    os.symlink('/dev/zero', 'result.json')\n    os._exit(0)\n"
    result = sandbox.run(code, "f", [])
    assert not result.ok and result.reason.startswith("exception: SystemExit"), result


# -- concurrency and the record ------------------------------------------------------------


async def test_concurrent_runs_do_not_wait_for_each_other(sandbox: SubprocessSandbox) -> None:
    code = "import time\ndef f(i):\n    time.sleep(0.4)\n    return i * i\n"
    started = time.monotonic()
    results = await asyncio.gather(*(sandbox.arun(code, "f", [i]) for i in range(8)))
    elapsed = time.monotonic() - started
    assert [r.value for r in results] == [i * i for i in range(8)]
    assert elapsed < 8 * 0.4  # serialized runs would need at least this long


async def test_cancelled_run_leaves_nothing_behind(sandbox: SubprocessSandbox) -> None:
    code = "import time\ndef f():\n    time.sleep(30)\n"
    task = asyncio.create_task(sandbox.arun(code, "f", [], limits=Limits(wall_s=60)))
    await asyncio.sleep(0.3)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_async_run_reports_failures_like_run(sandbox: SubprocessSandbox) -> None:
    code = "import time\ndef f():\n    time.sleep(5)\n"
    _failed(await sandbox.arun(code, "f", [], limits=Limits(wall_s=0.5)), "timeout")
    _failed(await sandbox.arun("def f(:", "f", []), "syntax_error")


def test_exit_is_noticed_without_pidfd(
    sandbox: SubprocessSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Kernels before 5.3 have no pidfd_open; the sandbox then polls for the exit instead.
    monkeypatch.delattr(os, "pidfd_open")
    assert sandbox.run(PRIORITY, "priority", [1, [2]]).value == [-1]
    sleeper = "import time\ndef f():\n    time.sleep(5)\n"
    _failed(sandbox.run(sleeper, "f", [], limits=Limits(wall_s=0.5)), "timeout")


def test_isolation_is_detected_and_recorded() -> None:
    box = SubprocessSandbox()
    assert box.isolation == (NETNS if NETNS_WORKS else PYTHON_GUARDS)


def test_an_unusable_interpreter_raises() -> None:
    with pytest.raises(SandboxUnavailable):
        _ = SubprocessSandbox(python="/nonexistent/python3", isolation=PYTHON_GUARDS).isolation


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        Limits(cpu_s=0)
    with pytest.raises(ValueError):
        Limits(processes=-1)


@pytest.fixture
def shared_root() -> Iterator[Path]:
    """A work-directory root that another user can reach (pytest's own tmp dirs are 0700)."""
    root = Path(tempfile.mkdtemp(prefix="evo-sandbox-test-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("isolation", [NETNS, PYTHON_GUARDS])
def test_run_as_drops_root(isolation: str, shared_root: Path) -> None:
    # Needs root and an interpreter that user 65534 can read (here the system one, if any).
    python = "/usr/bin/python3"
    if os.geteuid() != 0 or not os.access(python, os.X_OK):
        pytest.skip("needs root and /usr/bin/python3")
    if isolation == NETNS and not NETNS_WORKS:
        pytest.skip("network namespaces are not available here (unshare(1) fails)")
    box = SubprocessSandbox(FAST, python, isolation=isolation, run_as=65534, tmp_root=shared_root)
    try:
        assert box.isolation == isolation
    except SandboxUnavailable as exc:
        pytest.skip(f"user 65534 cannot run {python} here: {exc}")
    code = (
        "import os\n"
        "def f():\n"
        "    try:\n"
        "        os.listdir('/root')\n"
        "        readable = True\n"
        "    except PermissionError:\n"
        "        readable = False\n"
        "    return [os.getuid(), os.getgid(), os.getgroups(), readable]\n"
    )
    result = box.run(code, "f", [])
    assert result.value == [65534, 65534, [], False], result
    _assert_clean(shared_root)


# -- the user, and what leaves the sandbox -------------------------------------------------


@pytest.fixture
def nobody_python(shared_root: Path) -> str:
    """An interpreter that user nobody can run with the child program (the service's own may
    sit in a directory only root can enter)."""
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3", "/usr/local/bin/python3"]):
        box = SubprocessSandbox(
            FAST, python, isolation=PYTHON_GUARDS, run_as=NOBODY, tmp_root=shared_root
        )
        try:
            _ = box.isolation
        except SandboxUnavailable:
            continue
        return python
    pytest.skip("no interpreter here that user nobody can run")


@pytest.mark.parametrize("isolation", [NETNS, PYTHON_GUARDS])
def test_a_root_service_runs_programs_as_nobody_by_default(
    isolation: str, nobody_python: str, shared_root: Path
) -> None:
    if isolation == NETNS and not NETNS_WORKS:
        pytest.skip("network namespaces are not available here (unshare(1) fails)")
    box = SubprocessSandbox(FAST, nobody_python, isolation=isolation, tmp_root=shared_root)
    assert (box.isolation, box.user) == (isolation, NOBODY)
    code = "import os\ndef f():\n    return [os.getuid(), os.getgid(), os.getgroups()]\n"
    assert box.run(code, "f", []).value == [NOBODY, NOBODY, []]
    _assert_clean(shared_root)


@pytest.mark.parametrize("isolation", [NETNS, PYTHON_GUARDS])
def test_a_program_cannot_read_etc_shadow(
    isolation: str, nobody_python: str, shared_root: Path
) -> None:
    if isolation == NETNS and not NETNS_WORKS:
        pytest.skip("network namespaces are not available here (unshare(1) fails)")
    shadow = [line for line in Path("/etc/shadow").read_text().splitlines() if line.strip()]
    assert shadow  # root reads it: the program, started by root, must not
    box = SubprocessSandbox(FAST, nobody_python, isolation=isolation, tmp_root=shared_root)
    code = (
        "import sys\n"
        "def f():\n"
        "    text = open('/etc/shadow').read()\n"
        "    print(text)\n"
        "    print(text, file=sys.stderr)\n"
        "    raise ValueError(text)\n"
    )
    result = box.run(code, "f", [])
    _failed(result, "exception: PermissionError: [Errno 13] Permission denied: '/etc/shadow'")
    seen = repr(result)
    assert not [line for line in shadow if line in seen]
    _assert_clean(shared_root)


def test_a_root_service_runs_programs_as_itself_where_nobody_cannot(
    tmp_path: Path, shared_root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    if os.geteuid() != 0:
        pytest.skip("switching users needs root")
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    python = private / "python3"
    python.symlink_to(sys.executable)  # nobody cannot enter the directory to start it
    caplog.set_level(logging.WARNING, logger="workers.sandbox")
    box = SubprocessSandbox(FAST, str(python), isolation=PYTHON_GUARDS, tmp_root=shared_root)
    assert box.user is None
    assert box.run(PRIORITY, "priority", [1, [2]]).value == [-1]
    assert "sandbox children run as root" in caplog.text
    # An explicit uid is not given up silently.
    explicit = SubprocessSandbox(
        FAST, str(python), isolation=PYTHON_GUARDS, run_as=NOBODY, tmp_root=shared_root
    )
    with pytest.raises(SandboxUnavailable):
        _ = explicit.user


def test_a_service_that_is_not_root_runs_programs_as_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if os.geteuid() == 0:
        monkeypatch.setattr(os, "geteuid", lambda: 1000)  # as a service that is not root
    box = SubprocessSandbox(FAST, isolation=PYTHON_GUARDS)
    assert box.user is None
    assert box.run("import os\ndef f():\n    return os.getuid()\n", "f", []).value == os.getuid()


def test_run_as_is_validated() -> None:
    for bad in (-1, "nobody", True):
        with pytest.raises(ValueError):
            SubprocessSandbox(run_as=bad)  # type: ignore[arg-type]


def test_the_failure_reason_is_the_first_line_of_the_message(sandbox: SubprocessSandbox) -> None:
    code = "def f():\n    raise ValueError('no bins\\n' + 'secret line\\n' * 1000)\n"
    _failed(sandbox.run(code, "f", []), "exception: ValueError: no bins")


@pytest.mark.parametrize(
    ("message", "start"),
    [
        ("'x' * 10 ** 6", "x" * 10),
        ("('y' * 5000 + '\\n') * 200", "y" * 10),
        ("'\\n' * 50 + 'z' * 10 ** 5", "z" * 10),  # the first line with any text
    ],
)
def test_a_huge_exception_message_gives_a_bounded_reason(
    sandbox: SubprocessSandbox, message: str, start: str
) -> None:
    result = sandbox.run(f"def f():\n    raise ValueError({message})\n", "f", [])
    assert not result.ok
    assert result.reason.startswith(f"exception: ValueError: {start}"), result.reason[:100]
    assert len(result.reason) <= 200 and "\n" not in result.reason


@pytest.mark.parametrize(
    ("forged", "reason"),
    [
        ("exception: Forged: first\nsecond", "exception: Forged: first"),
        ("forbidden: write\x1b[2J", "forbidden: write?[2J"),
        ("timeout", "bad_return"),  # only the parent sees a timeout
        ("z" * 100_000, "bad_return"),
        (42, "bad_return"),
    ],
)
def test_a_forged_result_file_gets_a_short_known_reason(
    sandbox: SubprocessSandbox, forged: object, reason: str
) -> None:
    code = (
        "import json, os\n"
        "def f(reason):\n"
        "    with open('result.json', 'w') as out:\n"
        "        json.dump({'ok': False, 'reason': reason}, out)\n"
        "    os._exit(0)\n"
    )
    _failed(sandbox.run(code, "f", [forged]), reason)


def test_the_result_keeps_a_short_printable_tail_of_the_output(
    sandbox: SubprocessSandbox,
) -> None:
    code = (
        "import sys\n"
        "def f():\n"
        "    for i in range(100):\n"
        "        print(f'line {i}')\n"
        "        print(f'err {i}', file=sys.stderr)\n"
        "    print('z' * 10000)\n"
        "    print('\\x1b[31mred\\x1b[0m\\r', file=sys.stderr)\n"
        "    return 1\n"
    )
    result = sandbox.run(code, "f", [])
    assert result.ok, result
    assert result.stdout == "z" * 499 + "\n"
    assert result.stderr == "err 96\nerr 97\nerr 98\nerr 99\n?[31mred?[0m\n"
