"""Conversions between table rows and the records and candidates the store hands out."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from evo.candidate import Candidate, Score
from storage.models import CandidateRow, EvaluationRow, JobRow, LLMCallRow
from storage.records import EvaluationRecord, JobRecord, LLMCallRecord


def job_record(row: JobRow) -> JobRecord:
    return JobRecord(
        id=row.id,
        name=row.name,
        task=row.task,
        algorithm=row.algorithm,
        spec=dict(row.spec),
        seed=row.seed,
        status=row.status,
        reason=row.reason,
        best_candidate_id=row.best_candidate_id,
        stats=dict(row.stats),
        created_at=row.created_at,
        started_at=row.started_at,
        ended_at=row.ended_at,
        heartbeat_at=row.heartbeat_at,
        owner=row.owner,
        control=row.control,
        control_at=row.control_at,
        lease_holder=row.lease_holder,
        lease_epoch=row.lease_epoch,
        lease_expires_at=row.lease_expires_at,
    )


def evaluation_record(row: EvaluationRow) -> EvaluationRecord:
    return EvaluationRecord(
        candidate_id=row.candidate_id,
        split=row.split,
        value=row.value,
        n=row.n,
        failures=row.failures,
        subset=row.subset,
        generation=row.generation,
        created_at=row.created_at,
    )


def llm_call_record(row: LLMCallRow) -> LLMCallRecord:
    return LLMCallRecord(
        job_id=row.job_id,
        candidate_id=row.candidate_id,
        purpose=row.purpose,
        model=row.model,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        latency_s=row.latency_s,
        cached=row.cached,
        error=row.error,
        created_at=row.created_at,
    )


def to_candidate(row: CandidateRow, parents: Sequence[str]) -> Candidate:
    return Candidate(
        id=row.id,
        text=row.text,
        generation=row.generation,
        operator=row.operator,
        parents=tuple(parents),
        kind=row.kind,  # type: ignore[arg-type]  # only valid kinds are ever written
        island=row.island,
        meta=dict(row.meta),
    )


# Column orders of the tuples below (what ``storage.bulk.insert_rows`` is given).
CANDIDATE_COLUMNS = (
    "id", "job_id", "text", "kind", "generation", "island", "operator", "meta", "seq", "created_at"
)
LINEAGE_COLUMNS = ("child_id", "parent_id", "position", "operator", "job_id")
EVALUATION_COLUMNS = (
    "job_id", "candidate_id", "split", "subset", "value", "n", "failures", "generation",
    "created_at",
)
LLM_CALL_COLUMNS = (
    "job_id", "candidate_id", "purpose", "model", "prompt_tokens", "completion_tokens",
    "latency_s", "cached", "error", "created_at",
)


def candidate_rows(
    job_id: str, seq_start: int, candidates: Sequence[Candidate], now: datetime
) -> list[tuple]:
    return [
        (c.id, job_id, c.text, c.kind, c.generation, c.island, c.operator, dict(c.meta),
         seq_start + i, now)
        for i, c in enumerate(candidates)
    ]


def lineage_rows(job_id: str, candidates: Iterable[Candidate]) -> list[tuple]:
    return [
        (c.id, parent, pos, c.operator, job_id)
        for c in candidates
        for pos, parent in enumerate(c.parents)
    ]


def evaluation_rows(
    job_id: str, scores: Iterable[EvaluationRecord | Score], now: datetime
) -> list[tuple]:
    # A plain Score carries no generation or time; the record type may.
    return [
        (job_id, e.candidate_id, e.split, e.subset, e.value, e.n, e.failures,
         getattr(e, "generation", None), getattr(e, "created_at", None) or now)
        for e in scores
    ]


def llm_call_rows(job_id: str, calls: Sequence[LLMCallRecord], now: datetime) -> list[tuple]:
    for call in calls:
        if call.job_id != job_id:
            raise ValueError(f"LLM call of job {call.job_id!r} in a batch for job {job_id!r}")
    # one comprehension, not a function call a row: the ledger is most of a batch's rows
    return [
        (job_id, c.candidate_id, c.purpose, c.model, c.prompt_tokens, c.completion_tokens,
         c.latency_s, c.cached, c.error, c.created_at or now)
        for c in calls
    ]
