"""Why a job failed, in one sentence its owner may read.

A job's ``reason`` is shown to the tenant who submitted it (API, dashboard, CLI). It says what
went wrong and never carries a traceback, a path on the server, SQL or another tenant's data.
Errors whose message was written for the job's owner (a task that cannot load, an endpoint that
cannot be reached, a cluster that cannot hold the job's workers) keep their first line, with
paths cut to their file names; any other error is an internal one: the reason says so and names
the job, and the full detail goes to the server's log under the job's id.
"""

from __future__ import annotations

import logging
import re

from evo.llm import LLMUnavailable
from evo.spec_io import SpecError
from evo.task import TaskError
from workers.capacity import CannotSchedule
from workers.pool import PoolExhausted
from workers.sandbox import SandboxUnavailable

log = logging.getLogger(__name__)

MAX_CHARS = 300
# messages written for the job's owner; anything else is internal
_FOR_THE_OWNER: tuple[type[BaseException], ...] = (
    TaskError, CannotSchedule, SandboxUnavailable, PoolExhausted,
)
# an absolute path (two or more segments): only its last segment is kept
_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s'\"`/:;,()\[\]{}<>]+/)+([^\s'\"`/:;,()\[\]{}<>]*)")


def tenant_reason(exc: BaseException, job_id: str) -> str:
    """The reason stored for a job that ``exc`` ended; logs the full detail."""
    if isinstance(exc, LLMUnavailable):
        text = f"model endpoint unavailable: {exc}"
    elif isinstance(exc, SpecError):  # one problem a line: all of them, on one
        text = "invalid job spec: " + "; ".join(str(e) for e in exc.errors)
    elif isinstance(exc, _FOR_THE_OWNER):
        text = str(exc) or type(exc).__name__
    else:
        log.error("job %s failed", job_id, exc_info=exc)
        return (f"internal error ({type(exc).__name__}); the server's log has the details "
                f"under job {job_id}")
    log.warning("job %s failed: %s", job_id, exc, exc_info=log.isEnabledFor(logging.DEBUG))
    return one_line(text)


def one_line(text: str, limit: int = MAX_CHARS) -> str:
    """The first non-empty line of ``text``, paths cut to their last part, at most ``limit``
    characters."""
    line = next((ln.strip() for ln in text.splitlines() if ln.strip()), "")
    line = _PATH.sub(lambda m: m.group(1) or "…", line)
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
