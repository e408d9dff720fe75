"""The quick-start figures in README.md and docs/performance.md are those of the stored run they
name (bench/results/docs_figures/quickstart.json), written next to the command that produced
them; a number edited by hand, or a rerun whose record the docs were not rewritten from, fails
here. Nothing here runs the model: ``python -m bench.docs_figures --write`` does."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from bench import docs_figures as df

DOCS = list(df.DOCS)


@pytest.fixture(scope="module")
def record() -> dict[str, Any]:
    return df.load_record("quickstart")


def flat(text: str) -> str:
    return " ".join(text.split())


def doc_region(doc: str) -> str:
    return df.region((df.ROOT / doc).read_text(), "quickstart", doc)


def test_the_record_is_a_completed_run_of_the_shipped_quickstart_spec(record: dict[str, Any]):
    assert record["command"] == "evo run quickstart"
    assert record["spec"] == yaml.safe_load(df.QUICKSTART_SPEC.read_text())
    assert (record["spec"]["name"], record["spec"]["seed"]) == ("quickstart", 7)
    assert record["job"]["status"] == "completed"
    assert re.fullmatch(r"[0-9a-f]{40}", record["commit"])
    vs = record["vs_seed"]
    # the stored sentence is the one the stored comparison gives
    assert f"{vs['diff']:+.1f} points" in vs["sentence"]
    assert f"on {vs['n']} test examples" in vs["sentence"]
    assert vs["n"] == record["winner"]["test_examples"]


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_figures_are_the_records(doc: str, record: dict[str, Any]):
    text = flat(doc_region(doc))
    w, s, vs = record["winner"], record["seed_prompt"], record["vs_seed"]
    # every three-decimal score outside the job's sentence (which may hold "p < 0.001") is one
    # of the record's four, and each is there
    scores = {f"{x:.3f}" for x in (s["dev"], s["test"], w["dev"], w["test"])}
    assert set(re.findall(r"\b\d\.\d{3}\b", text.replace(vs["sentence"], ""))) == scores
    assert f"seed prompt scores {s['dev']:.3f} on dev" in text or (
        f"seed prompt scored {s['dev']:.3f} on the full dev split" in text)
    assert f"{w['dev']:.3f}" in text and f"{w['test']:.3f}" in text
    # the points, the interval and the verdict, as the job stated them
    assert f"\"{vs['sentence']}\"" in text
    assert f"{vs['diff']:+.1f} points" in text
    assert f"[{vs['low']:+.1f}, {vs['high']:+.1f}]" in text
    assert f"{record['calls']:,} paid calls" in text
    assert f"{record['tokens']:,} tokens" in text
    assert df.duration(record["wall_s"]) in text
    assert record["date"] in text


def test_performance_gives_the_cache_hits_splits_and_winner(record: dict[str, Any]):
    text = flat(doc_region("docs/performance.md"))
    w = record["winner"]
    assert f"{record['cached']:,} cache hits" in text
    assert f"({w['dev_examples']} examples)" in text and f"on test ({w['test_examples']})" in text
    assert f"generation {w['generation']})" in text
    assert df.quoted(w["prompt"]) in text
    assert f"commit {record['commit'][:10]}" in text


@pytest.mark.parametrize("doc", DOCS)
def test_the_docs_text_is_exactly_what_the_record_gives(doc: str, record: dict[str, Any]):
    assert doc_region(doc) == df.DOCS[doc]["quickstart"](record)


@pytest.mark.parametrize("doc", DOCS)
def test_the_figures_name_their_command_and_record(doc: str):
    text = flat(doc_region(doc))
    assert "`evo run quickstart`" in text
    assert "`bench/results/docs_figures/quickstart.json`" in text
    assert "`python -m bench.docs_figures --write`" in text


@pytest.fixture
def docs_copy(tmp_path: Path) -> Path:
    for doc in DOCS:
        (tmp_path / doc).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(df.ROOT / doc, tmp_path / doc)
    return tmp_path


def test_a_number_edited_by_hand_is_caught(docs_copy: Path, record: dict[str, Any]):
    records = {"quickstart": record}
    assert df.stale_docs(records, docs_copy) == []
    readme = docs_copy / "README.md"
    text = readme.read_text()
    body = df.region(text, "quickstart")
    shown = f"{record['winner']['test']:.3f}"
    edited = body.replace(shown, "0.123" if shown != "0.123" else "0.124")
    assert edited != body
    readme.write_text(df.rewrite(text, "quickstart", edited))
    assert df.stale_docs(records, docs_copy) == ["README.md (quickstart)"]


def test_a_rerun_the_docs_were_not_written_from_is_caught(docs_copy: Path,
                                                          record: dict[str, Any]):
    rerun = {**record, "calls": record["calls"] + 1}
    assert df.stale_docs({"quickstart": rerun}, docs_copy) == [
        "README.md (quickstart)", "docs/performance.md (quickstart)"]


def test_write_replaces_only_the_region_and_is_idempotent(docs_copy: Path,
                                                          record: dict[str, Any]):
    rerun = {**record, "tokens": record["tokens"] + 1000, "wall_s": 61.0}
    before = {doc: (docs_copy / doc).read_text() for doc in DOCS}
    assert df.write_docs({"quickstart": rerun}, docs_copy) == DOCS
    for doc in DOCS:
        after = (docs_copy / doc).read_text()
        assert df.region(after, "quickstart") == df.DOCS[doc]["quickstart"](rerun)
        assert f"{rerun['tokens']:,} tokens" in flat(after) and "1 min 01 s" in after
        # the text around the region is untouched, byte for byte
        old = before[doc]
        start = old.index(df.start_marker("quickstart"))
        end = old.index(df.END, start)
        assert after.startswith(old[:start]) and after.endswith(old[end:])
    again = {doc: (docs_copy / doc).read_text() for doc in DOCS}
    assert df.write_docs({"quickstart": rerun}, docs_copy) == []
    assert {doc: (docs_copy / doc).read_text() for doc in DOCS} == again
    assert df.stale_docs({"quickstart": rerun}, docs_copy) == []


@pytest.mark.parametrize(("text", "error"), [
    ("no markers\n", "expected one line '<!-- figures:quickstart -->', found 0"),
    ("<!-- figures:quickstart -->\nx\n<!-- /figures -->\n<!-- figures:quickstart -->\n"
     "<!-- /figures -->\n", "found 2"),
    ("<!-- figures:quickstart -->\nx\n", "has no '<!-- /figures -->' after it"),
    ("<!-- figures:quickstart -->\nx\n<!-- figures:other -->\ny\n<!-- /figures -->\n",
     "has no '<!-- /figures -->' after it"),
])
def test_bad_markers_are_told_clearly(text: str, error: str):
    with pytest.raises(df.FiguresError, match=re.escape(error)) as info:
        df.rewrite(text, "quickstart", "new", "NOTES.md")
    assert str(info.value).startswith("NOTES.md: ")


def test_a_missing_record_says_how_to_make_it(tmp_path: Path):
    how = re.escape("run `python -m bench.docs_figures` first")
    with pytest.raises(df.FiguresError, match=how):
        df.load_record("quickstart", tmp_path)


def test_wrapping_keeps_the_line_length_and_opens_no_block():
    words = "a " * 60 + "+19.0 - 3 * 4. > # long" + " b" * 80
    lines = df.wrap(words, first="- ", rest="  ").split("\n")
    assert lines[0].startswith("- ") and all(x.startswith("  ") for x in lines[1:])
    assert all(len(x) <= df.WIDTH + 5 for x in lines)  # a marker word may overhang a line
    assert not any(re.match(r"\s*([-+*>]|#+|\d+[.)])\s", x) for x in lines[1:])
    assert flat(" ".join(lines))[2:] == flat(words)


def test_a_model_written_prompt_cannot_become_markup():
    assert df.quoted("Say *yes*\n or `no` | <b>") == r"Say \*yes\* or \`no\` \| \<b\>"


@pytest.mark.parametrize("columns", ["80", "140"])
def test_check_reports_that_the_docs_match(columns: str):
    env = {**os.environ, "COLUMNS": columns}
    out = subprocess.run([sys.executable, "-m", "bench.docs_figures", "--check"],
                         capture_output=True, text=True, env=env, cwd=df.ROOT, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == "the docs' figures match the record"


def test_check_and_write_together_are_refused(capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        df.main(["--check", "--write"])
    assert info.value.code == 2
    assert "give one" in capsys.readouterr().err


@pytest.mark.parametrize("columns", [80, 140])
def test_help_fits_the_terminal(columns: int):
    env = {**os.environ, "COLUMNS": str(columns)}
    out = subprocess.run([sys.executable, "-m", "bench.docs_figures", "--help"],
                         capture_output=True, text=True, env=env, cwd=df.ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert all(len(line) <= columns for line in out.stdout.splitlines())
    for option in ("--write", "--check", "--no-run"):
        assert option in out.stdout
