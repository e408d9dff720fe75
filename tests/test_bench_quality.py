"""bench/quality.py: Evo's algorithms and the two baselines (random search, GEPA) on one task at
tiny sizes, on the bundled model and a real llama.cpp server; and the report it writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import quality
from bench.baselines import BudgetSpent, ServerModel, dev_score, random_search
from bench.common import start_llama_server
from bench.quality import Config, RunRecord, load
from bench.quality_report import summarize
from workers.llm_local import LocalLlamaClient


def tiny_sentiment(tmp_path: Path, n: dict[str, int]) -> dict:
    """The built-in sentiment task on a few of its own examples (fast on a 2-core machine)."""
    spec = quality.limited_task("sentiment", tmp_path, **n)
    return spec | {"name": "tiny"}


def test_summary_is_mean_spread_and_range(tmp_path: Path) -> None:
    records = [RunRecord("t", "opro", 100, s, "p", 0.5, test, 90, 1.0, "evo")
               for s, test in ((1, 0.6), (2, 0.8), (3, 0.7))]
    records.append(RunRecord("t", "random", 100, 1, "q", 0.4, 0.55, 100, 2.0, "baseline"))
    cells = {c.method: c for c in summarize(records)}
    assert cells["opro"].runs == 3
    assert cells["opro"].test_mean == pytest.approx(0.7)
    assert cells["opro"].test_sd == pytest.approx(0.1)
    assert (cells["opro"].test_min, cells["opro"].test_max) == (0.6, 0.8)
    assert cells["random"].test_sd == 0.0
    cfg = Config(out=tmp_path)
    lines: list[str] = []
    quality.report(cfg, records, {"t": [("seed a", 0.5, 0.6), ("seed b", 0.45, 0.65)]},
                   lines.append)
    md = (tmp_path / "quality.md").read_text()
    # "vs seed" is against the seed prompt with the best dev score (0.6 on test), not the best test
    assert "| t | opro | 100 | 3 | 0.700 | 0.100 | 0.600–0.800 | 0.100 | - | - |" in md
    assert "| t | random | 100 | 1 | 0.550 | 0.000 | 0.550–0.550 | -0.050 | - | - |" in md
    assert "seed b" in "\n".join(lines)
    assert (tmp_path / "quality.csv").read_text().count("\n") == 3
    assert (tmp_path / "quality.png").stat().st_size > 10_000


def test_cells_compare_winners_with_the_seed_example_by_example(tmp_path: Path) -> None:
    # 40 test examples: the seed gets the first 20 right; one run's winner gets all 40, the
    # other run handed the seed back
    seed = [1.0] * 20 + [0.0] * 20
    records = [RunRecord("t", "opro", 60, 1, "better", 0.9, 1.0, 90, 1.0, "evo"),
               RunRecord("t", "opro", 60, 2, "seed a", 0.8, 0.5, 90, 1.0, "evo"),
               RunRecord("t", "gps", 60, 1, "unscored", 0.8, 0.5, 90, 1.0, "evo")]
    outcomes = {("t", "seed a"): seed, ("t", "better"): [1.0] * 40}
    cells = {c.method: c for c in summarize(records, outcomes, {"t": "seed a"})}
    opro = cells["opro"]
    # per example the runs' mean difference: 0 on the first 20, 0.5 on the last 20
    assert opro.diff == pytest.approx(25.0)
    assert 10.0 < opro.low < 25.0 < opro.high < 40.0
    assert opro.shown == 1  # only the first run's winner is better (McNemar 20 to 0)
    # a run without per-example scores leaves its cell without a comparison
    assert cells["gps"].diff is None and cells["gps"].shown is None
    cfg = Config(out=tmp_path)
    quality.report(cfg, records, {"t": [("seed a", 0.8, 0.5), ("seed b", 0.4, 0.6)]},
                   lambda _: None, outcomes)
    md = (tmp_path / "quality.md").read_text()
    row = next(line for line in md.splitlines() if "| opro |" in line)
    assert f"[{opro.low:+.1f}, {opro.high:+.1f}] | 1/2 |" in row


def test_scorer_keeps_each_examples_score(tmp_path: Path) -> None:
    task = load(tiny_sentiment(tmp_path, {"train": 4, "dev": 4, "test": 5}))
    memo = tmp_path / "scores.jsonl"
    prompt = task.seed_prompts[1]
    # a line from before per-example scores: its mean is reused, the examples scored again
    memo.write_text(json.dumps({"task": "tiny", "split": "test", "prompt": prompt,
                                "score": 0.123}) + "\n")
    scorer = quality.TestScorer(None, memo)
    try:
        assert scorer.score("tiny", task, prompt) == 0.123
        scores = scorer.outcomes("tiny", task, prompt)
    finally:
        scorer.close()
    assert len(scores) == 5 and set(scores) <= {0.0, 1.0}
    rows = [json.loads(line) for line in memo.read_text().splitlines()]
    assert rows[-1]["scores"] == scores
    assert rows[-1]["score"] == pytest.approx(sum(scores) / 5)
    # a new scorer on the same file reads them back without scoring
    again = quality.TestScorer(None, memo)
    try:
        assert again.has_outcomes("tiny", prompt)
        assert again.outcomes("tiny", task, prompt) == scores
    finally:
        again.close()
    assert len(memo.read_text().splitlines()) == 2


def test_server_scoring_matches_the_bundled_runtime(tmp_path: Path) -> None:
    task = load(tiny_sentiment(tmp_path, {"train": 4, "dev": 8, "test": 4}))
    local = LocalLlamaClient(threads=1)
    try:
        with start_llama_server(local.model_path, threads=1) as url:
            server = ServerModel(url, local.format_prompt)
            prompt = task.seed_prompts[1]
            for example in task.split("dev"):
                request = task.request(prompt, example, label_scoring=True)
                assert server.call(request).text == local.call_sync(request).text
            assert server.calls == 8
            # generation through the server stops at the request's stop sequence
            text = server.chat("Name a colour.", temperature=0.0, max_tokens=20, seed=1,
                               prefill="<prompt>", stop=("</prompt>",))
            assert "</prompt>" not in text and text.strip()
            server.limit = server.calls
            with pytest.raises(BudgetSpent):
                dev_score(server, task, prompt, task.split("dev")[:1])
            server.limit = None
            # random search never spends more than its search budget
            result = random_search(server, task, search_calls=20, dev_sample=4, seed=3)
            assert result.search_calls <= 20
            # the final: the best and every seed on the 8 dev examples (the best may be a seed)
            seeds = len(task.seed_prompts)
            assert result.calls - result.search_calls in (8 * seeds, 8 * (seeds + 1))
            assert result.candidates >= 3
            server.close()
    finally:
        local.close()


@pytest.mark.timeout(600)
def test_quality_bench_end_to_end(tmp_path: Path) -> None:
    task = tiny_sentiment(tmp_path, {"train": 6, "dev": 6, "test": 6})
    cfg = Config(tasks=[task], algorithms=["evoprompt-ga"], baselines=["random", "gepa"],
                 budgets=[30], seeds=[1], dev_subset=3, out=tmp_path / "out", server_threads=1)
    lines: list[str] = []
    records = quality.run(cfg, lines.append)
    by_method = {r.method: r for r in records}
    assert set(by_method) == {"evoprompt-ga", "random", "gepa"}
    seeds = load(task).seed_prompts
    for r in records:
        assert 0.0 <= r.test <= 1.0 and r.winner.strip()
        # the search budget plus the final phase (finalist and every seed on the 6 dev examples)
        assert 0 < r.calls <= 30 + (1 + len(seeds)) * 6, r
    for name in ("random", "gepa"):
        assert by_method[name].extra["search_calls"] <= 30
    assert by_method["gepa"].extra["candidates"] >= 1
    # the same winner text is scored once on test: seeds are scored by the same scorer
    for r in records:
        if r.winner in seeds:
            assert f"{r.test:.3f}" in "\n".join(lines)
    out = tmp_path / "out"
    assert len((out / "runs.jsonl").read_text().splitlines()) == 3
    assert (out / "quality.png").exists()
    # a rerun with the same output folder finds every run done and runs nothing again
    again: list[str] = []
    assert {r.key() for r in quality.run(cfg, again.append)} == {r.key() for r in records}
    assert not any(line.endswith("...") for line in again)
    assert not any("example by example" in line for line in again)
    # and every prompt's score was kept: the continued run scores nothing again
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    assert len(rows) >= 3
    # each test score comes with its examples' scores, and every cell with its comparison
    for row in rows:
        if row["split"] == "test":
            assert len(row["scores"]) == 6
            assert row["score"] == pytest.approx(sum(row["scores"]) / 6)
    for row in (out / "quality.md").read_text().splitlines()[2:]:
        assert "| - | - |" not in row and "/1 |" in row


def test_too_small_a_budget_is_refused(tmp_path: Path) -> None:
    task = tiny_sentiment(tmp_path, {"train": 4, "dev": 6, "test": 4})
    cfg = Config(tasks=[task], algorithms=[], baselines=["gepa"], budgets=[10], dev_subset=5,
                 out=tmp_path / "out")
    with pytest.raises(SystemExit, match="budget 10 is too small"):
        quality.run(cfg, lambda _: None)


def test_report_only_reads_an_output_folder(tmp_path: Path, capsys) -> None:
    from dataclasses import asdict

    records = [RunRecord("topic", m, 60, 1, "p", 0.7, t, 90, 1.0, "evo")
               for m, t in (("opro", 0.78), ("gps", 0.58))]
    (tmp_path / "runs.jsonl").write_text("".join(json.dumps(asdict(r)) + "\n" for r in records))
    scores = [{"task": "topic", "split": s, "prompt": "seed", "score": v}
              for s, v in (("dev", 0.64), ("test", 0.58))]
    (tmp_path / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scores))
    assert quality.main(["--report-only", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "opro" in out and "0.200" in out  # 0.78 against the seed's 0.58
    assert (tmp_path / "quality.png").exists()
    with pytest.raises(SystemExit, match="no runs"):
        quality.main(["--report-only", "--out", str(tmp_path / "empty")])
    with pytest.raises(SystemExit, match="unknown algorithm or task: nope"):
        quality.main(["--algorithms", "nope", "--out", str(tmp_path / "x")])
