"""Store behaviour, run against SQLite and PostgreSQL alike.

PostgreSQL: ``EVO_TEST_POSTGRES_URL`` (default: the local ``test`` database). Each test gets a
schema of its own, dropped afterwards. An unreachable server fails those tests, unless
``EVO_TEST_SKIP_POSTGRES=1`` says to skip them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import IntegrityError

from evo.candidate import Candidate, Score
from storage import EvaluationRecord, GenerationSummary, LineageEdge, LLMCallRecord, Store
from storage.db import alembic_config
from storage.models import Base

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
    store.update_job("j1", status="running", started_at=started, stats={"calls": 3})
    got = store.get_job("j1")
    assert got is not None
    assert got.status == "running" and got.stats == {"calls": 3}
    assert got.started_at == started and got.started_at.utcoffset() == timedelta(0)
    with pytest.raises(ValueError, match="status"):
        store.update_job("j1", status="exploded")
    with pytest.raises(ValueError, match="name"):
        store.update_job("j1", name="renamed")
    with pytest.raises(LookupError):
        store.update_job("nope", status="failed")


def test_get_job_by_unique_prefix(store: Store) -> None:
    for job_id in ("0a1b2c3d4e", "0a1b2c9999", "ffee001122"):
        new_job(store, job_id)
    assert store.get_job("ffee00").id == "ffee001122"  # type: ignore[union-attr]
    assert store.get_job("0a1b2c3").id == "0a1b2c3d4e"  # type: ignore[union-attr]
    assert store.get_job("ffee0") is None  # shorter than 6 characters: exact ids only
    assert store.get_job("abcdef") is None
    with pytest.raises(ValueError, match="ambiguous"):
        store.get_job("0a1b2c")


def test_list_jobs_newest_first_with_filter(store: Store) -> None:
    for i in range(5):
        new_job(store, f"job{i}")
    store.update_job("job1", status="running")
    store.update_job("job3", status="running")
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
    store.write_batch(job, candidates=[cand("a", 0), cand("b", 0), cand("c", 0)])
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
        GenerationSummary(0, 3, 0.6, pytest.approx(0.5), "a"),  # type: ignore[arg-type]
        GenerationSummary(1, 2, 0.7, pytest.approx(0.7), "d"),  # type: ignore[arg-type]
    ]
    assert summaries[2] == GenerationSummary(2, 1, None, None, None)


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


# --- accounting --------------------------------------------------------------------------------


def test_call_totals(store: Store) -> None:
    job = new_job(store)
    store.write_batch(job, candidates=[cand("a", 0)])
    calls = [
        LLMCallRecord(job, "a", "evaluate", "m", 100, 10, 0.5),
        LLMCallRecord(job, "a", "evaluate", "m", 100, 10, 0.0, cached=True),
        LLMCallRecord(job, None, "generate", "m", 50, 40, 1.25),
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
    }
    with pytest.raises(ValueError, match="job"):
        store.write_batch(job, llm_calls=[LLMCallRecord("other", None, "generate", "m")])


def test_timestamps_are_utc_aware(store: Store) -> None:
    job = new_job(store)
    at = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    store.write_batch(job, llm_calls=[LLMCallRecord(job, None, "generate", "m", created_at=at)])
    assert store.llm_calls(job)[0].created_at == at
    with pytest.raises(Exception, match="naive"):
        store.update_job(job, heartbeat_at=datetime(2025, 1, 1))


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
