"""``evo --help`` as a new user reads it, at 80 and at 140 columns: flags show no value type,
every command's summary is one whole sentence, and the store's location is said."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

EVO = [sys.executable, "-m", "evo.app.cli"]
# every command `evo --help` lists: a summary cut short would hide one of them, or end early
COMMANDS = {"run", "resume", "submit", "cancel", "pause", "requeue", "worker", "reap", "compare",
            "jobs", "show", "export", "predict", "bench", "tasks", "algorithms", "serve", "db",
            "keys"}


def help_text(*args: str, columns: int, home: Path) -> str:
    env = {**os.environ, "COLUMNS": str(columns), "EVO_HOME": str(home)}
    env.pop("EVO_DATABASE_URL", None)
    out = subprocess.run([*EVO, *args, "--help"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert max(len(line) for line in out.stdout.splitlines()) <= columns
    return out.stdout


def panel_rows(text: str, title: str) -> dict[str, str]:
    """The rows of a help panel: first column → the rest, wrapped lines joined, spaces
    collapsed."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"╭─ {title} "))
    rows: dict[str, str] = {}
    name = ""
    for line in lines[start + 1:]:
        if line.startswith("╰"):
            break
        inner = line.strip("│").rstrip()
        first, _, rest = inner.strip().partition(" ")
        if inner[:2].strip():  # a new row starts in the first column
            name = first
            rows[name] = rest.strip()
        else:
            rows[name] += " " + inner.strip()
    return {name: " ".join(row.split()) for name, row in rows.items()}


def hard_breaks(text: str, title: str) -> list[str]:
    """Lines of a panel's last column that end although the next line's first word would have
    fit: a line break inside the help text itself, not wrapping."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"╭─ {title} "))
    body = []
    for line in lines[start + 1:]:
        if line.startswith("╰"):
            break
        body.append(line)
    # the last column starts where the first row's text does after its name
    column = len(body[0]) - len(body[0][1:].lstrip().partition(" ")[2].lstrip()) - 1
    width = len(body[0]) - 2 - column  # up to the padding before the right border
    broken = []
    for line, after in itertools.pairwise(body):
        text_now, text_next = line[column:-1].rstrip(), after[column:-1].strip()
        continues = not after[1:column].strip()  # the next line has no name of its own
        if continues and text_next and len(text_now) + 1 + len(text_next.split()[0]) <= width:
            broken.append(text_now)
    return broken


@pytest.mark.parametrize("columns", [80, 140])
def test_top_level_help(tmp_path: Path, columns: int) -> None:
    text = help_text(columns=columns, home=tmp_path)
    assert "<bool>" not in text
    summaries = panel_rows(text, "Commands")
    assert set(summaries) == COMMANDS
    for name, summary in summaries.items():
        assert summary.endswith("."), (name, summary)
        assert not summary.endswith("..."), (name, summary)
        # one sentence: a period inside would mean the summary runs on into the details
        assert not re.search(r"\.\s+[A-Z]", summary), (name, summary)
    assert hard_breaks(text, "Commands") == []
    # the store's location, however the line wraps
    assert str(tmp_path / "evo.db") in "".join(text.split())
    assert "EVO_DATABASE_URL" in text and "--db" in text


@pytest.fixture
def short_home() -> Iterator[Path]:
    """A home whose path fits an option's help column at 80 columns (a longer one is cut)."""
    home = Path(tempfile.mkdtemp(prefix="evo-", dir="/tmp"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.mark.parametrize("columns", [80, 140])
def test_a_command_help_shows_flags_without_a_value_type(short_home: Path, columns: int) -> None:
    text = help_text("run", columns=columns, home=short_home)
    options = panel_rows(text, "Options")
    assert options["--quiet"] == "-q no live progress"
    assert options["--help"] == "Show this message and exit."
    assert options["--set"].startswith("<list[str]>")  # an option that takes a value keeps it
    assert str(short_home / "evo.db") in "".join(options["--db"].split())
    keys = panel_rows(help_text("keys", "create", columns=columns, home=short_home), "Options")
    assert keys["--admin"] == "may see and act on every job"
