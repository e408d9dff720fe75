"""Store behaviour, run against SQLite and PostgreSQL alike.

PostgreSQL: ``EVO_TEST_POSTGRES_URL`` (default: the local ``test`` database). Each test gets a
schema of its own, dropped afterwards. An unreachable server fails those tests, unless
``EVO_TEST_SKIP_POSTGRES=1`` says to skip them.
"""

from __future__ import annotations

import dataclasses
import os
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, insert, inspect, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from evo.candidate import Candidate, Score
from storage import (
    EvaluationRecord,
    GenerationSummary,
    JobUpdate,
    LineageEdge,
    LLMCallRecord,
    Store,
    queries,
    summaries,
)
from storage.db import alembic_config
from storage.jobs import SHOWN_MATCHES, AmbiguousJobId
from storage.models import Base, CandidateRow, EvaluationRow, LineageRow, LLMCallRow

TABLES = {
    "jobs",
    "candidates",
    "lineage",
    "evaluations",
    "example_results",
    "llm_calls",
    "checkpoints",
    "events",
    "responses",
    "generation_summaries",
}


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{os.path.join(tmp_path, 'evo.db')}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    with Store(db_url) as s:
        yield s


@pytest.fixture
def engine(store: Store, db_url: str) -> Iterator[Engine]:
    """A separate engine on the store's (migrated) database, for inspecting the schema."""
    eng = create_engine(db_url)
    yield eng
    eng.dispose()


def new_job(store: Store, job_id: str = "job0000001", **kw: object) -> str:
    fields: dict = {"name": "demo", "task": "sst2", "algorithm": "ga", "spec": {"p": 1}, "seed": 7}
    store.create_job(job_id=job_id, **(fields | kw))
    return job_id


def cand(cid: str, gen: int, *parents: str, op: str = "mutate", **meta: object) -> Candidate:
    return Candidate(
        id=cid, text=f"prompt {cid}", generation=gen, operator=op, parents=parents, meta=meta
    )


def dev(cid: str, value: float, subset: str | None = None, n: int = 10) -> Score:
    return Score(candidate_id=cid, split="dev", value=value, n=n, subset=subset)


# --- schema ------------------------------------------------------------------------------------


def test_migrations_create_all_tables(engine: Engine) -> None:
    names = set(inspect(engine).get_table_names())
    assert TABLES | {"alembic_version"} <= names


def test_models_match_migrations(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_no_column_holds_keys_or_secrets(engine: Engine) -> None:
    insp = inspect(engine)
    columns = [f"{table}.{col['name']}" for table in TABLES for col in insp.get_columns(table)]
    assert len(columns) > 40
    assert [c for c in columns if "key" in c.lower() or "secret" in c.lower()] == []


def test_upgrade_twice_is_harmless(store: Store, db_url: str) -> None:
    new_job(store)
    with Store(db_url) as again:
        again.upgrade()
        assert again.get_job("job0000001") is not None


def test_downgrade_to_base_and_back(store: Store, engine: Engine) -> None:
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    assert not TABLES & set(inspect(engine).get_table_names())
    store.upgrade()
    assert set(inspect(engine).get_table_names()) >= TABLES


def test_url_is_shown_without_password() -> None:
    s = Store("postgresql://evo:hunter2@db.example:5432/evo", upgrade=False)
    assert "hunter2" not in s.url and "hunter2" not in repr(s)
    assert s.url.startswith("postgresql+psycopg://evo:")
    s.close()


# --- jobs --------------------------------------------------------------------------------------


def test_create_and_update_job(store: Store) -> None:
    job = store.create_job(
        job_id="j1", name="n", task="t", algorithm="opro", spec={"a": [1]}, seed=3, owner="team"
    )
    assert (job.status, job.stats, job.owner, job.spec) == ("queued", {}, "team", {"a": [1]})
    assert job.created_at.tzinfo is not None
    started = datetime(2025, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2)))
    store.set_status("j1", "running", started_at=started)
    store.write_batch("j1", job=JobUpdate(stats={"calls": 3}, best_candidate_id=None))
    got = store.get_job("j1")
    assert got is not None
    assert got.status == "running" and got.stats == {"calls": 3}
    assert got.started_at == started and got.started_at.utcoffset() == timedelta(0)
    assert got.reason is None and got.ended_at is None  # KEEP: left as they were
    store.set_status("j1", "failed", reason="broke", ended_at=started)
    got = store.get_job("j1")
    assert (got.status, got.reason, got.started_at, got.ended_at) == (  # type: ignore[union-attr]
        "failed", "broke", started, started)
    with pytest.raises(ValueError, match="status"):
        store.set_status("j1", "exploded")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="status"):
        store.write_batch("j1", job=JobUpdate(status="exploded"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name"):  # the older way to name fields: a mapping
        store.write_batch("j1", job={"name": "renamed"})
    with pytest.raises(LookupError):
        store.set_status("nope", "failed")
    store.write_batch("j1", job={"status": "completed", "reason": None})
    got = store.get_job("j1")
    assert (got.status, got.reason, got.stats) == ("completed", None, {"calls": 3})  # type: ignore[union-attr]


def test_get_job_by_unique_prefix(store: Store) -> None:
    for job_id in ("0a1b2c3d4e", "0a1b2c9999", "ffee001122", "ab_d000001"):
        new_job(store, job_id)
    assert store.get_job("ffee0").id == "ffee001122"  # type: ignore[union-attr]
    assert store.get_job("ffee").id == "ffee001122"  # type: ignore[union-attr]
    assert store.get_job("0a1b2c3").id == "0a1b2c3d4e"  # type: ignore[union-attr]
    assert store.get_job("ffe") is None  # shorter than 4 characters: whole ids only
    assert store.get_job("abcdef") is None
    # "_" and "%" are taken as they are, not as LIKE's wildcards
    assert store.get_job("ab_d").id == "ab_d000001"  # type: ignore[union-attr]
    assert store.get_job("a%") is None and store.get_job("ab%d") is None
    with pytest.raises(AmbiguousJobId, match="ambiguous") as err:
        store.get_job("0a1b2c")
    assert err.value.matches == ["0a1b2c3d4e", "0a1b2c9999"] and err.value.total == 2
    assert "0a1b2c3d4e, 0a1b2c9999)" in str(err.value)


def test_an_ambiguous_prefix_lists_a_few_of_its_jobs(store: Store) -> None:
    ids = [f"cafe{i:06d}" for i in range(8)]
    for job_id in ids:
        new_job(store, job_id)
    with pytest.raises(AmbiguousJobId) as err:
        store.get_job("cafe")
    assert err.value.matches == ids[:SHOWN_MATCHES] and err.value.total == 8
    assert str(err.value) == (
        "job id prefix 'cafe' is ambiguous: it matches 8 jobs (cafe000000, cafe000001, "
        "cafe000002, cafe000003, cafe000004, and 3 more); give more of the id")
    assert store.get_job("cafe000007").id == "cafe000007"  # type: ignore[union-attr]


def test_a_missing_job_says_how_short_an_id_may_be(store: Store) -> None:
    from workers.jobs import JobNotFound, get

    new_job(store, "beef000001")
    new_job(store, "beef000002")
    assert get(store, "beef000002").id == "beef000002"
    with pytest.raises(JobNotFound, match=r"^no job 'bee' \(a job id may be shortened to a "
                                          r"prefix of at least 4 characters\)$"):
        get(store, "bee")
    with pytest.raises(JobNotFound, match=r"^no job 'dead'$"):
        get(store, "dead")
    with pytest.raises(JobNotFound, match=r"matches 2 jobs \(beef000001, beef000002\)"):
        get(store, "beef")


def test_list_jobs_newest_first_with_filter(store: Store) -> None:
    for i in range(5):
        new_job(store, f"job{i}")
    store.set_status("job1", "running")
    store.set_status("job3", "running")
    assert [j.id for j in store.list_jobs()] == ["job4", "job3", "job2", "job1", "job0"]
    assert [j.id for j in store.list_jobs(status="running")] == ["job3", "job1"]
    assert [j.id for j in store.list_jobs(limit=2, offset=1)] == ["job3", "job2"]
    assert store.list_jobs(status="failed") == []


# --- batches -----------------------------------------------------------------------------------


def test_write_batch_round_trip(store: Store) -> None:
    job = new_job(store)
    gen0 = [cand("a", 0, op="init", thought="seed"), cand("b", 0, op="init")]
    gen1 = [cand("c", 1, "b", "a", op="crossover"), cand("d", 1, "a")]
    call = LLMCallRecord(job, "c", "generate", "m1", 120, 30, 0.8, False, None)
    store.write_batch(job, candidates=gen0, evaluations=[dev("a", 0.5), dev("b", 0.25)])
    store.write_batch(
        job,
        candidates=gen1,
        evaluations=[EvaluationRecord("c", "dev", 0.75, 10, 1, "s1", 1)],
        llm_calls=[call],
        job={"status": "running", "best_candidate_id": "c"},
    )
    assert store.candidates(job) == gen0 + gen1
    assert store.candidates(job, generation=1) == gen1
    assert store.candidate("a").meta == {"thought": "seed"}  # type: ignore[union-attr]
    assert store.candidate("c").parents == ("b", "a")  # type: ignore[union-attr]
    assert store.candidate("zz") is None
    assert store.lineage(job) == [
        LineageEdge("b", "c", "crossover", 0),
        LineageEdge("a", "c", "crossover", 1),
        LineageEdge("a", "d", "mutate", 0),
    ]
    evals = store.evaluations(job)
    assert [(e.candidate_id, e.value, e.subset, e.generation) for e in evals] == [
        ("a", 0.5, None, None),
        ("b", 0.25, None, None),
        ("c", 0.75, "s1", 1),
    ]
    assert all(e.created_at is not None and e.created_at.tzinfo for e in evals)
    assert store.evaluations(job, split="test") == []
    assert store.llm_calls(job) == [call]
    job_row = store.get_job(job)
    assert job_row is not None and (job_row.status, job_row.best_candidate_id) == ("running", "c")


def test_evaluations_of_many_candidates_in_one_read(store: Store) -> None:
    job = new_job(store)
    store.write_batch(job, candidates=[cand("a", 0), cand("b", 0), cand("c", 0)], evaluations=[
        EvaluationRecord("a", "dev", 0.8, 20, 0, "s1", 0),
        EvaluationRecord("b", "dev", 0.5, 20, 0, "s1", 0),
        EvaluationRecord("a", "dev", 0.6, 100),
        EvaluationRecord("a", "test", 0.7, 200),
    ])
    found = store.evaluations_of(["a", "b", "c"], split="dev")
    assert [(e.value, e.n, e.subset) for e in found["a"]] == [(0.8, 20, "s1"), (0.6, 100, None)]
    assert [e.value for e in found["b"]] == [0.5]
    assert found["c"] == []
    assert [e.split for e in store.evaluations_of(["a"])["a"]] == ["dev", "dev", "test"]
    assert store.evaluations_of([]) == {}
    # the same records the one-candidate read gives
    assert store.evaluations_of(["a"])["a"] == store.candidate_evaluations("a")


AT = datetime(2025, 3, 4, 5, 6, 7, 123456, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))  # a non-UTC offset, to be normalised


def _batch(job: str, tag: str) -> dict:
    """One batch of every bulk table, ids prefixed with ``tag``; values that need converting:
    JSON with non-ASCII text and nesting, timestamps given in another zone, flags, NULLs."""
    return {
        "candidates": [
            Candidate(f"{tag}a", "Say «yes».", 0, "init",
                      meta={"note": "é ✓ \"q\"", "nested": {"x": [1, 2.5, None]}}),
            Candidate(f"{tag}b", "print(1)", 0, "init", kind="program", island=2),
            Candidate(f"{tag}c", "Say no.", 1, "crossover", (f"{tag}b", f"{tag}a")),
        ],
        "evaluations": [
            dev(f"{tag}a", 0.5),
            EvaluationRecord(f"{tag}c", "dev", 0.1 + 0.2, 10, 1, "s1", 1, AT.astimezone(IST)),
        ],
        "llm_calls": [
            LLMCallRecord(job, f"{tag}c", "generate", "m", 12, 3, 0.25, True, "boom",
                          AT.astimezone(IST)),
            LLMCallRecord(job, None, "evaluate", "m"),
        ],
    }


def _core_insert(engine: Engine, job: str, batch: dict, now: datetime) -> None:
    """``batch`` written the way the store wrote it before it bypassed SQLAlchemy's parameter
    processing: Core inserts of dicts, with the same defaults filled in."""
    cands, evals, calls = batch["candidates"], batch["evaluations"], batch["llm_calls"]
    with engine.begin() as conn:
        conn.execute(insert(CandidateRow), [
            {"id": c.id, "job_id": job, "text": c.text, "kind": c.kind,
             "generation": c.generation, "island": c.island, "operator": c.operator,
             "meta": dict(c.meta), "seq": i, "created_at": now}
            for i, c in enumerate(cands)
        ])
        conn.execute(insert(LineageRow), [
            {"child_id": c.id, "parent_id": p, "position": i, "operator": c.operator,
             "job_id": job}
            for c in cands for i, p in enumerate(c.parents)
        ])
        conn.execute(insert(EvaluationRow), [
            {"job_id": job, "candidate_id": e.candidate_id, "split": e.split,
             "subset": e.subset, "value": e.value, "n": e.n, "failures": e.failures,
             "generation": getattr(e, "generation", None),
             "created_at": getattr(e, "created_at", None) or now}
            for e in evals
        ])
        conn.execute(insert(LLMCallRow), [
            {"job_id": job, "candidate_id": c.candidate_id, "purpose": c.purpose,
             "model": c.model, "prompt_tokens": c.prompt_tokens,
             "completion_tokens": c.completion_tokens, "latency_s": c.latency_s,
             "cached": c.cached, "error": c.error, "created_at": c.created_at or now}
            for c in calls
        ])


def _stored(engine: Engine, job: str) -> dict[str, list[tuple]]:
    """Every bulk table's rows of a job exactly as the driver hands them back (text() applies no
    type processing: SQLite's JSON and timestamps come back as the stored text), without the
    job id and with the one-letter id tags cut off."""
    queries = {
        "candidates": "SELECT id, text, kind, generation, island, operator, meta, seq, "
                      "created_at FROM candidates WHERE job_id = :j ORDER BY seq",
        "lineage": "SELECT child_id, position, parent_id, operator FROM lineage "
                   "WHERE job_id = :j ORDER BY child_id, position",
        "evaluations": "SELECT candidate_id, split, subset, value, n, failures, generation, "
                       "created_at FROM evaluations WHERE job_id = :j ORDER BY id",
        "llm_calls": "SELECT candidate_id, purpose, model, prompt_tokens, completion_tokens, "
                     "latency_s, cached, error, created_at FROM llm_calls WHERE job_id = :j "
                     "ORDER BY id",
    }
    untag = {"id", "child_id", "parent_id", "candidate_id"}
    out = {}
    with engine.connect() as conn:
        for table, sql in queries.items():
            result = conn.execute(text(sql), {"j": job})
            names = list(result.keys())
            out[table] = [
                tuple(v[1:] if n in untag and v is not None else v
                      for n, v in zip(names, row, strict=True))
                for row in result
            ]
    return out


def test_write_batch_stores_what_core_insert_stores(
    store: Store, engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("storage.recorder.utcnow", lambda: AT)
    mine, reference = new_job(store), new_job(store, "job0000002")
    store.write_batch(mine, **_batch(mine, "w"))
    _core_insert(engine, reference, _batch(reference, "r"), AT)
    written, expected = _stored(engine, mine), _stored(engine, reference)
    assert [len(rows) for rows in written.values()] == [3, 2, 2, 2]
    assert written == expected
    # and read back through the store, as given (timestamps in UTC)
    assert store.candidates(mine) == _batch(mine, "w")["candidates"]
    assert store.candidate("wa").meta == {"note": "é ✓ \"q\"", "nested": {"x": [1, 2.5, None]}}
    assert store.llm_calls(mine) == _batch(mine, "w")["llm_calls"]
    assert [c.created_at for c in store.llm_calls(mine)] == [AT, AT]
    assert [e.created_at for e in store.evaluations(mine)] == [AT, AT]


def test_write_paid_ledger_rows_round_trip(store: Store) -> None:
    job = new_job(store)
    calls = _batch(job, "w")["llm_calls"]
    store.write_paid(job, calls, [])
    assert store.llm_calls(job) == calls


@pytest.mark.parametrize(
    "bad",
    [
        {"candidates": [cand("a", 1)]},  # duplicate candidate id
        {"candidates": [cand("x", 1, "ghost")]},  # unknown parent
        {"job": {"status": "running", "owner": "x"}},  # field that may not change
    ],
    ids=["duplicate-id", "unknown-parent", "bad-job-field"],
)
def test_write_batch_is_all_or_nothing(store: Store, bad: dict) -> None:
    job = new_job(store)
    store.write_batch(job, candidates=[cand("a", 0)], evaluations=[dev("a", 0.1)])
    batch: dict = {
        "candidates": [cand("n1", 1, "a"), cand("n2", 1, "n1")],
        "evaluations": [dev("a", 0.9)],
        "llm_calls": [LLMCallRecord(job, None, "evaluate", "m", 5, 1)],
        "checkpoint": (1, {"pop": ["n1"]}),
        "job": {"status": "running"},
    }
    batch["candidates"] = batch["candidates"] + bad.get("candidates", [])
    batch["job"] = bad.get("job", batch["job"])
    with pytest.raises((IntegrityError, ValueError)):
        store.write_batch(job, **batch)
    assert [c.id for c in store.candidates(job)] == ["a"]
    assert store.lineage(job) == []
    assert [e.value for e in store.evaluations(job)] == [0.1]
    assert store.llm_calls(job) == []
    assert store.latest_checkpoint(job) is None
    assert store.get_job(job).status == "queued"  # type: ignore[union-attr]


def test_checkpoint_upsert_and_latest(store: Store) -> None:
    job = new_job(store)
    assert store.latest_checkpoint(job) is None
    store.write_batch(job, checkpoint=(0, {"pop": ["a"]}))
    store.write_batch(job, checkpoint=(1, {"pop": ["b"]}))
    store.write_batch(job, checkpoint=(1, {"pop": ["c"], "rng": [1, 2]}))
    assert store.latest_checkpoint(job) == (1, {"pop": ["c"], "rng": [1, 2]})
    assert store.latest_checkpoint("other") is None


def test_checkpoints_and_paid_responses_keep_their_key_order(store: Store) -> None:
    # a resumed job ranks equals in the order its dicts were written: the order must survive
    job = new_job(store)
    scores = {"zz": [0.5], "a": [0.5], "mm": [0.5], "b": [0.5]}
    store.write_batch(job, checkpoint=(0, {"scores": scores, "asked": {"k2": 1, "k1": 2}}))
    _, state = store.latest_checkpoint(job)
    assert list(state["scores"]) == ["zz", "a", "mm", "b"]
    assert list(state["asked"]) == ["k2", "k1"]
    logprobs = {"positive": -0.5, "negative": -0.5, "neutral": -1.0}
    store.write_paid(job, [], [(0, "key", {"text": "x", "label_logprobs": logprobs})])
    ((_, answer),) = store.paid_responses(job)
    assert list(answer["label_logprobs"]) == ["positive", "negative", "neutral"]


def test_concurrent_writers_get_distinct_sequence_numbers(store: Store, engine: Engine) -> None:
    job = new_job(store)

    def write(tag: str) -> None:
        for i in range(8):
            store.write_batch(job, candidates=[cand(f"{tag}{i}-{k}", i) for k in range(3)])

    threads = [threading.Thread(target=write, args=(tag,)) for tag in "wxyz"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with engine.connect() as conn:
        counts = conn.execute(text("SELECT count(*), count(DISTINCT seq) FROM candidates")).one()
    assert tuple(counts) == (96, 96)


# --- scores ------------------------------------------------------------------------------------


def test_rescore_appends_and_leaderboard_uses_latest(store: Store) -> None:
    job = new_job(store)
    store.write_batch(job, candidates=[cand("a", 0), cand("b", 0)])
    store.write_batch(job, evaluations=[dev("a", 0.9), dev("b", 0.5)])
    store.write_batch(job, evaluations=[dev("a", 0.4)])  # re-scored, say on a fresh sample
    assert [e.value for e in store.evaluations(job) if e.candidate_id == "a"] == [0.9, 0.4]
    board = store.leaderboard(job)
    assert [(c.id, e.value) for c, e in board] == [("b", 0.5), ("a", 0.4)]


def test_leaderboard_order_ties_k_and_subsets(store: Store) -> None:
    job = new_job(store)
    store.write_batch(job, candidates=[cand(c, 0) for c in "abcde"])
    store.write_batch(
        job,
        evaluations=[
            dev("a", 0.5),
            dev("b", 0.8),
            dev("c", 0.5),
            dev("d", 0.99, subset="mb1"),  # a minibatch score: not on a full-split board
            Score("e", "test", 1.0, 10),  # another split
        ],
    )
    assert [c.id for c, _ in store.leaderboard(job)] == ["b", "a", "c"]
    assert [c.id for c, _ in store.leaderboard(job, k=2)] == ["b", "a"]
    assert [c.id for c, _ in store.leaderboard(job, full_only=False)] == ["d", "b", "a", "c"]
    assert [c.id for c, _ in store.leaderboard(job, split="test")] == ["e"]
    top, score = store.leaderboard(job, k=1)[0]
    assert top == cand("b", 0) and score == EvaluationRecord("b", "dev", 0.8, 10)


def test_generations_summary(store: Store) -> None:
    job = new_job(store)
    twin = Candidate(id="c", text="prompt a", generation=0, operator="mutate")  # a's text again
    store.write_batch(job, candidates=[cand("a", 0), cand("b", 0), twin])
    store.write_batch(job, candidates=[cand("d", 1, "a"), cand("e", 1, "b"), cand("f", 2, "d")])
    store.write_batch(
        job,
        evaluations=[
            dev("a", 0.2),
            dev("a", 0.6, subset="mb"),  # best of a's dev scores counts, any subset
            dev("b", 0.4),
            # c is not scored: counted in size, not in best/mean
            dev("d", 0.7),
            dev("e", 0.7),  # tie: the earlier candidate (d) is named best
            Score("e", "test", 0.99, 5),  # other splits are ignored
        ],
    )
    summaries = store.generations(job)
    assert summaries[:2] == [
        GenerationSummary(0, 3, 0.6, pytest.approx(0.5), "a", 2),  # type: ignore[arg-type]
        GenerationSummary(1, 2, 0.7, pytest.approx(0.7), "d", 2),  # type: ignore[arg-type]
    ]
    assert summaries[2] == GenerationSummary(2, 1, None, None, None, 1)


def test_ancestry_three_generations(store: Store) -> None:
    #   g0:  a   b   x(unrelated)
    #   g1:  c(a,b)  d(b)
    #   g2:  e(c,d)
    #   g3:  f(e)
    job = new_job(store)
    store.write_batch(job, candidates=[cand("a", 0), cand("b", 0), cand("x", 0)])
    store.write_batch(job, candidates=[cand("c", 1, "a", "b"), cand("d", 1, "b")])
    store.write_batch(job, candidates=[cand("e", 2, "c", "d"), cand("f", 3, "e")])
    assert [c.id for c in store.ancestry("f")] == ["e", "c", "d", "a", "b"]
    family = store.ancestry("e")
    assert [c.id for c in family] == ["c", "d", "a", "b"]  # b is reached twice, listed once
    assert family[0].parents == ("a", "b")
    assert store.ancestry("a") == []
    assert store.ancestry("missing") == []


def _aggregate(store: Store, job: str) -> list[GenerationSummary]:
    """The per-generation summary as computed from every evaluation (what rows stand in for)."""
    with Session(store.engine) as session:
        return queries.generations(session, job, "dev")


def _stale(engine: Engine, job: str) -> dict[int, bool]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT generation, stale FROM generation_summaries WHERE job_id = :j"),
            {"j": job},
        )
        return {gen: bool(stale) for gen, stale in rows}


def test_generation_summaries_are_kept_and_match_the_aggregate(
    store: Store, engine: Engine
) -> None:
    # scores are sums of powers of two, so that means are exact whatever the order of summing
    job = new_job(store)
    store.write_batch(
        job,
        candidates=[cand("a", 0), cand("b", 0), cand("c", 0)],
        evaluations=[dev("a", 0.25), dev("a", 0.5, subset="mb"), dev("b", 0.75)],
        checkpoint=(0, {}),
    )
    assert _stale(engine, job) == {0: False}
    assert store.generations(job) == _aggregate(store, job) == [
        GenerationSummary(0, 3, 0.75, 0.625, "b", 3)
    ]

    # a generation in progress: a placeholder row, summarized on the fly
    store.write_batch(job, candidates=[cand("d", 1, "a"), cand("e", 1, "b", "a")],
                      evaluations=[dev("d", 0.5), dev("e", 0.5)])
    assert _stale(engine, job) == {0: False, 1: True}
    assert store.generations(job) == _aggregate(store, job)
    assert store.generations(job)[1] == GenerationSummary(1, 2, 0.5, 0.5, "d", 2)

    store.write_batch(job, checkpoint=(1, {}))  # the generation ends
    assert _stale(engine, job) == {0: False, 1: False}
    assert store.generations(job) == _aggregate(store, job)

    # later writes to an ended generation: a re-score, a late candidate; other splits don't count
    store.write_batch(job, evaluations=[dev("c", 1.0), Score("d", "test", 0.0, 5)])
    assert _stale(engine, job) == {0: True, 1: False}
    assert store.generations(job) == _aggregate(store, job)
    assert store.generations(job)[0] == GenerationSummary(0, 3, 1.0, 0.75, "c", 3)
    store.write_batch(job, candidates=[cand("z", 1, "c")])
    assert _stale(engine, job) == {0: True, 1: True}
    assert store.generations(job) == _aggregate(store, job)

    store.write_batch(job, checkpoint=(2, {}))  # every stale row is computed at a generation end
    assert _stale(engine, job) == {0: False, 1: False}
    assert store.generations(job) == _aggregate(store, job)
    assert store.generations(job)[1] == GenerationSummary(1, 3, 0.5, 0.5, "d", 3)
    assert store.generations("no-such-job") == []


def test_generation_summaries_when_mostly_stale(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    job = new_job(store)
    for g in range(4):
        store.write_batch(job, candidates=[cand(f"{g}a", g), cand(f"{g}b", g)],
                          evaluations=[dev(f"{g}a", g / 4)])
    monkeypatch.setattr(summaries, "_CHUNK", 2)  # more stale rows than that: one aggregate
    assert store.generations(job) == _aggregate(store, job)
    assert [s.size for s in store.generations(job)] == [2, 2, 2, 2]


def test_generation_summaries_of_rows_loaded_around_the_store(
    store: Store, engine: Engine
) -> None:
    # a bulk load (like the store benchmark's) writes candidates without summary rows
    job = new_job(store)
    with engine.begin() as conn:
        conn.execute(insert(CandidateRow), [
            {"id": f"c{i}", "job_id": job, "text": "t", "kind": "prompt", "generation": i // 2,
             "island": 0, "operator": "seed", "meta": {}, "seq": i, "created_at": AT}
            for i in range(6)
        ])
        conn.execute(insert(EvaluationRow), [
            {"job_id": job, "candidate_id": f"c{i}", "split": "dev", "subset": None,
             "value": i / 8, "n": 5, "failures": 0, "generation": i // 2, "created_at": AT}
            for i in range(5)
        ])
    expected = _aggregate(store, job)
    assert len(expected) == 3 and store.generations(job) == expected  # no rows: the aggregate
    assert store.refresh_generations(job) == 3
    assert _stale(engine, job) == {0: False, 1: False, 2: False}
    assert store.generations(job) == expected


def test_migration_gives_existing_jobs_stale_summaries(store: Store, engine: Engine) -> None:
    job = new_job(store)
    store.write_batch(job, candidates=[cand("a", 0), cand("b", 1, "a")],
                      evaluations=[dev("a", 0.5), dev("b", 0.25)], checkpoint=(1, {}))
    cfg = alembic_config()
    with engine.begin() as conn:  # back to before the table existed, then up again
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    assert "generation_summaries" not in inspect(engine).get_table_names()
    store.upgrade()
    assert _stale(engine, job) == {0: True, 1: True}
    assert store.generations(job) == _aggregate(store, job)
    store.write_batch(job, checkpoint=(2, {}))
    assert _stale(engine, job) == {0: False, 1: False}
    assert store.generations(job) == _aggregate(store, job)


def _done(generation: int, calls: int, tokens: int) -> dict:
    """A GenerationDone event's payload, as the driver writes it with a generation's end."""
    return {"kind": "GenerationDone", "job_id": "x", "generation": generation, "best": 0.0,
            "mean": 0.0, "size": 1, "calls": calls, "tokens": tokens}


def test_generation_rows_keep_the_totals_of_each_generation_end(
    store: Store, engine: Engine
) -> None:
    job = new_job(store)
    for g in range(5):
        store.write_batch(job, candidates=[cand(f"{g}a", g), cand(f"{g}b", g)],
                          evaluations=[dev(f"{g}a", g / 8)])
        store.write_batch(job, checkpoint=(g, {}), events=[_done(g, 10 * (g + 1), 100 * (g + 1))])
    store.write_batch(job, candidates=[cand("5a", 5)])  # generation 5 is still running
    full = store.generations(job)
    assert [(s.generation, s.calls_total, s.tokens_total) for s in full] == [
        (0, 10, 100), (1, 20, 200), (2, 30, 300), (3, 40, 400), (4, 50, 500), (5, None, None)]
    # a later score makes generation 1 stale: it is aggregated again, its totals stay
    store.write_batch(job, evaluations=[dev("1b", 0.875)])
    assert _stale(engine, job)[1]
    again = store.generations(job)
    assert again[1] == dataclasses.replace(full[1], best=0.875, mean=0.5, best_candidate_id="1b")
    # pages are slices of the whole list, stale rows included
    assert store.generations(job, after=-1) == again
    assert store.generations(job, after=0, limit=2) == again[1:3]
    assert store.generations(job, after=3) == again[4:]
    assert store.generations(job, limit=1) == again[:1]
    assert store.generations(job, after=5) == []
    assert store.generations(job, after=99, limit=3) == []
    # where a page's spend counts from: the last generation up to it that ended
    assert store.totals_upto(job, 2) == (30, 300)
    assert store.totals_upto(job, 7) == (50, 500)
    assert store.totals_upto(job, -1) is None
    # a resumed job may end a generation twice: the later end counts
    store.write_batch(job, checkpoint=(4, {}), events=[_done(4, 55, 550)])
    assert store.generations(job, after=3, limit=1)[0].calls_total == 55


def test_pages_of_rows_loaded_around_the_store(store: Store, engine: Engine) -> None:
    job = new_job(store)
    with engine.begin() as conn:  # no summary rows: pages are cut from the aggregate
        conn.execute(insert(CandidateRow), [
            {"id": f"c{i}", "job_id": job, "text": f"t{i % 3}", "kind": "prompt",
             "generation": i // 4, "island": 0, "operator": "seed", "meta": {}, "seq": i,
             "created_at": AT}
            for i in range(12)
        ])
    whole = store.generations(job)
    assert [s.distinct for s in whole] == [3, 3, 3]
    assert store.generations(job, after=0, limit=1) == whole[1:2]
    assert store.generations(job, after=2) == []


def test_migration_fills_distinct_texts_and_totals(store: Store, engine: Engine) -> None:
    job = new_job(store)
    twin = Candidate(id="z", text="prompt a", generation=0, operator="mutate")
    store.write_batch(job, candidates=[cand("a", 0), twin], evaluations=[dev("a", 0.5)],
                      checkpoint=(0, {}), events=[_done(0, 7, 70)])
    store.write_batch(job, candidates=[cand("b", 1, "a")], checkpoint=(1, {}),
                      events=[_done(1, 9, 90), _done(1, 12, 120)])  # the later end counts
    expected = store.generations(job)
    assert [(s.distinct, s.calls_total) for s in expected] == [(1, 7), (1, 12)]
    cfg = alembic_config()
    with engine.begin() as conn:  # back to before the columns existed, then up again
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0005")
    assert "calls_total" not in {c["name"] for c in inspect(engine).get_columns(
        "generation_summaries")}
    store.upgrade()
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT generation, stale, distinct_texts, calls_total, tokens_total "
            "FROM generation_summaries WHERE job_id = :j ORDER BY generation"), {"j": job}).all()
    assert [tuple(r) for r in rows] == [(0, False, 1, 7, 70), (1, False, 1, 12, 120)]
    assert store.generations(job) == expected


def _ancestry_by_walking(family: list[Candidate], start: str) -> list[Candidate]:
    """Ancestors by a breadth-first walk in Python: nearest depth first, then insertion order."""
    by_id = {c.id: c for c in family}
    order = {c.id: i for i, c in enumerate(family)}
    depth: dict[str, int] = {}
    frontier, d = [start], 0
    while frontier:
        d += 1
        frontier = [p for c in frontier for p in by_id[c].parents if p not in depth]
        for p in frontier:
            depth.setdefault(p, d)
    return sorted((by_id[a] for a in depth), key=lambda c: (depth[c.id], order[c.id]))


def test_ancestry_of_a_multi_parent_lineage(store: Store) -> None:
    # parents from any earlier generation (so an ancestor is reached at several depths), one to
    # three of them, sometimes the same parent twice (a crossover of a prompt with itself)
    rng = random.Random(7)
    job = new_job(store)
    family: list[Candidate] = []
    for g in range(8):
        made = []
        for k in range(5):
            parents: tuple[str, ...] = ()
            if family:
                parents = tuple(rng.choice(family).id for _ in range(rng.randint(1, 3)))
            made.append(Candidate(f"g{g}k{k}", f"text {g}.{k}", g, f"op{len(parents)}",
                                  parents, kind="program" if k == 4 else "prompt",
                                  island=k % 2, meta={"k": k}))
        store.write_batch(job, candidates=made)
        family += made
    for cid in ("g7k0", "g7k3", "g5k2", "g1k1"):
        expected = _ancestry_by_walking(family, cid)
        got = store.ancestry(cid)
        assert got == expected and len(got) > 0
        # every field callers show, parents in operator order
        assert [(c.id, c.text, c.generation, c.operator, c.parents, c.kind, c.island)
                for c in got] == [
            (c.id, c.text, c.generation, c.operator, c.parents, c.kind, c.island)
            for c in expected
        ]
    assert store.ancestry("g0k0") == []


# --- accounting --------------------------------------------------------------------------------


def test_call_totals(store: Store) -> None:
    job = new_job(store)
    store.write_batch(job, candidates=[cand("a", 0)])
    calls = [
        LLMCallRecord(job, "a", "evaluate", "m", 100, 10, 0.5, usd=0.25),
        LLMCallRecord(job, "a", "evaluate", "m", 100, 10, 0.0, cached=True),
        LLMCallRecord(job, None, "generate", "m", 50, 40, 1.25, usd=0.5),
        LLMCallRecord(job, None, "generate", "m", 50, 0, 2.0, error="timeout"),
    ]
    assert store.call_totals(job)["calls"] == 0
    store.write_batch(job, llm_calls=calls)
    assert store.call_totals(job) == {
        "calls": 3,
        "cached": 1,
        "prompt_tokens": 200,
        "completion_tokens": 50,
        "errors": 1,
        "latency_s": pytest.approx(3.75),
        "usd": pytest.approx(0.75),  # the paid calls' cost, as stored on each
    }
    with pytest.raises(ValueError, match="job"):
        store.write_batch(job, llm_calls=[LLMCallRecord("other", None, "generate", "m")])


def test_timestamps_are_utc_aware(store: Store) -> None:
    job = new_job(store)
    at = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    store.write_batch(job, llm_calls=[LLMCallRecord(job, None, "generate", "m", created_at=at)])
    assert store.llm_calls(job)[0].created_at == at
    with pytest.raises(Exception, match="naive"):
        store.write_batch(job, job=JobUpdate(heartbeat_at=datetime(2025, 1, 1)))


def test_paid_responses_round_trip(store: Store) -> None:
    job = new_job(store)
    call = LLMCallRecord(job_id=job, candidate_id=None, purpose="evaluate", model="m",
                         prompt_tokens=5, completion_tokens=1, latency_s=0.1)
    store.write_paid(job, [call, call], [(1, "k2", {"text": "b"}), (0, "k1", {"text": "a"})])
    assert store.paid_responses(job) == [("k1", {"text": "a"}), ("k2", {"text": "b"})]
    assert len(store.llm_calls(job)) == 2
    with pytest.raises(IntegrityError):  # a key is paid once per job
        store.write_paid(job, [call], [(2, "k1", {"text": "again"})])
    assert len(store.llm_calls(job)) == 2  # and the failed write left nothing behind


def test_summaries_read_from_rows_are_ordinary_records() -> None:
    # the fast constructor of the job page's read builds the same record as the dataclass's own
    args = (3, 20, 0.75, 0.5, "c1", 18, 400, 91_000)
    built = summaries._summary(*args)
    assert built == GenerationSummary(*args) and hash(built) == hash(GenerationSummary(*args))
    assert repr(built) == repr(GenerationSummary(*args))
    assert [f.name for f in dataclasses.fields(GenerationSummary)] == list(vars(built))
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.size = 1  # type: ignore[misc]
