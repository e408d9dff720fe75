"""What the read-side commands print, at 80 and at 140 columns: `evo algorithms`, `evo jobs`,
`evo show`, `evo export`, the leaderboard a run ends with, and the live progress of a job.

Nothing may be cut to an ellipsis, and each prompt must be there in full (read back across the
lines it wraps over)."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from evo.app import cli_common
from evo.app.cli import app
from evo.app.export import export_data
from evo.app.export_md import origin
from evo.app.progress import ProgressDisplay
from evo.app.show import leaderboard_table, show_job
from evo.app.task_format import task_format
from evo.events import (
    CallsMade,
    CandidateScored,
    GenerationDone,
    JobEnded,
    JobStarted,
    PhaseChanged,
    SearchWarning,
)
from storage import Store
from tests.helpers import scripted_job

WIDTHS = (80, 140)
BOX = re.compile(r"[│┃|]")

# a custom task: a built-in adapted with its own template, labels and answer words
CUSTOM_TASK = {"builtin": "sentiment", "name": "toy",
               "template": "{prompt}\n\nInput: {input}\nAnswer:",
               "labels": ["yes", "no"], "verbalizers": {"yes": "Yes", "no": "No"}}
EVOLVED = ("Read each input with care, weigh what it says against both answers, and reply with "
           "yes or no only, sample {n}. q=0.7")
WORSE = "Say something, sample {n}. q=0.1"


def flat(text: str) -> str:
    """The printed text with box lines and wrapping undone: one space between words."""
    return " ".join(BOX.sub(" ", text).split())


def column(text: str, index: int, sep: str = "│") -> str:
    """The cells of one column of a boxed table, top to bottom, joined into one line."""
    cells = [line.split(sep)[index].strip() for line in text.splitlines()
             if line.count(sep) >= 2]
    return " ".join(" ".join(cells).split())


def render(renderable: Any, width: int) -> str:
    console = Console(file=io.StringIO(), width=width)
    console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]


def assert_whole(out: str, width: int) -> None:
    assert "…" not in out and "..." not in out, out
    assert max(len(line) for line in out.splitlines()) <= width, out


# --- jobs to print: one whose winner is evolved, one whose winner is a seed ---------------------


@dataclasses.dataclass
class Jobs:
    db: str
    evolved: Any  # the JobResult of each
    seeded: Any


def run_job(store: Store, meta: str, task: Any, name: str) -> Any:
    spec = {"name": name, "task": task, "evaluation": {"top_k": 2},
            "algorithm": {"name": "evoprompt-ga", "population": 2, "generations": 1}}
    driver, _, _ = scripted_job(spec, lambda r: meta.format(n=r.sample) + "</prompt>", store)
    return asyncio.run(driver.run())


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Jobs:
    db = f"sqlite:///{tmp_path_factory.mktemp('out') / 'evo.db'}"
    with Store(db) as store:
        evolved = run_job(store, EVOLVED, CUSTOM_TASK, "evolved prompts")
        seeded = run_job(store, WORSE, "toy", "seed wins")
        store.write_batch(seeded.job_id, events=[SearchWarning(
            seeded.job_id, "no_spread", "every candidate scored 0.400 on dev").payload()])
    return Jobs(db, evolved, seeded)


@pytest.fixture
def evo(monkeypatch: pytest.MonkeyPatch, jobs: Jobs) -> Callable[..., str]:
    """Runs `evo ARGS` at a terminal width (COLUMNS) on the jobs' store: its stdout."""
    # the shared console read COLUMNS when it was made; let it read it at each command instead
    monkeypatch.setattr(cli_common.console, "_width", None)

    def run(width: int, *args: str) -> str:
        result = CliRunner().invoke(app, list(args),
                                    env={"COLUMNS": str(width), "EVO_DATABASE_URL": jobs.db})
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


# --- evo algorithms -----------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_algorithms_show_every_default_made_by_a_factory(evo: Callable[..., str],
                                                         width: int) -> None:
    out = evo(width, "algorithms")
    assert_whole(out, width)
    assert "PydanticUndefined" not in out
    params = column(out, -2)
    for shown in ("generators=[back_translation, cloze, continuation]",
                  "languages=[French, German]", "edits=[delete, swap, paraphrase, add]",
                  "strategies=[e1, e2, m1, m2, m3]", "dev_subset=null", "population=10"):
        assert shown in params, shown


# --- evo jobs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_jobs_fit_the_terminal_without_cutting_a_word(evo: Callable[..., str], jobs: Jobs,
                                                      width: int) -> None:
    out = evo(width, "jobs")
    assert_whole(out, width)
    rows = [line for line in out.splitlines() if jobs.evolved.job_id[:8] in line
            or jobs.seeded.job_id[:8] in line]
    assert len(rows) == 2
    for row in rows:  # every column of a job on its line
        for word in ("toy", "evoprompt-ga", "completed"):
            assert word in row, row
    if width == 140:
        assert "calls" in out and re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", rows[0])
        assert any("evolved prompts" in r for r in rows) and any("seed wins" in r for r in rows)
    else:  # the call count gives way; the names are there whole, though folded
        assert "calls" not in out
        names = flat(out)
        assert "evolved" in names and "prompts" in names and "seed wins" in names


def test_no_jobs_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_common.console, "_width", None)
    db = f"sqlite:///{tmp_path / 'empty.db'}"
    Store(db).close()
    result = CliRunner().invoke(app, ["jobs", "--db", db], env={"COLUMNS": "80"})
    assert result.exit_code == 0 and result.stdout.startswith("no jobs in ")


# --- evo show -----------------------------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_show_names_both_scores_of_a_generation_and_every_prompt_whole(
    evo: Callable[..., str], jobs: Jobs, width: int
) -> None:
    out = evo(width, "show", jobs.evolved.job_id[:8])
    assert_whole(out, width)
    assert "[completed]" in out  # the status, not swallowed as markup
    generations = out.split("Best on full dev")[0]
    headers = [column(generations, i, "┃") for i in range(1, 8)]
    assert "population best" in headers and "best new child" in headers
    assert "new best" not in out
    for entry in jobs.evolved.leaderboard:
        assert " ".join(entry.candidate.text.split()) in flat(out)
    assert "warning" not in out.lower()
    if width == 140:  # a row per prompt: its scores and origin on the line the prompt starts
        best = jobs.evolved.leaderboard[0]
        line = next(x for x in out.splitlines() if best.candidate.text[:30] in x)
        assert f"{best.dev:.3f}" in line and best.candidate.operator in line


@pytest.mark.parametrize("width", WIDTHS)
def test_show_lists_the_warnings_a_job_gave(evo: Callable[..., str], jobs: Jobs,
                                            width: int) -> None:
    out = evo(width, "show", jobs.seeded.job_id[:8])
    assert flat(out).count("warning: every candidate scored 0.400 on dev") == 1


def test_show_says_how_labels_were_read_when_the_job_counted_it(jobs: Jobs) -> None:
    with Store(jobs.db) as store:
        job = store.get_job(jobs.evolved.job_id)
        counted = dataclasses.replace(
            job, stats={**job.stats, "label_scoring": {"logprobs": 1990, "parsed": 0}})
        mixed = dataclasses.replace(
            job, stats={**job.stats, "label_scoring": {"logprobs": 1500, "parsed": 490}})
        uncounted = dataclasses.replace(
            job, stats={k: v for k, v in job.stats.items() if k != "label_scoring"})
        outs = {}
        for name, record in (("counted", counted), ("mixed", mixed), ("none", uncounted)):
            console = Console(file=io.StringIO(), width=140)
            show_job(console, store, record)
            outs[name] = console.file.getvalue()
    assert "labels read from log-probabilities for 1,990 of 1,990 answers" in outs["counted"]
    assert ("labels read from log-probabilities for 1,500 of 1,990 answers, parsed from the "
            "generated text for 490") in outs["mixed"]
    assert "log-probabilities" not in outs["none"] and "parsed" not in outs["none"]


# --- the leaderboard a run ends with ------------------------------------------------------------


@pytest.mark.parametrize("width", WIDTHS)
def test_the_leaderboard_wraps_prompts_and_cuts_nothing(jobs: Jobs, width: int) -> None:
    result = jobs.evolved
    out = render(leaderboard_table(result), width)
    assert_whole(out, width)
    text = flat(out)
    for entry in [*result.leaderboard, result.seed]:
        assert " ".join(entry.candidate.text.split()) in text
    assert result.stats["vs_seed"]["sentence"] in text
    best = result.leaderboard[0]
    line = next(x for x in out.splitlines() if best.candidate.text[:20] in x
                or best.candidate.operator in x)
    # the scores of a prompt on one line: a row of the table, or the head of its block
    assert f"{best.dev:.3f}" in line and f"{best.test:.3f}" in line
    assert best.candidate.operator in line
    if width == 140:
        assert best.candidate.text[:20] in line  # beside its scores


# --- evo export ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "yaml", "md", "txt"])
def test_export_output_ends_with_a_newline(evo: Callable[..., str], jobs: Jobs,
                                           fmt: str) -> None:
    for width in WIDTHS:
        out = evo(width, "export", jobs.evolved.job_id[:8], "--format", fmt)
        assert out.endswith("\n") and not out.endswith("\n\n\n")


def test_markdown_export_names_model_template_labels_and_lineage(evo: Callable[..., str],
                                                                 jobs: Jobs) -> None:
    md = evo(80, "export", jobs.evolved.job_id[:8], "--format", "md", "--top", "2")
    best = jobs.evolved.leaderboard[0].candidate
    assert best.operator == "ga_crossover_mutation" and best.text in md
    assert ("made by `ga_crossover_mutation` in generation 1 from 2 ancestors "
            "(both seed prompts)") in md
    assert "1 ancestors" not in md and "seed prompt**" not in md
    # the spec names no model: the bundled one
    assert ("- model (answers the task and writes new prompts): local, the bundled "
            "SmolLM2-135M-Instruct") in md
    assert "```text\n{prompt}\n\nInput: {input}\nAnswer:\n```" in md
    assert "- yes: `Yes`" in md and "- no: `No`" in md


def test_markdown_export_says_plainly_that_a_seed_won(evo: Callable[..., str],
                                                      jobs: Jobs) -> None:
    md = evo(80, "export", jobs.seeded.job_id[:8], "--format", "md")
    assert jobs.seeded.leaderboard[0].candidate.operator == "seed"
    assert "**The winner is a seed prompt**: the search found no prompt better" in md
    assert "a seed prompt of the task (generation 0)" in md
    # the toy task is neither built in nor defined in the spec: nothing to say of its template
    assert "Using the prompt" not in md


def test_json_and_yaml_export_carry_the_template_and_labels(evo: Callable[..., str],
                                                            jobs: Jobs) -> None:
    ref = jobs.evolved.job_id[:8]
    data = json.loads(evo(140, "export", ref, "--format", "json"))
    assert data["task_format"] == {
        "kind": "prompt", "template": CUSTOM_TASK["template"], "system": None,
        "labels": ["yes", "no"], "verbalizers": {"yes": "Yes", "no": "No"}}
    assert yaml.safe_load(evo(140, "export", ref, "--format", "yaml")) == data
    best = data["prompts"][0]
    assert best["seed_prompt"] is False
    assert best["lineage"]["ancestor_operators"] == {"seed": 2}
    assert best["lineage"]["ancestors"] == 2  # the keys the API and dashboard read, unchanged
    assert set(data["model"]["task"]) <= {"provider", "model", "base_url"}


def test_a_builtin_task_and_a_program_problem_say_how_their_prompts_are_used() -> None:
    topic = task_format("topic", {})
    assert topic is not None and topic["template"] == "{prompt}\n\nNews: {input}"
    assert topic["verbalizers"]["sports"] == "Sports" and topic["labels"][0] == "sports"
    assert task_format("tsp", {}) == {"kind": "program", "entry": "select_next_node"}
    assert task_format("no-such-task", {}) is None
    # a spec that lets the data name the labels: the job's label counts name them
    inferred = task_format({"data": "x.jsonl", "metric": "label_accuracy"},
                           {"label_bias": {"true": {"spam": 3, "ham": 5}}})
    assert inferred is not None and inferred["labels"] == ["spam", "ham"]
    assert inferred["template"] == "{prompt}\n\n{input}"
    assert inferred["verbalizers"] == {"spam": "spam", "ham": "ham"}


def test_lineage_counts_are_pluralized_and_name_only_the_ancestors_operators() -> None:
    def line(n: int, by: dict[str, int], op: str = "paraphrase") -> str:
        return origin({"seed_prompt": False, "operator": op, "generation": 2,
                       "lineage": {"ancestors": n, "ancestor_operators": by}})

    assert line(1, {"seed": 1}) == ("made by `paraphrase` in generation 2 from 1 ancestor "
                                    "(a seed prompt)")
    assert line(3, {"seed": 3}).endswith("from 3 ancestors (all 3 seed prompts)")
    assert line(5, {"seed": 2, "ga_crossover_mutation": 3}).endswith(
        "from 5 ancestors (2 seed prompts, 3 made by `ga_crossover_mutation`)")


def test_export_data_never_holds_a_key(jobs: Jobs) -> None:
    with Store(jobs.db) as store:
        job = store.get_job(jobs.evolved.job_id)
        models = {"task": {"provider": "openai", "model": "m", "base_url": "http://h/v1",
                           "api_key_env": "MY_KEY", "api_key": "sk-secret"}}
        data = export_data(store, dataclasses.replace(job, spec={**job.spec, "models": models}), 1)
    assert data["model"] == {"task": {"provider": "openai", "model": "m",
                                      "base_url": "http://h/v1"}}


# --- the live progress --------------------------------------------------------------------------


def events_of_a_job(job: str = "j1") -> list[Any]:
    """A job's events as the driver publishes them: two generations, a warning given twice, the
    final scoring of three finalists on full dev and two on test."""
    out: list[Any] = [JobStarted(job, "evoprompt-ga", "topic", 1915, 900)]
    for g, calls in ((0, 300), (1, 1010)):
        out += [CallsMade(job, calls, calls * 60, 3),
                CandidateScored(job, f"c{g}", g, "seed", "dev", 0.5 + g / 10, 10),
                GenerationDone(job, g, 0.5 + g / 10, 0.45, 4, calls, calls * 60)]
    out += [SearchWarning(job, "no_spread", "every candidate scored the same"),
            SearchWarning(job, "no_spread", "every candidate scored the same"),
            PhaseChanged(job, "final")]
    for i, calls in enumerate((1110, 1210, 1310, 1410, 1510, 1610, 1710, 1810)):
        out.append(CallsMade(job, calls, calls * 60, 0))
        if i < 3:
            out.append(CandidateScored(job, f"f{i}", 1, "seed", "dev", 0.6 - i / 100, 100))
    out += [CandidateScored(job, "f0", 1, "seed", "test", 0.58, 200),
            CandidateScored(job, "f1", 1, "seed", "test", 0.55, 200),
            JobEnded(job, "completed")]
    return out


def test_off_a_terminal_each_step_is_one_whole_line_through_the_final_scoring() -> None:
    console = Console(file=io.StringIO(), width=80)  # a file: rich would wrap at 80 columns
    assert not console.is_terminal
    with ProgressDisplay(console) as display:
        for event in events_of_a_job():
            display.on_event(event)
    lines = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    assert all(line.startswith(("search ", "final ", "warning: ")) for line in lines), lines
    assert any(len(line) > 80 for line in lines)  # longer than the width, still one line
    assert [line for line in lines if line.startswith("warning")] == [
        "warning: every candidate scored the same"]
    search = [line for line in lines if line.startswith("search")]
    assert len(search) == 2 and "calls 1,010/1,015" in search[1] and "best 0.600" in search[1]
    final = [line for line in lines if line.startswith("final")]
    # the start, one per prompt scored, one per quarter of the reserve spent: a handful
    assert 5 + 1 <= len(final) <= 5 + 1 + 4, final
    assert final[0].startswith("final    scoring finalists: calls 1,010/1,915")
    assert "3 on full dev, 2 on test" in final[-1] and "best dev 0.600" in final[-1]


def test_a_program_that_failed_in_the_sandbox_is_not_the_best_score() -> None:
    console = Console(file=io.StringIO(), width=120)
    with ProgressDisplay(console) as display:
        for event in [JobStarted("j", "funsearch", "tsp", 100, 10),
                      CandidateScored("j", "s", 0, "seed", "train", -1.487, 3),
                      CandidateScored("j", "c", 1, "best_shot", "train", 0.0, 0),  # failed
                      GenerationDone("j", 1, -1.487, -1.487, 1, 4, 400)]:
            display.on_event(event)
    assert "best -1.487" in console.file.getvalue()  # type: ignore[attr-defined]


def test_in_a_terminal_a_warning_is_printed_once_above_the_live_line() -> None:
    console = Console(file=io.StringIO(), width=80, force_terminal=True)
    display = ProgressDisplay(console)
    assert display.enabled and not display.plain
    with display:
        for event in events_of_a_job():
            display.on_event(event)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert out.count("warning: every candidate scored the same") == 1
    # the live line is drawn again below it, to the end
    assert out.index("warning:") < out.rindex("elapsed")


def test_quiet_prints_nothing() -> None:
    console = Console(file=io.StringIO(), width=80)
    with ProgressDisplay(console, enabled=False) as display:
        for event in events_of_a_job():
            display.on_event(event)
    assert console.file.getvalue() == ""  # type: ignore[attr-defined]
