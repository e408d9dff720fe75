"""``Store``: the one way the rest of Evo reads and writes the record.

Contract: reads return plain records (``JobRecord``...) or ``Candidate`` objects, never ORM rows.
Writes are whole units: ``write_batch`` commits everything it was given or nothing. Database
errors (a duplicate id, an unknown parent, a lost connection) propagate as SQLAlchemy exceptions;
invalid arguments raise ``ValueError`` and a missing job on update raises ``LookupError``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, Table, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from evo.candidate import Candidate, Score
from storage import bulk, convert, db, leases, summaries
from storage import queries as q
from storage.models import (
    ID_LEN,
    ApiKeyRow,
    CandidateRow,
    CheckpointRow,
    EvaluationRow,
    EventRow,
    JobLeaseRow,
    JobRow,
    LineageRow,
    LLMCallRow,
    ResponseRow,
    utcnow,
)
from storage.records import (
    JOB_STATUSES,
    ApiKeyRecord,
    CandidatePage,
    EvaluationRecord,
    GenerationSummary,
    HeldJob,
    JobRecord,
    JobState,
    Lease,
    LineageEdge,
    LLMCallRecord,
)

MIN_PREFIX = 6
UPDATABLE_JOB_FIELDS = frozenset(
    {
        "status",
        "reason",
        "best_candidate_id",
        "stats",
        "started_at",
        "ended_at",
        "heartbeat_at",
        "control",
        "control_at",
    }
)
_UPSERT_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_CANDIDATES: Table = CandidateRow.__table__  # type: ignore[assignment]
_LINEAGE: Table = LineageRow.__table__  # type: ignore[assignment]
_EVALUATIONS: Table = EvaluationRow.__table__  # type: ignore[assignment]
_LLM_CALLS: Table = LLMCallRow.__table__  # type: ignore[assignment]
_RESPONSES: Table = ResponseRow.__table__  # type: ignore[assignment]
_RESPONSE_COLUMNS = ("job_id", "seq", "digest", "response", "created_at")


class Store:
    """Repository over the Evo database (SQLite file by default, Postgres for the service)."""

    def __init__(self, url: str | None = None, *, upgrade: bool = True) -> None:
        self._url = db.resolve_url(url)
        self._engine = db.make_engine(self._url)
        writer = self._engine.execution_options(**{db.WRITE_OPTION: True})
        self._reading = sessionmaker(self._engine, expire_on_commit=False)
        self._writing = sessionmaker(writer, expire_on_commit=False)
        if upgrade:
            self.upgrade()

    @property
    def url(self) -> str:
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Store({self.url!r})"

    @property
    def engine(self) -> Engine:
        return self._engine

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def upgrade(self) -> None:
        """Bring the schema to the newest migration."""
        db.upgrade(self._engine)

    def close(self) -> None:
        self._engine.dispose()

    # --- jobs ----------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        job_id: str,
        name: str,
        task: str,
        algorithm: str,
        spec: dict[str, Any],
        seed: int,
        status: str = "queued",
        owner: str | None = None,
        lease: tuple[str, float] | None = None,
    ) -> JobRecord:
        """A new job. With ``lease`` (holder, seconds) it is created running, claimed by that
        holder under epoch 1."""
        if not job_id or len(job_id) > ID_LEN:
            raise ValueError(f"job id must be 1..{ID_LEN} characters, got {job_id!r}")
        _check_status(status)
        if lease is not None and status != "running":
            raise ValueError("only a job created running is created with a lease")
        now = utcnow()
        row = JobRow(
            id=job_id,
            name=name,
            task=task,
            algorithm=algorithm,
            spec=dict(spec),
            seed=seed,
            status=status,
            stats={},
            owner=owner,
            created_at=now,
            lease_epoch=0,
        )
        if lease is not None:
            holder, ttl_s = lease
            row.lease_holder, row.lease_epoch = holder, 1
            row.lease_expires_at = now + timedelta(seconds=ttl_s)
            row.started_at = row.heartbeat_at = now
        with self._writing.begin() as session:
            session.add(row)
            if lease is not None:
                session.flush()
                leases.record(session, Lease(job_id, 1, lease[0]), now)
        return convert.job_record(row)

    def update_job(self, job_id: str, **fields: Any) -> None:
        """Set some of: status, reason, best_candidate_id, stats, started_at, ended_at,
        heartbeat_at, control, control_at (a lease's fields move only by claims and takeovers).
        Raises ``LookupError`` when there is no such job."""
        with self._writing.begin() as session:
            _update_job(session, job_id, fields)

    def transition(self, job_id: str, from_status: Iterable[str], **fields: Any) -> bool:
        """Update the job only if its status is one of ``from_status``, atomically (one
        conditional UPDATE), so that two processes cannot both make the same move. True when it
        moved; False when the job is in another state or does not exist."""
        allowed = list(from_status)
        for status in allowed:
            _check_status(status)
        with self._writing.begin() as session:
            return _update_job(session, job_id, fields, only_from=allowed) > 0

    def job_control(self, job_id: str) -> JobState | None:
        """(status, pending control request, epoch) of a job: what a running driver polls."""
        with self._reading() as session:
            row = session.execute(
                select(JobRow.status, JobRow.control, JobRow.lease_epoch).where(
                    JobRow.id == job_id
                )
            ).first()
        return None if row is None else JobState(row.status, row.control, row.lease_epoch)

    def request_control(self, job_id: str, control: str) -> bool:
        """Ask a running job's driver to ``cancel``, ``pause`` or ``interrupt``. A cancel replaces
        any other request (and keeps the time of an earlier cancel, from which an unheeded one
        is enforced); the others wait behind one already pending. False when the job is not
        running."""
        if control not in ("cancel", "pause", "interrupt"):
            raise ValueError(f"unknown control request {control!r}")
        stmt = update(JobRow).where(JobRow.id == job_id, JobRow.status == "running")
        if control == "cancel":
            stmt = stmt.where(or_(JobRow.control.is_(None), JobRow.control != "cancel"))
        else:
            stmt = stmt.where(JobRow.control.is_(None))
        with self._writing.begin() as session:
            moved = session.execute(
                stmt.values(control=control, control_at=utcnow()),
                execution_options={"synchronize_session": False},
            ).rowcount  # type: ignore[attr-defined]
            if moved:
                return True
            status = session.scalar(select(JobRow.status).where(JobRow.id == job_id))
        return status == "running"

    # --- leases (see storage/leases.py) --------------------------------------------------------

    def claim_job(
        self,
        job_id: str,
        holder: str,
        ttl_s: float,
        *,
        from_status: Iterable[str] = ("queued",),
        take_over: bool = False,
    ) -> Lease | None:
        """Run the job under a new epoch held by ``holder`` if its status is one of
        ``from_status`` (a running one only once its lease has expired, or with ``take_over``);
        None when it is not to be had."""
        allowed = list(from_status)
        for status in allowed:
            _check_status(status)
        with self._writing.begin() as session:
            return leases.claim(session, job_id, holder, ttl_s, allowed, now=utcnow(),
                                take_over=take_over)

    def renew_leases(self, holder: str, ttl_s: float) -> list[HeldJob]:
        """Extend every lease ``holder`` has; the running jobs it still holds."""
        with self._writing.begin() as session:
            return leases.renew(session, holder, ttl_s, now=utcnow())

    def stop_running(self, job_id: str, epoch: int, status: str, reason: str) -> str | None:
        """End the epoch of a job running under ``epoch`` from outside its driver (which is
        fenced out from then on): the job moves to ``status`` with ``reason`` and a JobEnded
        event; one stopped as interrupted ends as a pending cancel or pause asked. The status
        it moved to; None when it had moved on already."""
        _check_status(status)
        with self._writing.begin() as session:
            return leases.stop_running(session, job_id, epoch, status, reason, now=utcnow())

    def take_over_expired(
        self, reason: str, *, silent_for_s: float | None = None
    ) -> list[tuple[str, str]]:
        """Running jobs whose lease ran out (or, with ``silent_for_s``, was last renewed that
        long ago) leave ``running``: as interrupted (with ``reason``), or as a pending request
        asked (cancelled, paused). (id, new status) of each."""
        now = utcnow()
        silent = None if silent_for_s is None else now - timedelta(seconds=silent_for_s)
        with self._reading() as session:
            found = leases.expired(session, now=now, renewed_before=silent)
        out = []
        for job_id, epoch in found:
            if status := self.stop_running(job_id, epoch, "interrupted", reason):
                out.append((job_id, status))
        return out

    def enforce_cancels(self, grace_s: float) -> list[str]:
        """Cancel running jobs whose cancel has waited over ``grace_s`` for their driver."""
        before = utcnow() - timedelta(seconds=grace_s)
        with self._reading() as session:
            found = leases.unheeded_cancels(session, before=before)
        return [job_id for job_id, epoch in found
                if self.stop_running(job_id, epoch, "cancelled", "cancelled by request")]

    def lease_history(self, job_id: str) -> list[tuple[int, str]]:
        """(epoch, holder) of every claim of the job, oldest first."""
        with self._reading() as session:
            rows = session.execute(
                select(JobLeaseRow.epoch, JobLeaseRow.holder)
                .where(JobLeaseRow.job_id == job_id)
                .order_by(JobLeaseRow.epoch)
            )
            return [(r.epoch, r.holder) for r in rows]

    def get_job(self, job_id: str) -> JobRecord | None:
        """The job with this id, or with this unique prefix of an id (at least 6 characters)."""
        with self._reading() as session:
            row = session.get(JobRow, job_id)
            if row is None and len(job_id) >= MIN_PREFIX:
                row = _by_prefix(session, job_id)
            return None if row is None else convert.job_record(row)

    def list_jobs(
        self,
        *,
        status: str | None = None,
        limit: int = 50,
        offset: int = 0,
        owner: str | None = None,
        algorithm: str | None = None,
        task: str | None = None,
        oldest_first: bool = False,
    ) -> list[JobRecord]:
        """Newest first (or oldest first), optionally filtered by status, owner, algorithm,
        task."""
        if oldest_first:
            stmt = select(JobRow).order_by(JobRow.created_at, JobRow.id)
        else:
            stmt = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id.desc())
        for column, value in (
            (JobRow.status, status),
            (JobRow.owner, owner),
            (JobRow.algorithm, algorithm),
            (JobRow.task, task),
        ):
            if value is not None:
                stmt = stmt.where(column == value)
        with self._reading() as session:
            rows = session.scalars(stmt.limit(limit).offset(offset)).all()
            return [convert.job_record(r) for r in rows]

    # --- writes --------------------------------------------------------------------------------

    def write_batch(
        self,
        job_id: str,
        *,
        candidates: Iterable[Candidate] = (),
        evaluations: Iterable[EvaluationRecord | Score] = (),
        llm_calls: Iterable[LLMCallRecord] = (),
        checkpoint: tuple[int, dict[str, Any]] | None = None,
        job: dict[str, Any] | None = None,
        events: Iterable[dict[str, Any]] = (),
        lease: Lease | None = None,
    ) -> None:
        """Record one step of a job in a single transaction: candidates with their lineage,
        evaluations, LLM calls, optionally a checkpoint (replacing one of the same generation)
        and job field updates. One INSERT per table (an executemany of prepared tuples for the
        bulk tables); on any error nothing is written. A checkpoint marks the end of a
        generation: the job's generation summaries are brought up to date with it. Under a
        ``lease``, nothing is written (``LeaseLost``) unless the job still runs under it."""
        cands = list(candidates)
        scores = list(evaluations)
        now = utcnow()
        evals = convert.evaluation_rows(job_id, scores, now)
        calls = convert.llm_call_rows(job_id, list(llm_calls), now)
        scored = [e.candidate_id for e in scores if e.split == summaries.SPLIT]
        with self._writing.begin() as session:
            if lease is not None:
                leases.fence(session, lease)
            conn = session.connection()
            if cands or scored or checkpoint is not None:
                # one writer of a job's sequence numbers and generation summaries at a time
                q.lock_job(session, job_id)
            if cands:
                seq = q.next_seq(session, job_id)
                made = convert.candidate_rows(job_id, seq, cands, now)
                bulk.insert_rows(conn, _CANDIDATES, convert.CANDIDATE_COLUMNS, made)
                edges = convert.lineage_rows(job_id, cands)
                bulk.insert_rows(conn, _LINEAGE, convert.LINEAGE_COLUMNS, edges)
            bulk.insert_rows(conn, _EVALUATIONS, convert.EVALUATION_COLUMNS, evals)
            bulk.insert_rows(conn, _LLM_CALLS, convert.LLM_CALL_COLUMNS, calls)
            events = list(events)
            if stored := [
                {"job_id": job_id, "kind": e["kind"], "payload": e, "created_at": now}
                for e in events
            ]:
                session.execute(insert(EventRow), stored)
            summaries.note_writes(session, job_id, cands, scored)
            if checkpoint is not None:
                _upsert_checkpoint(session, job_id, *checkpoint, now=now)
                # a generation ended: its summary (and any other stale one) is computed now
                summaries.refresh(session, job_id)
            summaries.note_totals(session, job_id, events)
            if job:
                _update_job(session, job_id, job)

    # --- reads ---------------------------------------------------------------------------------

    def candidates(self, job_id: str, *, generation: int | None = None) -> list[Candidate]:
        """In insertion order."""
        criteria = [CandidateRow.job_id == job_id]
        if generation is not None:
            criteria.append(CandidateRow.generation == generation)
        with self._reading() as session:
            return q.load_candidates(session, *criteria)

    def candidate(self, candidate_id: str) -> Candidate | None:
        with self._reading() as session:
            found = q.load_candidates(session, CandidateRow.id == candidate_id)
        return found[0] if found else None

    def evaluations(self, job_id: str, *, split: str | None = None) -> list[EvaluationRecord]:
        """In the order they were written."""
        stmt = select(EvaluationRow).where(EvaluationRow.job_id == job_id)
        if split is not None:
            stmt = stmt.where(EvaluationRow.split == split)
        with self._reading() as session:
            return [
                convert.evaluation_record(r)
                for r in session.scalars(stmt.order_by(EvaluationRow.id))
            ]

    def leaderboard(
        self, job_id: str, *, split: str = "dev", k: int = 10, full_only: bool = True
    ) -> list[tuple[Candidate, EvaluationRecord]]:
        """Top ``k`` candidates by their latest evaluation on ``split`` (on the whole split when
        ``full_only``), best first; ties go to the earlier candidate."""
        with self._reading() as session:
            return q.leaderboard(session, job_id, split, k, full_only)

    def generations(
        self, job_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[GenerationSummary]:
        """Per generation, from each candidate's best 'dev' evaluation (any subset): the rows
        kept when generations end, aggregated afresh for generations changed since. A page:
        the generations after ``after``, at most ``limit`` of them."""
        with self._reading() as session:
            return summaries.read(session, job_id, after=after, limit=limit)

    def totals_upto(self, job_id: str, generation: int) -> tuple[int, int] | None:
        """(calls, tokens) the job had paid for at the end of the last generation up to
        ``generation`` that ended; None when none has."""
        with self._reading() as session:
            return summaries.totals_upto(session, job_id, generation)

    def refresh_generations(self, job_id: str) -> int:
        """Recompute and store every generation summary of a job, e.g. after rows were loaded
        without ``write_batch``; returns the number of generations."""
        with self._writing.begin() as session:
            q.lock_job(session, job_id)
            return summaries.refresh(session, job_id, everything=True)

    def ancestry(self, candidate_id: str) -> list[Candidate]:
        """All ancestors, each once, nearest first, with their parents; ``meta`` is left empty
        (what the lineage views show does not need it; ``candidate`` gives one in full)."""
        with self._reading() as session:
            return q.ancestry(session, candidate_id)

    def lineage(self, job_id: str) -> list[LineageEdge]:
        with self._reading() as session:
            return q.lineage_edges(session, job_id)

    def llm_calls(self, job_id: str) -> list[LLMCallRecord]:
        stmt = select(LLMCallRow).where(LLMCallRow.job_id == job_id).order_by(LLMCallRow.id)
        with self._reading() as session:
            return [convert.llm_call_record(r) for r in session.scalars(stmt)]

    def call_totals(self, job_id: str) -> dict[str, Any]:
        """``calls``: calls sent to a model (cache misses); ``cached``: cache hits; tokens and
        ``latency_s``: summed over the calls sent, i.e. what the job paid; ``errors``: failed
        calls."""
        with self._reading() as session:
            return q.call_totals(session, job_id)

    def write_paid(
        self,
        job_id: str,
        calls: Iterable[LLMCallRecord],
        responses: Iterable[tuple[int, str, dict[str, Any]]],
        *,
        lease: Lease | None = None,
    ) -> None:
        """Ledger rows of paid calls and their responses, in one transaction, as soon as they
        return: a crash later in the generation must neither lose nor repeat what was paid.
        Under a ``lease``, fenced like ``write_batch``."""
        now = utcnow()
        rows = convert.llm_call_rows(job_id, list(calls), now)
        answers = [(job_id, i, k, r, now) for i, k, r in responses]
        with self._writing.begin() as session:
            if lease is not None:
                leases.fence(session, lease)
            conn = session.connection()
            bulk.insert_rows(conn, _LLM_CALLS, convert.LLM_CALL_COLUMNS, rows)
            bulk.insert_rows(conn, _RESPONSES, _RESPONSE_COLUMNS, answers)

    def paid_responses(self, job_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Every response this job has paid for, as (request key, response), in paying order."""
        with self._reading() as session:
            rows = session.execute(
                select(ResponseRow.digest, ResponseRow.response)
                .where(ResponseRow.job_id == job_id)
                .order_by(ResponseRow.seq)
            )
            return [(r.digest, r.response) for r in rows]

    def paid_response(self, job_id: str, digest: str) -> dict[str, Any] | None:
        """One paid response of a job by its request key (for a meta-LLM call, with the request
        that was sent): how a candidate's ``made_by`` is shown."""
        with self._reading() as session:
            row = session.execute(
                select(ResponseRow.response).where(
                    ResponseRow.job_id == job_id, ResponseRow.digest == digest
                )
            ).first()
        return None if row is None else dict(row.response)

    def events(
        self, job_id: str, *, kind: str | None = None, after: int = 0
    ) -> list[tuple[int, dict[str, Any]]]:
        """Stored events of a job as (id, payload), oldest first, with id > ``after``."""
        criteria = [EventRow.job_id == job_id, EventRow.id > after]
        if kind is not None:
            criteria.append(EventRow.kind == kind)
        with self._reading() as session:
            rows = session.execute(
                select(EventRow.id, EventRow.payload).where(*criteria).order_by(EventRow.id)
            )
            return [(r.id, r.payload) for r in rows]

    def latest_checkpoint(self, job_id: str) -> tuple[int, dict[str, Any]] | None:
        stmt = (
            select(CheckpointRow.generation, CheckpointRow.state)
            .where(CheckpointRow.job_id == job_id)
            .order_by(CheckpointRow.generation.desc())
            .limit(1)
        )
        with self._reading() as session:
            row = session.execute(stmt).first()
        return None if row is None else (row.generation, dict(row.state))


    # --- REST API: listings and keys ------------------------------------------------------------

    def count_jobs(
        self,
        *,
        status: str | None = None,
        owner: str | None = None,
        algorithm: str | None = None,
        task: str | None = None,
    ) -> int:
        """How many jobs ``list_jobs`` with the same filters would find without a limit."""
        criteria = q.job_filters(status=status, owner=owner, algorithm=algorithm, task=task)
        with self._reading() as session:
            return q.count_jobs(session, criteria)

    def jobs_by_status(self) -> dict[str, int]:
        """Number of jobs in each status (statuses without jobs are left out)."""
        with self._reading() as session:
            return q.jobs_by_status(session)

    def candidate_page(
        self,
        job_id: str,
        *,
        generation: int | None = None,
        operator: str | None = None,
        min_score: float | None = None,
        max_score: float | None = None,
        sort: str = "created",
        limit: int | None = 50,
        offset: int = 0,
    ) -> CandidatePage:
        """A job's candidates with their latest dev score, filtered, ordered and paged by the
        database. ``sort``: one of ``CANDIDATE_SORTS``; ``limit=None``: all from ``offset``."""
        if (limit is not None and limit < 0) or offset < 0:
            raise ValueError("limit and offset must not be negative")
        with self._reading() as session:
            return q.candidate_page(
                session,
                job_id,
                generation=generation,
                operator=operator,
                min_score=min_score,
                max_score=max_score,
                sort=sort,
                limit=limit,
                offset=offset,
            )

    def candidate_job_id(self, candidate_id: str) -> str | None:
        """The job a candidate belongs to, or None when there is no such candidate."""
        with self._reading() as session:
            return q.candidate_job_id(session, candidate_id)

    def children(self, candidate_id: str) -> list[str]:
        """Ids of the candidates that have this one as a parent, in insertion order."""
        with self._reading() as session:
            return q.children(session, candidate_id)

    def candidate_evaluations(self, candidate_id: str) -> list[EvaluationRecord]:
        """Every evaluation of one candidate, in the order they were written."""
        with self._reading() as session:
            return q.candidate_evaluations(session, candidate_id)

    def create_api_key(
        self, *, name: str, token_sha256: str, hint: str, admin: bool = False
    ) -> ApiKeyRecord:
        """Record a key by the hash of its token (the token itself is never stored)."""
        if not name or len(name) > 64:
            raise ValueError(f"key name must be 1..64 characters, got {name!r}")
        if len(token_sha256) != 64:
            raise ValueError("token_sha256 must be a hex SHA-256 digest")
        row = ApiKeyRow(
            name=name, token_sha256=token_sha256, hint=hint, admin=admin, created_at=utcnow()
        )
        with self._writing.begin() as session:
            session.add(row)
            session.flush()
            return _api_key_record(row)

    def api_key(self, token_sha256: str) -> ApiKeyRecord | None:
        """The active (not revoked) key with this token hash."""
        stmt = select(ApiKeyRow).where(
            ApiKeyRow.token_sha256 == token_sha256, ApiKeyRow.revoked_at.is_(None)
        )
        with self._reading() as session:
            row = session.scalars(stmt).first()
            return None if row is None else _api_key_record(row)

    def api_keys(self) -> list[ApiKeyRecord]:
        """Every key, revoked ones included, oldest first."""
        with self._reading() as session:
            rows = session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id)).all()
            return [_api_key_record(r) for r in rows]

    def revoke_api_keys(self, name: str) -> int:
        """Revoke every active key of ``name``; returns how many were revoked."""
        stmt = (
            update(ApiKeyRow)
            .where(ApiKeyRow.name == name, ApiKeyRow.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )
        with self._writing.begin() as session:
            result = session.execute(stmt, execution_options={"synchronize_session": False})
            return int(result.rowcount)  # type: ignore[attr-defined]


def _api_key_record(row: ApiKeyRow) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        hint=row.hint,
        admin=row.admin,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )


def _check_status(status: str) -> None:
    if status not in JOB_STATUSES:
        raise ValueError(f"unknown job status {status!r}; expected one of {sorted(JOB_STATUSES)}")


def _update_job(
    session: Session,
    job_id: str,
    fields: dict[str, Any],
    *,
    only_from: list[str] | None = None,
) -> int:
    unknown = set(fields) - UPDATABLE_JOB_FIELDS
    if unknown:
        raise ValueError(f"cannot update job field(s) {sorted(unknown)}")
    if "status" in fields:
        _check_status(fields["status"])
    if not fields:
        return 0
    stmt = update(JobRow).where(JobRow.id == job_id)
    if only_from is not None:
        stmt = stmt.where(JobRow.status.in_(only_from))
    result = session.execute(
        stmt.values(**fields), execution_options={"synchronize_session": False}
    )
    moved: int = result.rowcount  # type: ignore[attr-defined]
    if moved == 0 and only_from is None:
        raise LookupError(f"no job {job_id!r}")
    return moved


def _by_prefix(session: Session, prefix: str) -> JobRow | None:
    # Fetch two at most: one is an answer, two is enough to call the prefix ambiguous.
    rows = session.scalars(
        select(JobRow).where(JobRow.id.startswith(prefix, autoescape=True)).limit(2)
    ).all()
    if len(rows) > 1:
        shown = ", ".join(r.id for r in rows)
        raise ValueError(f"job id prefix {prefix!r} is ambiguous (matches {shown}, ...)")
    return rows[0] if rows else None


def _upsert_checkpoint(
    session: Session, job_id: str, generation: int, state: dict[str, Any], *, now: datetime
) -> None:
    values = {"job_id": job_id, "generation": generation, "state": dict(state), "created_at": now}
    make_insert = _UPSERT_INSERTS.get(session.get_bind().dialect.name)
    if make_insert is None:  # any other backend: emulate with the ORM
        session.merge(CheckpointRow(**values))
        return
    stmt = make_insert(CheckpointRow).values(values)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=["job_id", "generation"],
            set_={"state": stmt.excluded.state, "created_at": stmt.excluded.created_at},
        )
    )
