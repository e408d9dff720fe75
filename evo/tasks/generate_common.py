"""What the task-data generators share: the record they yield and a capitalizer."""

from __future__ import annotations

Record = tuple[str, str, str]  # (input, target, kind)


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]
