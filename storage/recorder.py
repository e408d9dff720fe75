"""The run recorder: what a job's driver writes while it runs, and reads back to resume.

``RecorderStore`` owns the writes of a run (``write_batch``: candidates with their lineage,
evaluations, LLM calls, events, a checkpoint and the job's fields, as one transaction;
``write_paid``: the ledger of paid calls and their responses) and the reads a resumed run needs
(its candidates, its paid responses, its latest checkpoint). Writes are whole units: all of it is
committed or nothing; under a lease, nothing once the lease is lost (``LeaseLost``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Table, delete, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from evo.candidate import Candidate, Outcome, Score
from storage import bulk, convert, leases, summaries
from storage import queries as q
from storage.base import StoreBase
from storage.jobs import apply_update, job_update
from storage.models import (
    CandidateRow,
    CheckpointRow,
    EvaluationRow,
    EventRow,
    LineageRow,
    LLMCallRow,
    OutcomeRow,
    ResponseRow,
    utcnow,
)
from storage.records import EvaluationRecord, JobUpdate, Lease, LLMCallRecord

_UPSERT_INSERTS: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}
_CANDIDATES: Table = CandidateRow.__table__  # type: ignore[assignment]
_LINEAGE: Table = LineageRow.__table__  # type: ignore[assignment]
_EVALUATIONS: Table = EvaluationRow.__table__  # type: ignore[assignment]
_LLM_CALLS: Table = LLMCallRow.__table__  # type: ignore[assignment]
_RESPONSES: Table = ResponseRow.__table__  # type: ignore[assignment]
_OUTCOMES: Table = OutcomeRow.__table__  # type: ignore[assignment]
_RESPONSE_COLUMNS = ("job_id", "seq", "digest", "response", "created_at")


class RecorderStore(StoreBase):
    """What a run writes (and reads back to resume)."""

    def write_batch(
        self,
        job_id: str,
        *,
        candidates: Iterable[Candidate] = (),
        evaluations: Iterable[EvaluationRecord | Score] = (),
        llm_calls: Iterable[LLMCallRecord] = (),
        checkpoint: tuple[int, dict[str, Any]] | None = None,
        job: JobUpdate | Mapping[str, Any] | None = None,
        events: Iterable[dict[str, Any]] = (),
        lease: Lease | None = None,
        outcomes: Iterable[tuple[str, str, Outcome]] = (),
    ) -> None:
        """Record one step of a job in a single transaction: candidates with their lineage,
        evaluations, LLM calls, per-example outcomes ((candidate id, split, outcome) of the
        final phase), optionally a checkpoint (replacing one of the same generation) and the
        job's fields (a ``JobUpdate``, or a mapping of its field names). One INSERT per
        table (an executemany of prepared tuples for the bulk tables); on any error nothing is
        written. A checkpoint marks the end of a generation: the job's generation summaries are
        brought up to date with it. Under a ``lease``, nothing is written (``LeaseLost``)
        unless the job still runs under it."""
        changes = None if job is None else job_update(job)
        cands = list(candidates)
        scores = list(evaluations)
        now = utcnow()
        evals = convert.evaluation_rows(job_id, scores, now)
        calls = convert.llm_call_rows(job_id, list(llm_calls), now)
        per_example = convert.outcome_rows(job_id, outcomes, now)
        scored = [e.candidate_id for e in scores if e.split == summaries.SPLIT]
        with self._write() as session:
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
            bulk.insert_rows(conn, _OUTCOMES, convert.OUTCOME_COLUMNS, per_example)
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
            if changes is not None:
                apply_update(session, job_id, changes)

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
        with self._write() as session:
            if lease is not None:
                leases.fence(session, lease)
            conn = session.connection()
            bulk.insert_rows(conn, _LLM_CALLS, convert.LLM_CALL_COLUMNS, rows)
            bulk.insert_rows(conn, _RESPONSES, _RESPONSE_COLUMNS, answers)

    def rewind(
        self, job_id: str, *, evaluations: int, outcomes: int, lease: Lease | None = None
    ) -> int:
        """Keep only the job's first ``evaluations`` scores and ``outcomes`` per-example rows (in
        the order they were written): what a resumed job's checkpoint knew of. Those written
        after it, by the flushes at a search's end and in its final phase, are written again
        as the job replays that part, and would otherwise be there twice. Fenced like
        ``write_batch``; the number of rows removed."""
        removed = 0
        with self._write() as session:
            if lease is not None:
                leases.fence(session, lease)
            for row, keep in ((EvaluationRow, evaluations), (OutcomeRow, outcomes)):
                later = (select(row.id).where(row.job_id == job_id).order_by(row.id)
                         .offset(keep))
                ids = list(session.scalars(later))
                if not ids:
                    continue
                if row is EvaluationRow:  # their generations' summaries are computed again
                    scored = session.scalars(select(EvaluationRow.candidate_id).where(
                        EvaluationRow.id.in_(ids), EvaluationRow.split == summaries.SPLIT))
                    summaries.note_writes(session, job_id, [], sorted(set(scored)))
                for start in range(0, len(ids), 500):
                    session.execute(delete(row).where(row.id.in_(ids[start : start + 500])))
                removed += len(ids)
        return removed

    # --- what a run reads back -----------------------------------------------------------------

    def candidates(self, job_id: str, *, generation: int | None = None) -> list[Candidate]:
        """In insertion order."""
        criteria = [CandidateRow.job_id == job_id]
        if generation is not None:
            criteria.append(CandidateRow.generation == generation)
        with self._read() as session:
            return q.load_candidates(session, *criteria)

    def candidate(self, candidate_id: str) -> Candidate | None:
        with self._read() as session:
            found = q.load_candidates(session, CandidateRow.id == candidate_id)
        return found[0] if found else None

    def paid_responses(self, job_id: str) -> list[tuple[str, dict[str, Any]]]:
        """Every response this job has paid for, as (request key, response), in paying order."""
        with self._read() as session:
            rows = session.execute(
                select(ResponseRow.digest, ResponseRow.response)
                .where(ResponseRow.job_id == job_id)
                .order_by(ResponseRow.seq)
            )
            return [(r.digest, r.response) for r in rows]

    def latest_checkpoint(self, job_id: str) -> tuple[int, dict[str, Any]] | None:
        stmt = (
            select(CheckpointRow.generation, CheckpointRow.state)
            .where(CheckpointRow.job_id == job_id)
            .order_by(CheckpointRow.generation.desc())
            .limit(1)
        )
        with self._read() as session:
            row = session.execute(stmt).first()
        return None if row is None else (row.generation, dict(row.state))


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
