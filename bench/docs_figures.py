"""The figures the docs quote that are cheap to rerun, each kept as a record the docs are written
from, so that a figure in the docs is always the one its command gives.

    python -m bench.docs_figures            # rerun, store the record, say whether the docs match
    python -m bench.docs_figures --write    # the same, then rewrite the docs from the record
    python -m bench.docs_figures --check    # no run: exit 1 if the docs differ from the record
    python -m bench.docs_figures --no-run --write   # rewrite the docs from the stored record

The quick start (``evo run quickstart``, a few minutes on 2 cores) runs through the ``evo``
command, as a user runs it, on a fresh SQLite store and the bundled model. Its record is
``bench/results/docs_figures/quickstart.json``; README.md and docs/performance.md hold the
figures between ``<!-- figures:quickstart -->`` and ``<!-- /figures -->``, written only from
that record (``tests/test_docs_figures.py`` fails when they differ).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from bench.common import write_record

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "docs_figures"
QUICKSTART_SPEC = ROOT / "evo" / "examples" / "quickstart.yaml"
COMMAND = "evo run quickstart"
RERUN = "python -m bench.docs_figures --write"
END = "<!-- /figures -->"
WIDTH = 100  # the docs' line length


class FiguresError(Exception):
    """A doc or record the figures cannot be written from (a missing marker, a missing record)."""


def start_marker(name: str) -> str:
    return f"<!-- figures:{name} -->"


# --- running -----------------------------------------------------------------------------------


def run_quickstart(timeout_s: float = 3600) -> dict[str, Any]:
    """Run the quick start through the ``evo`` command on a fresh store; its figures as a record."""
    from evo.app.export import export_data
    from storage import Store

    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'quickstart.db'}"
        env = {**os.environ, "EVO_DATABASE_URL": db, "RAY_AUTH_MODE": "disabled"}
        # a shared cache or injected faults would change what is paid: the figures are a fresh job's
        for var in ("EVO_REDIS_URL", "EVO_FAULTS", "EVO_EXECUTOR"):
            env.pop(var, None)
        load_before = os.getloadavg()
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "evo.app.cli", "run", "quickstart", "-q"],
                             capture_output=True, text=True, env=env, timeout=timeout_s, cwd=ROOT)
        wall = time.monotonic() - started
        load_after = os.getloadavg()
        if out.returncode != 0:
            raise FiguresError(f"{COMMAND} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
        with Store(db) as store:
            (job,) = store.list_jobs()
            data = export_data(store, job, top=1)
            calls = store.llm_calls(job.id)
            stats = job.stats or {}
    if job.status != "completed":
        raise FiguresError(f"the quick-start job ended {job.status}: {job.reason}")
    winner = data["prompts"][0]
    vs = stats.get("vs_seed")
    if not vs:
        raise FiguresError("the quick-start job has no winner-vs-seed test (no test scores)")
    return {
        "figure": "quickstart",
        "command": COMMAND,
        "spec": yaml.safe_load(QUICKSTART_SPEC.read_text()),
        "job": {"id": job.id, "status": job.status},
        "model": calls[0].model if calls else None,
        "seed_prompt": {"dev": stats["seed_dev"], "test": stats["seed_test"]},
        "winner": {
            "prompt": winner["prompt"],
            "generation": winner["generation"],
            "operator": winner["operator"],
            "dev": winner["dev_score"],
            "dev_examples": winner["dev_examples"],
            "test": winner["test_score"],
            "test_examples": len(stats.get("best_test_scores", [])),
        },
        "vs_seed": vs,
        "calls": stats["calls"],
        "cached": stats["cached"],
        "tokens": stats["tokens"],
        "job_elapsed_s": stats["elapsed_s"],
        "wall_s": round(wall, 1),
        "machine": {"cores": os.cpu_count(),
                    "load_before": [round(x, 2) for x in load_before],
                    "load_after": [round(x, 2) for x in load_after]},
        "date": datetime.now(UTC).date().isoformat(),
        "commit": _git("rev-parse", "HEAD"),
        # tracked files differing from the commit: the figures are then not exactly its code's
        "uncommitted": bool(_git("status", "--porcelain", "--untracked-files=no")),
    }


def _git(*args: str) -> str:
    out = subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip()


# --- records -----------------------------------------------------------------------------------


def record_path(name: str, results: Path = RESULTS) -> Path:
    return results / f"{name}.json"


def save_record(record: dict[str, Any], results: Path = RESULTS) -> Path:
    path = record_path(record["figure"], results)
    write_record(path, record)
    return path


def load_record(name: str, results: Path = RESULTS) -> dict[str, Any]:
    path = record_path(name, results)
    if not path.is_file():
        raise FiguresError(f"no record {path}: run `python -m bench.docs_figures` first")
    return json.loads(path.read_text())


# --- how the figures read ----------------------------------------------------------------------


def score(x: float) -> str:
    return f"{x:.3f}"


def count(n: int) -> str:
    return f"{n:,}"


def duration(seconds: float) -> str:
    s = round(seconds)
    return f"{s // 60} min {s % 60:02d} s" if s >= 60 else f"{s} s"


def quoted(text: str) -> str:
    """A model-written prompt on one line, with what Markdown would take for markup escaped."""
    flat = " ".join(text.split())
    return re.sub(r"([\\`*_\[\]<>|])", r"\\\1", flat)


# a word that would open a list, a quote or a heading if a line began with it
BLOCK_START = re.compile(r"^([-+*>]|#+|\d+[.)])$")


def wrap(text: str, first: str = "", rest: str = "") -> str:
    """``text`` in lines of at most WIDTH characters (a longer word gets a line of its own),
    never breaking before a word that would make the next line a list item or a heading."""
    lines = [first]
    for word in text.split():
        line = lines[-1]
        bare = line in (first, rest)
        if bare or len(line) + 1 + len(word) <= WIDTH or BLOCK_START.match(word):
            lines[-1] = line + ("" if bare else " ") + word
        else:
            lines.append(rest + word)
    return "\n".join(lines)


def source(record: dict[str, Any], commit: bool = True) -> str:
    """Where the figures come from and how to make them again."""
    where = record_path(record["figure"]).relative_to(ROOT).as_posix()
    made = f"of {record['date']}"
    if commit:
        dirty = ", with uncommitted changes" if record.get("uncommitted") else ""
        made = f"commit {record['commit'][:10]}{dirty}, {record['date']}"
    return f"record `{where}`, {made}; `{RERUN}` reruns it and rewrites this text"


def load(record: dict[str, Any]) -> str:
    return f"load average {record['machine']['load_before'][0]:.1f} at the start"


def readme_quickstart(record: dict[str, Any]) -> str:
    r, w, s = record, record["winner"], record["seed_prompt"]
    text = (
        f"`{r['command']}` ({r['model']}, {duration(r['wall_s'])} on {r['machine']['cores']} "
        f"cores, {load(r)}): the best seed prompt scores {score(s['dev'])} on dev and "
        f"{score(s['test'])} on test; the evolved winner {score(w['dev'])} and "
        f"{score(w['test'])}, \"{r['vs_seed']['sentence']}\"; {count(r['calls'])} paid calls, "
        f"{count(r['tokens'])} tokens ({source(r, commit=False)})."
    )
    return wrap(text, first="- ", rest="  ")


def performance_quickstart(record: dict[str, Any]) -> str:
    r, w, s = record, record["winner"], record["seed_prompt"]
    text = (
        f"**Quick start** (`{r['command']}`, Ray on a fresh SQLite store, {r['model']}; "
        f"{source(r)}): {duration(r['wall_s'])} wall on {r['machine']['cores']} cores "
        f"({load(r)}), {count(r['calls'])} paid calls and {count(r['cached'])} cache hits "
        f"({count(r['tokens'])} tokens). The best seed prompt "
        f"scored {score(s['dev'])} on the full dev split ({w['dev_examples']} examples) and "
        f"{score(s['test'])} on test ({w['test_examples']}); the evolved winner "
        f"(\"{quoted(w['prompt'])}\", generation {w['generation']}) scored "
        f"**{score(w['dev'])} on dev and {score(w['test'])} on test**, and the job states: "
        f"\"{r['vs_seed']['sentence']}\"."
    )
    return wrap(text)


# doc (relative to the repository) -> figure -> how it reads there
DOCS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "README.md": {"quickstart": readme_quickstart},
    "docs/performance.md": {"quickstart": performance_quickstart},
}


# --- the generated regions ---------------------------------------------------------------------


def _bounds(text: str, name: str, doc: str) -> tuple[int, int]:
    """Where the region's body starts and ends (the line after the start marker, the end
    marker's line)."""
    start = start_marker(name)
    found = [m.start() for m in re.finditer(re.escape(start), text)]
    if len(found) != 1:
        raise FiguresError(f"{doc}: expected one line {start!r}, found {len(found)}")
    body = text.index("\n", found[0]) + 1
    end = text.find(END, body)
    if end < 0 or text.find("<!-- figures:", body, end) >= 0:
        raise FiguresError(f"{doc}: {start!r} has no {END!r} after it")
    return body, end


def region(text: str, name: str, doc: str = "the text") -> str:
    """The generated text between a figure's markers, without its last newline."""
    body, end = _bounds(text, name, doc)
    return text[body:end].rstrip("\n")


def rewrite(text: str, name: str, body: str, doc: str = "the text") -> str:
    """``text`` with the figure's region replaced by ``body``; the rest stays byte for byte."""
    start, end = _bounds(text, name, doc)
    return text[:start] + body + "\n" + text[end:]


def stale_docs(records: dict[str, dict[str, Any]], root: Path = ROOT) -> list[str]:
    """The docs whose figures differ from what their records give, each with the figure."""
    stale = []
    for doc, figures in DOCS.items():
        text = (root / doc).read_text()
        for name, render in figures.items():
            if region(text, name, doc) != render(records[name]):
                stale.append(f"{doc} ({name})")
    return stale


def write_docs(records: dict[str, dict[str, Any]], root: Path = ROOT) -> list[str]:
    """Rewrite every doc's figures from their records; the docs that changed."""
    changed = []
    for doc, figures in DOCS.items():
        path = root / doc
        before = path.read_text()
        text = before
        for name, render in figures.items():
            text = rewrite(text, name, render(records[name]), doc)
        if text != before:
            path.write_text(text)
            changed.append(doc)
    return changed


def summary(record: dict[str, Any]) -> str:
    r, w, s = record, record["winner"], record["seed_prompt"]
    return "\n".join([
        f"{r['command']}: {duration(r['wall_s'])} wall on {r['machine']['cores']} cores "
        f"({load(r)})",
        f"  best seed prompt  dev {score(s['dev'])}  test {score(s['test'])}",
        f"  winner            dev {score(w['dev'])}  test {score(w['test'])}  "
        f"generation {w['generation']}",
        f"  {r['vs_seed']['sentence']}",
        f"  {count(r['calls'])} paid calls, {count(r['cached'])} cache hits, "
        f"{count(r['tokens'])} tokens",
    ])


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Exits 1 when the docs' figures differ from the record (without ``--write``), 2 on an
    error; returns the records otherwise (``evo bench`` ignores what a benchmark returns)."""
    ap = argparse.ArgumentParser(prog="python -m bench.docs_figures",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true",
                    help="rewrite the docs' figures from the record")
    ap.add_argument("--check", action="store_true",
                    help="no run: exit 1 if the docs' figures differ from the stored record")
    ap.add_argument("--no-run", action="store_true", help="use the stored record, do not rerun")
    args = ap.parse_args(argv)
    if args.check and args.write:
        ap.error("--check reads the docs and --write rewrites them: give one")
    try:
        if args.check or args.no_run:
            records = {"quickstart": load_record("quickstart")}
        else:
            print(f"{COMMAND} on a fresh store (a few minutes) ...", flush=True)
            records = {"quickstart": run_quickstart()}
            path = save_record(records["quickstart"])
            print(summary(records["quickstart"]))
            print(f"wrote {path.relative_to(ROOT)}")
        if args.write:
            changed = write_docs(records)
            print(f"rewrote {', '.join(changed)}" if changed else "the docs were up to date")
        elif stale := stale_docs(records):
            print("figures that differ from the record (`python -m bench.docs_figures --no-run "
                  f"--write` rewrites them): {', '.join(stale)}")
            raise SystemExit(1)
        else:
            print("the docs' figures match the record")
    except FiguresError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    return records


if __name__ == "__main__":
    main()
