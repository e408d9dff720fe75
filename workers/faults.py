"""Crash injection for the crash-safety tests: ``EVO_FAULTS=call:40`` kills this process with
SIGKILL when the 40th model request is being answered; ``paid:3`` after the 3rd write of paid
calls; ``commit:5`` inside the 5th store transaction, before it commits; ``end`` once a job is
scored and stored, before its end is written. Unset, it does nothing.

SIGKILL gives no chance to clean up, like a machine that loses power, which is the point.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from typing import Any

_seen: Counter[str] = Counter()


def _plan() -> dict[str, int]:
    spec = os.environ.get("EVO_FAULTS", "")
    plan = {}
    for item in filter(None, (p.strip() for p in spec.split(","))):
        point, _, count = item.partition(":")
        plan[point] = int(count or 1)
    return plan


def point(name: str) -> None:
    """Count one pass through ``name``; die here if the plan says so."""
    plan = _plan()
    if name not in plan:
        return
    _seen[name] += 1
    if _seen[name] == plan[name]:
        os.kill(os.getpid(), signal.SIGKILL)


def install(engine: Any) -> None:
    """Hook the ``commit`` point into a SQLAlchemy engine (only when a plan names it)."""
    if "commit" not in _plan() or getattr(engine, "_evo_faults", False):
        return
    from sqlalchemy import event

    event.listen(engine, "commit", lambda conn: point("commit"))
    engine._evo_faults = True
