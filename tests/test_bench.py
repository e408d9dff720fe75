"""The benchmark scripts run end to end at tiny sizes and print sane figures."""

from __future__ import annotations

import asyncio
import math

import pytest

from bench import orchestration, store
from bench.common import percentile, table
from bench.orchestration import (
    call_rounds,
    fake_answer,
    ideal_times,
    union_length,
)


def test_percentile_and_table() -> None:
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([0.0, 10.0], 95) == pytest.approx(9.5)
    assert math.isnan(percentile([], 50))
    text = table(["name", "n"], [["a", 1_000], ["bb", 2.5]])
    assert "1,000" in text and "2.50" in text


def test_rounds_and_ideal() -> None:
    # two overlapping calls, then a chain of three that overlap one another, then one alone
    spans = [(0.0, 1.0, 1), (0.5, 1.2, 1), (2.0, 3.0, 1), (2.9, 4.0, 1), (3.5, 4.5, 1),
             (6.0, 7.0, 1)]
    assert call_rounds(spans) == [2, 3, 1]
    assert call_rounds([(0.0, 1.0, 10), (0.2, 0.9, 5), (1.5, 2.0, 7)]) == [15, 7]
    assert union_length([(0.0, 1.0), (0.5, 2.0), (3.0, 4.0)]) == pytest.approx(3.0)
    loose, by_round = ideal_times([2, 3, 1], 0.1, 2)
    assert loose == pytest.approx(max(6 * 0.1 / 2, 3 * 0.1))
    assert by_round == pytest.approx(0.1 + 0.2 + 0.1)  # 3 calls on 2 slots: two latencies


def test_fake_answers_look_like_the_client_expects() -> None:
    label = fake_answer({"messages": [{"role": "user", "content":
                        f"Name it{orchestration.MARK}Item 1: the coach spoke.\n\nAnswer..."}],
                         "logprobs": True, "top_logprobs": 20, "max_tokens": 1})
    top = label["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    assert {t["token"] for t in top} == set(orchestration.LABELS)
    meta = fake_answer({"messages": [{"role": "user", "content": "Merge ... Begin with <prompt>"}],
                        "stop": ["</prompt>"], "seed": 7})
    text = meta["choices"][0]["message"]["content"]
    assert text.startswith("<prompt>") and "</prompt>" not in text and len(text.split()) >= 4


def test_fake_endpoint_serves_fifo_on_c_slots_of_l_each() -> None:
    # five requests at once on two slots of 50 ms: three waves, each slot handed on the moment
    # it frees in the server's clock, however late its event loop gets to the next request
    body = {"messages": [{"role": "user", "content": f"Name it{orchestration.MARK}the coach"}],
            "logprobs": True, "top_logprobs": 4, "max_tokens": 1}

    async def serve() -> orchestration.FakeLLM:
        fake = orchestration.FakeLLM()
        fake.latency, fake.concurrency = 0.05, 2
        fake.reset()
        await asyncio.gather(*(fake.chat(body) for _ in range(5)))
        return fake

    fake = asyncio.run(serve())
    ends = sorted(end for _, end in fake.spans)
    first = min(arrived for arrived, _ in fake.spans)
    assert fake.requests == 5 and fake.max_busy == 2 and fake.max_in_flight == 5
    assert ends[0] == pytest.approx(first + 0.05, abs=0.01)
    assert ends[2] - ends[0] == pytest.approx(0.05, abs=1e-9)  # the second wave, on slot 1
    assert ends[4] - ends[0] == pytest.approx(0.10, abs=1e-9)  # the third


@pytest.mark.ray
def test_orchestration_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    out = orchestration.main([
        "--concurrency", "16", "--latency-ms", "20", "--dev", "20", "--test", "10",
        "--population", "4", "--generations", "1",
    ])
    printed = capsys.readouterr().out
    assert "Evo s" in printed and "Evo speed-up" in printed and "driver net ms" in printed
    (evo,), (base,) = out["evo"], out["baseline"]
    # at most: 1 paraphrase + 4 x 20 dev, 4 children + 4 x 20 dev, winner and seed x 10 test
    # (fewer when a child repeats a prompt, or the winner is the seed: repeats are not paid)
    for calls in (evo["calls"], base["calls"]):
        assert 100 < calls <= 1 + 80 + 4 + 80 + 20
    # meta, eval; meta, eval; final test (a meta round whose calls went out late, on a busy
    # machine, may not overlap and count twice)
    assert 5 <= evo["rounds"] <= 7
    assert 0 < evo["ratio"] <= evo["ratio_rounds"] <= 1.5
    assert evo["server_requests"] == evo["calls"] and evo["server_max_busy"] <= 16
    assert evo["driver_ms_per_call"] > 0 and evo["calls_per_s"] > 0
    assert 0 <= evo["between_s"] < evo["wall_s"]
    assert base["wall_s"] > 0 and base["cpu_ms_per_call"] > 0


def test_store_bench_runs(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = store.main([
        "--evaluations", "2000", "--population", "10", "--batches", "3",
        "--batch-candidates", "20", "--calls-per-candidate", "5", "--reps", "3",
        "--postgres-url", pg_url,
    ])
    printed = capsys.readouterr().out
    assert "rows/s" in printed and "p95 ms" in printed
    assert set(out) == {"sqlite", "postgres"}
    for res in out.values():
        writes = res["writes"]
        assert writes["rows"] == 3 * (20 + 20 + 5 * 20) + 2 * 2 * 20
        assert all(rate > 0 for rate in writes["rates"].values())
        assert 0 < writes["ratios"]["DB-API executemany"] < 10
        job = res["job"]
        assert job.evaluations == 2000 and job.generations == 50
        rows = {q["query"].split(":")[0]: q for q in res["reads"]}
        assert rows["top 20"]["rows"] == 20
        assert rows["population"]["rows"] == 10
        assert rows["ancestry, 49 generations deep"]["rows"] > 49
        assert rows["generation summaries"]["rows"] == 50
        assert rows["100 generation summaries"]["rows"] == 50  # a page of a 50-generation job
        for q in res["reads"]:
            assert 0 < q["p50_ms"] <= q["p95_ms"] < 60_000


def test_client_cpu_bench_compares_with_the_sdk(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import client_cpu

    figures = client_cpu.main(["--calls", "60", "--concurrency", "16"])
    assert figures["evo_ms"] > 0 and figures["sdk_ms"] > 0
    assert figures["ratio"] == pytest.approx(figures["sdk_ms"] / figures["evo_ms"])
    out = capsys.readouterr().out
    assert "Evo OpenAIClient" in out and "openai SDK" in out


@pytest.mark.model
def test_soft_prompt_bench_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import soft_prompt

    out = soft_prompt.main(["--examples", "3", "--rounds", "1", "--dim", "16"])
    printed = capsys.readouterr().out
    assert "soft / text" in printed and "failed calls: 0" in printed
    assert out["text_rate"] > 0 and out["soft_rate"] > 0
    assert out["ratio"] == pytest.approx(out["soft_rate"] / out["text_rate"])


def test_eot_bench_runs_each_strategy_at_its_cost(capsys: pytest.CaptureFixture[str]) -> None:
    from bench import eot

    assert eot.main(["--examples", "2", "--crossovers", "1", "--model", "scripted"]) == 0
    printed = capsys.readouterr().out
    assert "pool bred with 2 meta calls" in printed  # one crossover, one mutation of it
    assert "first 2 examples, scripted" in printed
    rows = {line[:18].strip(): line[18:].split() for line in printed.splitlines()
            if line.startswith(("direct ", "zero_shot_cot ", "eot ("))}
    # calls per example: one; reason and answer; restate and answer; choose, restate, answer
    assert {k: float(v[2]) for k, v in rows.items()} == {
        "direct": 1.0, "zero_shot_cot": 2.0, "eot (one prompt)": 2.0, "eot (pool)": 3.0}
    # the scripted answer names no prompt of the pool: the first is taken, and counted
    assert "eot_select:no_choice=2" in " ".join(rows["eot (pool)"])
