"""Reusable parameter types."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator


def _no_nul(value: str) -> str:
    # the store (PostgreSQL in particular) cannot compare text containing NUL
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


NoNul = Annotated[str, AfterValidator(_no_nul)]
