"""A planted API key reaches the endpoint and nothing else: not the store, logs, events, exports."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest
from servers import Reply, ScriptedOpenAIServer, chat_reply

from evo.app.export import FORMATS, render_export
from evo.app.settings import Settings
from storage import Store
from workers.runner import optimize

KEY = "sk-planted-SECRET-4242"
INLINE = "sk-inline-SECRET-9999"


@pytest.mark.parametrize("where", ["env", "inline"])
def test_planted_key_never_leaves_memory(tmp_path: Path, caplog, monkeypatch, where) -> None:
    key = KEY if where == "env" else INLINE
    monkeypatch.setenv("EVO_TEST_KEY", KEY)
    reply = Reply(body=chat_reply("Tell whether the review is positive or negative.",
                                  logprobs=[("positive", -0.2), ("negative", -1.9)]))
    events = []
    db = tmp_path / "secrets.db"
    with ScriptedOpenAIServer([reply]) as server:
        model = {"provider": "openai", "model": "scripted", "base_url": server.base_url,
                 "api_key_env": "EVO_TEST_KEY"}
        if where == "inline":
            model["api_key"] = INLINE
        spec = {"task": "sentiment", "models": {"task": model},
                "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1,
                              "dev_subset": 5},
                "evaluation": {"top_k": 1, "test": False}, "budget": {"calls": 600}}
        caplog.set_level(logging.DEBUG)
        result = optimize(spec, settings=Settings(database_url=f"sqlite:///{db}",
                                                  executor="inprocess"),
                          subscribe=[events.append])
        sent = [r.headers.get("authorization", "") for r in server.received]
    assert result.status == "completed"
    assert sent and all(h == f"Bearer {key}" for h in sent)  # the key was really used

    with Store(f"sqlite:///{db}") as store:
        job = store.get_job(result.job_id)
        exports = [render_export(store, job, fmt, 3) for fmt in FORMATS]
    dump = "\n".join(sqlite3.connect(db).iterdump())
    assert "SECRET" not in dump
    assert all("SECRET" not in text for text in exports)
    assert "SECRET" not in caplog.text
    assert all("SECRET" not in repr(e) for e in events)
    assert "SECRET" not in repr(result)
    assert "EVO_TEST_KEY" in str(job.spec)  # the variable's name is kept, its value is not
