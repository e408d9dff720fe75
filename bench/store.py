"""Store throughput and dashboard query latency, on SQLite and on PostgreSQL.

    python -m bench.store [--backends sqlite postgres] [--batches 10] [--batch-candidates 100]
                          [--calls-per-candidate 20] [--evaluations 100000] [--population 20]
                          [--evals-per-candidate 4] [--reps 30] [--explain]
    python -m bench.store --evaluations 1000000          # the full latency target

Writes: generation-sized batches (candidates with two parents each, one evaluation per candidate,
``--calls-per-candidate`` LLM-call ledger rows per candidate) go through ``Store.write_batch``,
and the same rows (other ids, another job) through a bare DB-API ``executemany`` and through a
SQLAlchemy Core ``insert`` with a list of dicts, one transaction per batch each, interleaved, into
the same tables. Rows per second and Store / reference ratios are printed.

Reads: one job is filled in bulk (PostgreSQL COPY, SQLite executemany in large batches) with
``--evaluations`` evaluations over candidates of ``--population`` per generation, each with two
parents in the generation before, ``--evals-per-candidate`` evaluations each (one on the full dev
split, the rest on a dev subset). Then p50/p95 over ``--reps`` calls of what a dashboard shows:
a generation's population with its scores, the top 20, the ancestry of a candidate of generation
50 (50 generations deep), the per-generation summaries of the whole job, and a page of 100 of
them (what the compare page reads of a running job each time). The bulk load bypasses
``Store.write_batch``, which keeps a summary row per generation as each one ends, so the fill ends
with ``Store.refresh_generations`` making those rows. PostgreSQL tables are ANALYZEd after the
fill, as autovacuum would. ``--explain`` prints EXPLAIN ANALYZE of each
PostgreSQL statement of a query that misses 50 ms.

PostgreSQL work happens in a schema made for the run and dropped after it; SQLite in a temporary
file.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, select
from sqlalchemy.engine import make_url

from bench.common import DEFAULT_PG_URL, percentile, pg_schema, table
from evo.candidate import Candidate
from storage import EvaluationRecord, LLMCallRecord, Store
from storage.models import CandidateRow, EvaluationRow, LineageRow, LLMCallRow

TARGET_MS = 50.0
WRITE_TARGET = 0.8
TABLES = ("candidates", "lineage", "evaluations", "llm_calls")
COLUMNS = {
    "candidates": ("id", "job_id", "text", "kind", "generation", "island", "operator", "meta",
                   "seq", "created_at"),
    "lineage": ("child_id", "position", "parent_id", "operator", "job_id"),
    "evaluations": ("job_id", "candidate_id", "split", "subset", "value", "n", "failures",
                    "generation", "created_at"),
    "llm_calls": ("job_id", "candidate_id", "purpose", "model", "prompt_tokens",
                  "completion_tokens", "latency_s", "cached", "error", "created_at"),
}
WORDS = ("read", "the", "text", "below", "and", "name", "its", "topic", "answer", "with", "one",
         "word", "only", "carefully", "decide", "which", "label", "fits", "best", "news", "item")


def new_id() -> str:
    return uuid.uuid4().hex


def prompt_text(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(10, 22))).capitalize() + "."


# --- one generation's rows, as the driver hands them to the store --------------------------


@dataclass
class Batch:
    candidates: list[Candidate]
    evaluations: list[EvaluationRecord]
    calls: list[LLMCallRecord]

    @property
    def rows(self) -> int:
        return (len(self.candidates) + sum(len(c.parents) for c in self.candidates)
                + len(self.evaluations) + len(self.calls))


def make_batches(job_id: str, batches: int, size: int, calls_per: int, seed: int) -> list[Batch]:
    rng = random.Random(seed)
    out: list[Batch] = []
    previous: list[Candidate] = []
    for g in range(batches):
        cands = []
        for _ in range(size):
            parents = tuple(c.id for c in rng.sample(previous, 2)) if previous else ()
            cands.append(Candidate(new_id(), prompt_text(rng), g,
                                   "ga_crossover_mutation" if parents else "seed", parents,
                                   meta={"made_by": uuid.uuid4().hex + uuid.uuid4().hex}))
        evals = [EvaluationRecord(c.id, "dev", rng.random(), 50, 0, "50", g) for c in cands]
        calls = [LLMCallRecord(job_id, c.id, "evaluate", "bench-model", rng.randint(40, 90), 1,
                               rng.random() / 5) for c in cands for _ in range(calls_per)]
        out.append(Batch(cands, evals, calls))
        previous = cands
    return out


# --- the references: the same rows with no repository in between ---------------------------


class Reference:
    """Writes a batch in one transaction, one executemany per table."""

    name = ""

    def write(self, job_id: str, batch: Batch, seq0: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


def plain_rows(job_id: str, batch: Batch, seq0: int, now: Any, as_json: Callable[[dict], Any]
               ) -> dict[str, list[tuple]]:
    """Each table's rows as tuples in ``COLUMNS`` order (what a hand-written script keeps)."""
    return {
        "candidates": [(c.id, job_id, c.text, c.kind, c.generation, c.island, c.operator,
                        as_json(c.meta), seq0 + i, now) for i, c in enumerate(batch.candidates)],
        "lineage": [(c.id, pos, p, c.operator, job_id) for c in batch.candidates
                    for pos, p in enumerate(c.parents)],
        "evaluations": [(job_id, e.candidate_id, e.split, e.subset, e.value, e.n, e.failures,
                         e.generation, now) for e in batch.evaluations],
        "llm_calls": [(job_id, x.candidate_id, x.purpose, x.model, x.prompt_tokens,
                       x.completion_tokens, x.latency_s, x.cached, x.error, now)
                      for x in batch.calls],
    }


def _insert_sql(name: str, mark: str) -> str:
    cols = COLUMNS[name]
    return f"INSERT INTO {name} ({', '.join(cols)}) VALUES ({', '.join([mark] * len(cols))})"


class SqliteDBAPI(Reference):
    name = "DB-API executemany"

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None)
        # the same settings as the store's connections (storage/db.py)
        for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=10000"):
            self.conn.execute(f"PRAGMA {pragma}")

    def write(self, job_id: str, batch: Batch, seq0: int) -> None:
        # SQLite has no timestamp type: the text SQLAlchemy stores for a UTC datetime
        now = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
        rows = plain_rows(job_id, batch, seq0, now, json.dumps)
        cur = self.conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        for name in TABLES:
            if rows[name]:
                cur.executemany(_insert_sql(name, "?"), rows[name])
        cur.execute("COMMIT")

    def close(self) -> None:
        self.conn.close()


class PostgresDBAPI(Reference):
    name = "DB-API executemany"

    def __init__(self, sqlalchemy_url: str) -> None:
        import psycopg
        from psycopg.types.json import Jsonb

        self.jsonb = Jsonb
        url = make_url(sqlalchemy_url)
        options = url.query.get("options")
        self.conn = psycopg.connect(
            host=url.host, port=url.port, user=url.username, password=url.password,
            dbname=url.database, options=options if isinstance(options, str) else None,
        )

    def write(self, job_id: str, batch: Batch, seq0: int) -> None:
        rows = plain_rows(job_id, batch, seq0, datetime.now(UTC), self.jsonb)
        with self.conn.transaction(), self.conn.cursor() as cur:
            for name in TABLES:
                if rows[name]:
                    cur.executemany(_insert_sql(name, "%s"), rows[name])

    def close(self) -> None:
        self.conn.close()


class CoreInsert(Reference):
    """SQLAlchemy Core ``insert(table)`` with a list of dicts, on the store's own engine."""

    name = "Core insert"

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def write(self, job_id: str, batch: Batch, seq0: int) -> None:
        now = datetime.now(UTC)
        rows = plain_rows(job_id, batch, seq0, now, lambda m: m)
        models = dict(zip(TABLES, (CandidateRow, LineageRow, EvaluationRow, LLMCallRow),
                          strict=True))
        with self.engine.begin() as conn:
            for name in TABLES:
                if rows[name]:
                    conn.execute(insert(models[name]),
                                 [dict(zip(COLUMNS[name], r, strict=True)) for r in rows[name]])


def dbapi_reference(store: Store, url: str) -> Reference:
    if store.engine.dialect.name == "sqlite":
        database = make_url(url).database
        assert database
        return SqliteDBAPI(database)
    return PostgresDBAPI(url)


def bench_writes(store: Store, url: str, args: argparse.Namespace) -> dict[str, Any]:
    refs = [dbapi_reference(store, url), CoreInsert(store)]
    methods = ["Store.write_batch"] + [r.name for r in refs]
    jobs = {m: new_id() for m in methods}
    for m, job in jobs.items():
        store.create_job(job_id=job, name=f"bench writes: {m}", task="bench", algorithm="bench",
                         spec={}, seed=0, status="running")
    batches = {m: make_batches(jobs[m], args.batches, args.batch_candidates,
                               args.calls_per_candidate, seed=i)
               for i, m in enumerate(methods)}
    spent: dict[str, list[float]] = {m: [] for m in methods}
    writers: dict[str, Callable[[int], None]] = {
        "Store.write_batch": lambda b: store.write_batch(
            jobs["Store.write_batch"], candidates=batches["Store.write_batch"][b].candidates,
            evaluations=batches["Store.write_batch"][b].evaluations,
            llm_calls=batches["Store.write_batch"][b].calls),
    }
    for ref in refs:
        writers[ref.name] = (lambda r: lambda b: r.write(
            jobs[r.name], batches[r.name][b], b * args.batch_candidates))(ref)
    try:
        for b in range(args.batches):
            # rotate the order so that neither side always writes into a warmer cache
            order = methods[b % len(methods):] + methods[: b % len(methods)]
            for m in order:
                start = time.perf_counter()
                writers[m](b)
                spent[m].append(time.perf_counter() - start)
    finally:
        for ref in refs:
            ref.close()
    sizes = [b.rows for b in batches["Store.write_batch"]]  # the same for every method
    # medians over batches: the machine is shared, and one slow moment must not decide
    return {
        "rows": sum(sizes),
        "rates": {m: percentile([n / t for n, t in zip(sizes, spent[m], strict=True)], 50)
                  for m in methods},
        "ratios": {m: percentile([s / t for s, t in zip(spent[m], spent["Store.write_batch"],
                                                        strict=True)], 50) for m in methods},
        "methods": methods,
    }


# --- the big job -----------------------------------------------------------------------------


@dataclass
class BigJob:
    job_id: str
    generations: int
    by_generation: list[list[str]] = field(default_factory=list)
    evaluations: int = 0
    candidates: int = 0


def big_job_rows(job_id: str, n_evals: int, population: int, per_candidate: int, seed: int
                 ) -> Iterator[tuple[str, list[tuple]]]:
    """(table, rows) chunks of one generation at a time, in insertion order; each row's tuple is
    in ``COLUMNS`` order with ``meta`` as a dict and ``created_at`` a datetime."""
    rng = random.Random(seed)
    n_cands = max(population, n_evals // per_candidate)
    generations = max(1, n_cands // population)
    previous: list[str] = []
    seq = 0
    now = datetime.now(UTC)
    for g in range(generations):
        ids = [new_id() for _ in range(population)]
        op = "ga_crossover_mutation" if previous else "seed"
        yield "candidates", [(cid, job_id, prompt_text(rng), "prompt", g, 0, op, {}, seq + i, now)
                             for i, cid in enumerate(ids)]
        seq += population
        if previous:
            yield "lineage", [(cid, pos, p, op, job_id) for cid in ids
                              for pos, p in enumerate(rng.sample(previous, 2))]
        evals = []
        for cid in ids:
            evals.append((job_id, cid, "dev", None, rng.random(), 200, 0, g, now))
            evals += [(job_id, cid, "dev", "50", rng.random(), 50, 0, g, now)
                      for _ in range(per_candidate - 1)]
        yield "evaluations", evals
        yield "generation", [tuple(ids)]
        previous = ids


def fill_big_job(store: Store, url: str, args: argparse.Namespace) -> BigJob:
    job = BigJob(new_id(), 0)
    store.create_job(job_id=job.job_id, name="bench reads", task="bench", algorithm="bench",
                     spec={}, seed=0, status="completed")
    chunks = big_job_rows(job.job_id, args.evaluations, args.population,
                          args.evals_per_candidate, args.seed)
    if store.engine.dialect.name == "sqlite":
        _fill_sqlite(make_url(url).database or "", chunks, job)
    else:
        _fill_postgres(url, chunks, job)
    # The bulk load bypasses write_batch, which keeps a summary row per generation as each one
    # ends; make those rows, so that the job reads like one the driver ran.
    store.refresh_generations(job.job_id)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE generation_summaries")
    return job


def _track(job: BigJob, name: str, rows: list[tuple]) -> bool:
    """Bookkeeping of generations; True when the chunk is data to write."""
    if name == "generation":
        job.by_generation.append(list(rows[0]))
        job.generations += 1
        return False
    if name == "evaluations":
        job.evaluations += len(rows)
    elif name == "candidates":
        job.candidates += len(rows)
    return True


def _fill_sqlite(path: str, chunks: Iterator[tuple[str, list[tuple]]], job: BigJob) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")  # this connection only: a bulk load, not the store
    stamp = datetime.now(UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")
    pending: dict[str, list[tuple]] = {t: [] for t in TABLES}

    def flush() -> None:
        conn.execute("BEGIN")
        for name in ("candidates", "lineage", "evaluations"):  # parents before children
            if pending[name]:
                conn.executemany(_insert_sql(name, "?"), pending[name])
                pending[name] = []
        conn.execute("COMMIT")

    for name, rows in chunks:
        if not _track(job, name, rows):
            continue
        if name == "candidates":
            rows = [(*r[:7], json.dumps(r[7]), r[8], stamp) for r in rows]
        elif name == "evaluations":
            rows = [(*r[:8], stamp) for r in rows]
        pending[name] += rows
        if len(pending["evaluations"]) >= 50_000:
            flush()
    flush()
    conn.close()


def _fill_postgres(url: str, chunks: Iterator[tuple[str, list[tuple]]], job: BigJob) -> None:
    import psycopg
    from psycopg.types.json import Jsonb

    u = make_url(url)
    options = u.query.get("options")
    with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password,
                         dbname=u.database,
                         options=options if isinstance(options, str) else None) as conn:
        pending: dict[str, list[tuple]] = {t: [] for t in TABLES}

        def flush() -> None:
            with conn.transaction(), conn.cursor() as cur:
                for name in ("candidates", "lineage", "evaluations"):
                    if not pending[name]:
                        continue
                    with cur.copy(f"COPY {name} ({', '.join(COLUMNS[name])}) FROM STDIN") as cp:
                        for row in pending[name]:
                            cp.write_row(row)
                    pending[name] = []

        for name, rows in chunks:
            if not _track(job, name, rows):
                continue
            if name == "candidates":
                rows = [(*r[:7], Jsonb(r[7]), *r[8:]) for r in rows]
            pending[name] += rows
            if len(pending["evaluations"]) >= 100_000:
                flush()
        flush()
        conn.execute("ANALYZE candidates")
        conn.execute("ANALYZE lineage")
        conn.execute("ANALYZE evaluations")
        conn.commit()


# --- the dashboard's reads -------------------------------------------------------------------


class StatementLog:
    """The statements an engine runs while active: what EXPLAIN is asked about."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.seen: list[tuple[str, Any]] = []
        self.active = False
        event.listen(engine, "before_cursor_execute", self._record)

    def _record(self, conn: Any, cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.active:
            self.seen.append((statement, parameters))

    @contextlib.contextmanager
    def capture(self) -> Iterator[list[tuple[str, Any]]]:
        self.seen, self.active = [], True
        try:
            yield self.seen
        finally:
            self.active = False


def population_with_scores(store: Store, job_id: str, generation: int) -> list[tuple]:
    """The population of one generation with every evaluation of each member.

    ``Store`` has no read for "scores of these candidates", so the scores come from one query
    on ``evaluations`` by candidate id (its index), next to ``Store.candidates``.
    """
    cands = store.candidates(job_id, generation=generation)
    ids = [c.id for c in cands]
    stmt = select(EvaluationRow.candidate_id, EvaluationRow.split, EvaluationRow.subset,
                  EvaluationRow.value, EvaluationRow.n).where(EvaluationRow.candidate_id.in_(ids))
    with store.engine.connect() as conn:
        scores = conn.execute(stmt).all()
    by_id: dict[str, list] = {}
    for row in scores:
        by_id.setdefault(row.candidate_id, []).append(row)
    return [(c, by_id.get(c.id, [])) for c in cands]


def bench_reads(store: Store, job: BigJob, args: argparse.Namespace) -> list[dict[str, Any]]:
    rng = random.Random(args.seed)
    deep = min(50, job.generations - 1)
    queries: list[tuple[str, Callable[[], int]]] = [
        ("population: Store.candidates(generation=g)",
         lambda: len(store.candidates(job.job_id, generation=rng.randrange(job.generations)))),
        ("population + scores (candidates, then evaluations by id)",
         lambda: len(population_with_scores(store, job.job_id, rng.randrange(job.generations)))),
    ]
    page = getattr(store, "candidate_page", None)
    if page is not None:
        queries.append((
            "population + latest dev score: Store.candidate_page(generation=g)",
            lambda: len(page(job.job_id, generation=rng.randrange(job.generations),
                             limit=None).items)))
    queries += [
        ("top 20: Store.leaderboard(k=20)", lambda: len(store.leaderboard(job.job_id, k=20))),
        (f"ancestry, {deep} generations deep: Store.ancestry",
         lambda: len(store.ancestry(rng.choice(job.by_generation[deep])))),
        # the job page's per-generation summary (best, mean, size of every generation)
        ("generation summaries: Store.generations", lambda: len(store.generations(job.job_id))),
        # what the compare page reads of a running job each time: one page from where it was
        ("100 generation summaries: Store.generations(after=g, limit=100)",
         lambda: len(store.generations(job.job_id, limit=100, after=rng.randrange(
             -1, max(0, job.generations - 100))))),
    ]
    log = StatementLog(store.engine)
    for _label, run in queries:
        for _ in range(3):  # warm the connection pool and the database's cache
            run()
    times: dict[str, list[float]] = {label: [] for label, _ in queries}
    sizes: dict[str, list[int]] = {label: [] for label, _ in queries}
    for _ in range(args.reps):
        # round robin: a busy moment on the shared machine hits every query alike
        for label, run in queries:
            start = time.perf_counter()
            sizes[label].append(run())
            times[label].append(1000 * (time.perf_counter() - start))
    out = []
    for label, run in queries:
        with log.capture() as statements:
            run()
        out.append({"query": label, "p50_ms": percentile(times[label], 50),
                    "p95_ms": percentile(times[label], 95),
                    "rows": round(sum(sizes[label]) / len(sizes[label])),
                    "statements": list(statements)})
    return out


def explain(store: Store, statements: Sequence[tuple[str, Any]]) -> list[str]:
    """EXPLAIN (ANALYZE, BUFFERS) of each statement on PostgreSQL, as text lines."""
    lines: list[str] = []
    raw = store.engine.raw_connection()
    try:
        cur = raw.cursor()
        for statement, params in statements:
            cur.execute(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", params)
            lines.append(statement.split("\n", 1)[0][:120] + " ...")
            lines += ["    " + r[0] for r in cur.fetchall()]
        raw.rollback()
    finally:
        raw.close()
    return lines


# --- the run -----------------------------------------------------------------------------------


@contextlib.contextmanager
def open_backend(name: str, args: argparse.Namespace) -> Iterator[tuple[Store, str]]:
    with contextlib.ExitStack() as stack:
        if name == "postgres":
            url = stack.enter_context(pg_schema(args.postgres_url))
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="evo-bench-store-"))
            url = f"sqlite:///{Path(folder) / 'store.db'}"
        store = stack.enter_context(Store(url))
        yield store, url


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--backends", nargs="+", choices=("sqlite", "postgres"),
                   default=["sqlite", "postgres"])
    p.add_argument("--batches", type=int, default=10, help="write batches (generations)")
    p.add_argument("--batch-candidates", type=int, default=100, help="candidates per batch")
    p.add_argument("--calls-per-candidate", type=int, default=20,
                   help="ledger rows per candidate in a batch (its evaluation calls)")
    p.add_argument("--evaluations", type=int, default=100_000,
                   help="evaluations of the big job (the full target: 1000000)")
    p.add_argument("--population", type=int, default=20, help="candidates per generation")
    p.add_argument("--evals-per-candidate", type=int, default=4)
    p.add_argument("--reps", type=int, default=30, help="timed calls per query")
    p.add_argument("--postgres-url", default=DEFAULT_PG_URL,
                   help="server for the postgres backend (a scratch schema is made and dropped)")
    p.add_argument("--explain", action="store_true",
                   help="EXPLAIN ANALYZE the statements of PostgreSQL queries over 50 ms")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print its tables, and return the figures per backend."""
    args = parse_args(argv)
    results: dict[str, Any] = {}
    for backend in args.backends:
        with open_backend(backend, args) as (store, url):
            writes = bench_writes(store, url, args)
            start = time.perf_counter()
            job = fill_big_job(store, url, args)
            filled = time.perf_counter() - start
            reads = bench_reads(store, job, args)
            plans = []
            if args.explain and backend == "postgres":
                for q in reads:
                    if q["p95_ms"] >= TARGET_MS:
                        plans.append(f"-- {q['query']}: p95 {q['p95_ms']:.1f} ms")
                        plans += explain(store, q["statements"])
        results[backend] = {"writes": writes, "reads": reads, "job": job, "fill_s": filled}
        report(backend, results[backend], plans)
    return results


def report(backend: str, res: dict[str, Any], plans: list[str]) -> None:
    writes, reads, job = res["writes"], res["reads"], res["job"]
    rates = writes["rates"]
    print(f"\n== {backend} == (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    print(f"writes: {writes['rows']:,} rows per method (candidates, lineage, evaluations, "
          f"LLM calls), one transaction per batch")
    print(table(["method", "rows/s (median batch)", "Store / this (median of batches)"],
                [[m, r, writes["ratios"][m]] for m, r in rates.items()]))
    ratio = writes["ratios"]["DB-API executemany"]
    print(f"target Store >= {WRITE_TARGET} x bare executemany: "
          f"{'met' if ratio >= WRITE_TARGET else 'MISSED'} ({ratio:.2f})")
    print(f"\nreads: one job, {job.evaluations:,} evaluations, {job.candidates:,} candidates in "
          f"{job.generations:,} generations (filled in {res['fill_s']:.1f} s)")
    print(table(["query", "rows", "p50 ms", "p95 ms", f"p95 < {TARGET_MS:g} ms"],
                [[q["query"], q["rows"], q["p50_ms"], q["p95_ms"],
                  "met" if q["p95_ms"] < TARGET_MS else "MISSED"] for q in reads]))
    for line in plans:
        print(line)


if __name__ == "__main__":
    main()
    sys.exit(0)
