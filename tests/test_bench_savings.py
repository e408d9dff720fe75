"""bench/savings.py at a tiny size on the scripted model: the figures it prints hold."""

from __future__ import annotations

import pytest

from bench import savings


def test_savings_figures(redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv("EVO_EXECUTOR", "inprocess")
    out = savings.main(["--model", "scripted", "--population", "3", "--generations", "1",
                        "--crash-after", "2", "--redis", redis_url])
    fresh, repeated, resumed, racing = (out[m] for m in ("fresh", "repeated", "resumed",
                                                         "racing"))
    assert fresh["paid"] > 100 and fresh["test"] is not None
    assert repeated["paid"] == 0 and repeated["cached"] >= fresh["paid"]
    assert 0 < resumed["paid_before_crash"] < fresh["paid"]
    assert resumed["paid"] == fresh["paid"]  # nothing paid twice
    for other in (repeated, resumed):
        assert (other["dev"], other["test"]) == (fresh["dev"], fresh["test"])
    assert racing["paid"] <= fresh["paid"] and racing["status"] == "completed"
    assert "calls saved" in capsys.readouterr().out
