"""The default store: one per user, wherever a command runs; a command that fails before it
needs a store makes none, and one that only reads says there is no store instead of making it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evo.app.settings import Settings
from storage import Store

EVO = [sys.executable, "-m", "evo.app.cli"]
SCRIPTED = ["-q", "--set", "models.task.provider=scripted", "--set", "algorithm.population=3",
            "--set", "algorithm.generations=2", "--set", "budget.calls=20000"]


def evo(*args: str, home: Path, cwd: Path, columns: int = 80) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "EVO_HOME": str(home),
           "COLUMNS": str(columns)}
    env.pop("EVO_DATABASE_URL", None)
    return subprocess.run([*EVO, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=120)


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"  # not made: the first command that needs it makes it


def folder(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def test_the_default_store_is_in_the_user_data_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EVO_HOME", raising=False)
    monkeypatch.delenv("EVO_DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))  # where Linux keeps user data
    assert Settings().database_url == f"sqlite:///{tmp_path / 'data' / 'evo' / 'evo.db'}"
    monkeypatch.setenv("EVO_HOME", str(tmp_path / "mine"))
    assert Settings().database_url == f"sqlite:///{tmp_path / 'mine' / 'evo.db'}"
    monkeypatch.setenv("EVO_DATABASE_URL", "sqlite:///elsewhere.db")  # the URL still wins
    assert Settings().database_url == "sqlite:///elsewhere.db"


@pytest.mark.parametrize("columns", [80, 140])
def test_a_job_run_in_one_folder_is_found_from_another(
    tmp_path: Path, home: Path, columns: int
) -> None:
    here, there = folder(tmp_path, "here"), folder(tmp_path, "there")
    out = evo("run", "quickstart", *SCRIPTED, home=home, cwd=here, columns=columns)
    assert out.returncode == 0, out.stderr
    job_id = out.stdout.split("job ")[-1].split()[0]
    assert (home / "evo.db").exists() and list(here.iterdir()) == []
    shown = evo("show", job_id[:8], home=home, cwd=there, columns=columns)
    assert shown.returncode == 0, shown.stderr
    assert "Population per generation" in shown.stdout
    assert list(there.iterdir()) == []

    missing = evo("show", "abcdef12", home=home, cwd=there, columns=columns)
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert one_line(missing.stderr) == (
        f"error: no job 'abcdef12' in the store at {home / 'evo.db'} (the default store; --db "
        "or EVO_DATABASE_URL names another)")
    other = tmp_path / "other.db"
    evo("db", "upgrade", "--db", f"sqlite:///{other}", home=home, cwd=there)
    elsewhere = evo("cancel", "abcdef12", "--db", f"sqlite:///{other}", home=home, cwd=there,
                    columns=columns)
    assert elsewhere.returncode == 2
    assert one_line(elsewhere.stderr) == (
        f"error: no job 'abcdef12' in the store at {other} (the default store is "
        f"{home / 'evo.db'})")


@pytest.mark.parametrize(
    "command",
    [["jobs"], ["show", "abcdef12"], ["export", "abcdef12"], ["cancel", "abcdef12"],
     ["pause", "abcdef12"], ["requeue", "abcdef12"], ["resume", "abcdef12"], ["reap"],
     ["keys", "list"], ["keys", "revoke", "alice"], ["db", "current"]],
)
def test_reading_commands_make_no_store(tmp_path: Path, home: Path, command: list[str]) -> None:
    out = evo(*command, home=home, cwd=tmp_path)
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert one_line(out.stderr) == (
        f"error: no store at {home / 'evo.db'} (no job has been run with it yet)")
    assert not home.exists() and list(tmp_path.iterdir()) == []
    # the same for a store named on the command line
    named = tmp_path / "named.db"
    out = evo(*command, "--db", f"sqlite:///{named}", home=home, cwd=tmp_path)
    assert out.returncode == 2 and f"no store at {named}" in one_line(out.stderr)
    assert not named.exists()


def test_a_spec_that_cannot_run_makes_no_store(tmp_path: Path, home: Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text("task: sentiment\nalgorithm:\n  name: opro\n  steps: lots\n")
    out = evo("run", str(spec), home=home, cwd=tmp_path)
    assert out.returncode == 2 and "algorithm.steps" in out.stderr
    data = tmp_path / "data.jsonl"
    data.write_text('{"text": "good", "label": "positive"}\n{"text": "bad", "label": \n')
    spec.write_text(yaml.safe_dump({"task": {
        "name": "mine", "data": str(data), "columns": {"input": "text", "target": "label"},
        "labels": ["positive", "negative"], "seed_prompts": ["Good or bad?"]}}))
    for command in ("run", "compare", "submit"):
        out = evo(command, str(spec), home=home, cwd=tmp_path)
        assert out.returncode == 2 and "data.jsonl:2" in out.stderr, (command, out.stderr)
    tight = evo("run", "quickstart", "--set", "budget.calls=5", home=home, cwd=tmp_path)
    assert tight.returncode == 2 and "budget.calls" in tight.stderr
    assert not home.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl", "job.yaml"]


def test_commands_that_write_make_the_store_and_its_folder(tmp_path: Path, home: Path) -> None:
    made = evo("keys", "create", "alice", home=home, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (home / "evo.db").exists()
    listed = evo("keys", "list", home=home, cwd=tmp_path)
    assert listed.returncode == 0 and "alice" in listed.stdout


def test_the_python_api_makes_the_default_store_on_first_use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evo
    from evo.spec_io import SpecError

    home = tmp_path / "home"
    monkeypatch.setenv("EVO_HOME", str(home))
    monkeypatch.delenv("EVO_DATABASE_URL", raising=False)
    spec = {"task": "topic", "models": {"task": {"provider": "scripted"}},
            "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1},
            "budget": {"calls": 20000}}
    with pytest.raises(SpecError):
        evo.optimize({**spec, "budget": {"calls": 5}})
    assert not home.exists()  # refused before a store was needed
    result = evo.optimize(spec)
    assert result.status == "completed"
    with Store(f"sqlite:///{home / 'evo.db'}") as store:
        assert store.get_job(result.job_id) is not None
