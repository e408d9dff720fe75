"""What a sandbox child left, read as untrusted input: its result file decoded and checked, a
failure reason of a known kind, and output tails cut and stripped of control characters."""

from __future__ import annotations

import json
import math
import signal
from typing import Any

REASON_CHARS = 200  # longest failure reason
OUTPUT_TAIL_LINES = 5  # of stdout and of stderr, the last lines kept in a RunResult
OUTPUT_TAIL_CHARS = 500  # and at most this many characters of them
# Reasons the child may write itself; anything else in its result file is "bad_return".
CHILD_REASONS = frozenset({
    "syntax_error", "missing_function", "bad_signature", "non_finite", "bad_return", "memory",
})
CHILD_REASON_PREFIXES = ("exception: ", "forbidden: ")


def decode_result(data: bytes) -> tuple[str | None, Any]:
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


def output_tail(text: str) -> str:
    """The last lines of an output stream, bounded and printable (see ``RunResult``)."""
    tail = text[-OUTPUT_TAIL_CHARS * 4:].replace("\r\n", "\n")
    lines = tail.splitlines(keepends=True)[-OUTPUT_TAIL_LINES:]
    return _printable("".join(lines), keep="\n\t")[-OUTPUT_TAIL_CHARS:]


class _NonFinite(Exception):
    pass


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
