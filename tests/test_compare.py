"""Comparing methods: one spec per run, a bootstrap interval, the table in three forms."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evo.app.compare import (
    Run,
    bootstrap_ci,
    pairs_markdown,
    pairwise,
    run_specs,
    strategy_note,
    summarize,
    to_csv,
    to_markdown,
)
from evo.spec_io import parse_spec
from storage import Store


def test_run_specs_share_task_budget_and_accepted_params() -> None:
    spec = parse_spec({"task": "topic", "budget": {"calls": 900}, "seed": 4,
                       "algorithm": {"name": "evoprompt-ga", "population": 5, "dev_subset": 20}})
    runs = run_specs(spec, ["evoprompt-ga", "opro"], 2)
    # every method's first run before any second run: a comparison stopped early covers all
    assert [(n, r, s.seed) for n, r, s in runs] == [
        ("evoprompt-ga", 0, 4), ("opro", 0, 4), ("evoprompt-ga", 1, 5), ("opro", 1, 5)]
    ga, opro = runs[0][2], runs[1][2]
    assert ga.algorithm.params == {"population": 5, "dev_subset": 20}
    assert opro.algorithm.params == {}  # OPRO has neither parameter: its own defaults apply
    assert all(s.budget.calls == 900 and s.task == "topic" for _, _, s in runs)


def test_each_method_answers_with_its_own_strategy_and_the_others_with_the_specs() -> None:
    def strategies(base: dict) -> dict[str, str]:
        runs = run_specs(parse_spec({"task": "arithmetic", **base}), ["opro", "zero-shot-eot"], 1)
        return {name: one.evaluation.strategy for name, _, one in runs}

    # zero-shot-eot's candidates are answered with eot; nothing forces it on OPRO
    assert strategies({}) == {"opro": "direct", "zero-shot-eot": "eot"}
    assert strategies({"evaluation": {"strategy": "zero_shot_cot"}}) == {
        "opro": "zero_shot_cot", "zero-shot-eot": "eot"}
    # a zero-shot-eot spec's eot came with its algorithm: it is no choice for the others
    assert strategies({"algorithm": {"name": "zero-shot-eot"}}) == {
        "opro": "direct", "zero-shot-eot": "eot"}
    mixed = run_specs(parse_spec({"task": "arithmetic"}), ["opro", "zero-shot-eot"], 1)
    note = strategy_note(mixed)
    assert "opro: direct, 1 call per example" in note
    assert "zero-shot-eot: eot, up to 3 calls per example" in note
    alike = run_specs(parse_spec({"task": "arithmetic"}), ["opro", "promptbreeder"], 1)
    assert strategy_note(alike) == ""


def test_a_data_set_method_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="evol-instruct evolves a data set of instructions, not "
                                         "a prompt: its jobs have no dev or test score"):
        run_specs(parse_spec({"task": "arithmetic"}), ["opro", "evol-instruct"], 1)


def test_bootstrap_interval_brackets_the_mean() -> None:
    runs = [[1.0] * 70 + [0.0] * 30, [1.0] * 60 + [0.0] * 40]
    low, high = bootstrap_ci(runs)
    assert low < 0.65 < high
    assert low > 0.55 and high < 0.75
    assert bootstrap_ci([[1.0] * 10]) == (1.0, 1.0)


def test_summary_table_forms() -> None:
    runs = [Run("a", 0, "j1", 0.8, 0.7, (1.0, 0.0, 1.0), 100, 1000, 2.0),
            Run("a", 1, "j2", 0.6, 0.5, (1.0, 0.0), 120, 1200, 3.0),
            Run("b", 0, "j3", None, None, (), 10, 50, 0.5)]
    rows = summarize(runs)
    assert [r.algorithm for r in rows] == ["a", "b"]
    assert abs(rows[0].dev_mean - 0.7) < 1e-9 and rows[0].calls == 110
    md = to_markdown(rows, title="t")
    assert "| a | 2 | 0.700 ± 0.141 | 0.600 [" in md and "| b | 1 | — | — |" in md
    parsed = list(csv.DictReader(io.StringIO(to_csv(rows))))
    assert parsed[0]["algorithm"] == "a" and float(parsed[0]["test_mean"]) == 0.6
    assert parsed[1]["dev_mean"] == ""


def test_cli_compare_writes_markdown_and_csv(tmp_path: Path) -> None:
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "COLUMNS": "200"}
    out = subprocess.run(
        [sys.executable, "-m", "evo.app.cli", "compare", "quickstart", "--algorithms",
         "evoprompt-ga,opro", "--repeats", "2", "--set", "models.task.provider=scripted",
         "--set", "algorithm.generations=1", "--set", "budget.calls=2000",
         "--set", "models.task.price.input=1000",
         "--markdown", str(tmp_path / "t.md"), "--csv", str(tmp_path / "t.csv"),
         "--db", f"sqlite:///{tmp_path / 'c.db'}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "evoprompt-ga" in out.stdout and "opro" in out.stdout
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert [r["algorithm"] for r in rows] == ["evoprompt-ga", "opro"]
    assert all(r["runs"] == "2" and float(r["calls"]) <= 2000 for r in rows)
    assert all(float(r["usd"]) > 0 for r in rows)  # priced: the mean spend of its runs
    assert (tmp_path / "t.md").read_text().count("\n|") >= 3
    # the two methods compared example by example on the same test split
    assert "| evoprompt-ga − opro |" in (tmp_path / "t.md").read_text()
    assert "Paired on the same test examples" in out.stdout
    first = (tmp_path / "t.csv").read_text()
    with Store(f"sqlite:///{tmp_path / 'c.db'}") as store:
        jobs_before = len(store.list_jobs(limit=100))
    # the same comparison again: every run comes from the store, nothing runs twice
    again = subprocess.run(
        [sys.executable, "-m", "evo.app.cli", "compare", "quickstart", "--algorithms",
         "evoprompt-ga,opro", "--repeats", "2", "--set", "models.task.provider=scripted",
         "--set", "algorithm.generations=1", "--set", "budget.calls=2000",
         "--set", "models.task.price.input=1000",
         "--csv", str(tmp_path / "t.csv"), "--db", f"sqlite:///{tmp_path / 'c.db'}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("completed before") == 4
    with Store(f"sqlite:///{tmp_path / 'c.db'}") as store:
        assert len(store.list_jobs(limit=100)) == jobs_before
    assert (tmp_path / "t.csv").read_text() == first  # same table, CIs included
    bad = subprocess.run([sys.executable, "-m", "evo.app.cli", "compare", "quickstart",
                          "--algorithms", "ga,opro"], capture_output=True, text=True, env=env,
                         cwd=tmp_path)
    assert bad.returncode == 2 and "unknown algorithm 'ga'" in bad.stderr


def test_no_interval_when_some_runs_lack_per_example_scores() -> None:
    runs = [Run("a", 0, "j", 0.8, 0.7, (1.0, 0.0, 1.0), 1, 1, 1.0),
            Run("a", 1, "k", 0.9, 0.8, (), 1, 1, 1.0)]
    (row,) = summarize(runs)
    assert row.test_mean == 0.75 and row.test_low is None and row.test_high is None


def test_methods_are_compared_example_by_example_on_the_same_test_split() -> None:
    # a beats b by one example of four in both repeats; c has no per-example scores
    runs = [Run("a", 0, "j1", 0.8, 0.75, (1.0, 1.0, 1.0, 0.0), 1, 1, 1.0),
            Run("b", 0, "j2", 0.7, 0.5, (1.0, 1.0, 0.0, 0.0), 1, 1, 1.0),
            Run("a", 1, "j3", 0.8, 0.75, (1.0, 1.0, 1.0, 0.0), 1, 1, 1.0),
            Run("b", 1, "j4", 0.7, 0.5, (1.0, 0.0, 1.0, 0.0), 1, 1, 1.0),
            Run("c", 0, "j5", None, None, (), 1, 1, 1.0)]
    (pair,) = pairwise(runs)
    assert (pair.a, pair.b, pair.examples, pair.repeats) == ("a", "b", 4, 2)
    assert pair.diff == pytest.approx(25.0)  # per example: 0, +0.5, +0.5, 0 → mean 0.25
    assert pair.low <= pair.diff <= pair.high and pair.low >= 0  # never below zero here
    assert "a − b" in pairs_markdown([pair]) and pairs_markdown([]) == ""


SPEC = """\
task: arithmetic
models:
  task: {provider: scripted}
budget: {calls: 8000}
evaluation: {top_k: 1}
algorithm: {name: promptbreeder, population: 2, generations: 1, dev_subset: 5}
"""


def compare_cli(tmp_path: Path, algorithms: str, budget: int = 8000) -> subprocess.CompletedProcess:
    (tmp_path / "spec.yaml").write_text(SPEC)
    env = {**os.environ, "EVO_EXECUTOR": "inprocess", "COLUMNS": "250"}
    return subprocess.run(
        [sys.executable, "-m", "evo.app.cli", "compare", "spec.yaml", "--algorithms", algorithms,
         "--set", f"budget.calls={budget}", "--csv", str(tmp_path / "t.csv"),
         "--markdown", str(tmp_path / "t.md"), "--db", f"sqlite:///{tmp_path / 'c.db'}"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)


def test_cli_compares_promptbreeder_and_zero_shot_eot_with_a_cheap_method(tmp_path: Path) -> None:
    out = compare_cli(tmp_path, "evoprompt-ga,promptbreeder,zero-shot-eot")
    assert out.returncode == 0, out.stderr
    rows = {r["algorithm"]: r for r in csv.DictReader((tmp_path / "t.csv").open())}
    assert list(rows) == ["evoprompt-ga", "promptbreeder", "zero-shot-eot"]
    for row in rows.values():  # one finished run each, scored on dev and test, within budget
        assert row["runs"] == "1" and row["dev_mean"] != "" and row["test_mean"] != ""
        assert row["test_ci_low"] != "" and 0 < float(row["calls"]) <= 8000
    for name in rows:
        assert f"│ {name} " in out.stdout
    # zero-shot-eot answered with eot, the others with the spec's direct, and the table says so
    note = "The methods answer with different evaluation strategies"
    assert note in out.stdout and note in (tmp_path / "t.md").read_text()
    with Store(f"sqlite:///{tmp_path / 'c.db'}") as store:
        jobs = {j.algorithm: j for j in store.list_jobs(limit=10)}
        assert {a: j.spec["evaluation"]["strategy"] for a, j in jobs.items()} == {
            "evoprompt-ga": "direct", "promptbreeder": "direct", "zero-shot-eot": "eot"}
        assert all(j.status == "completed" for j in jobs.values())


def test_cli_compare_checks_every_method_before_running_any(tmp_path: Path) -> None:
    # enough for direct answering, not for the final reserve of zero-shot-eot's chains
    out = compare_cli(tmp_path, "evoprompt-ga,zero-shot-eot", budget=2000)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "run with zero-shot-eot" in out.stderr and "budget.calls" in out.stderr
    assert not (tmp_path / "c.db").exists()  # nothing ran, no store was made
    refused = compare_cli(tmp_path, "opro,evol-instruct")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "evol-instruct evolves a data set of instructions, not a prompt" in refused.stderr
    assert not (tmp_path / "c.db").exists()
