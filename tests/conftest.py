"""Shared fixtures: an isolated store per test, the scripted model, a small spec."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("EVO_EXECUTOR", "inprocess")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'evo.db'}"


@pytest.fixture
def store(sqlite_url: str):
    from storage import Store

    s = Store(sqlite_url)
    yield s
    s.close()


@pytest.fixture
def settings(sqlite_url: str):
    from evo.settings import Settings

    return Settings(database_url=sqlite_url, executor="inprocess")
