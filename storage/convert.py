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


def candidate_rows(
    job_id: str, seq_start: int, candidates: Sequence[Candidate], now: datetime
) -> list[dict]:
    return [
        {
            "id": c.id,
            "job_id": job_id,
            "text": c.text,
            "kind": c.kind,
            "generation": c.generation,
            "island": c.island,
            "operator": c.operator,
            "meta": dict(c.meta),
            "seq": seq_start + i,
            "created_at": now,
        }
        for i, c in enumerate(candidates)
    ]


def lineage_rows(job_id: str, candidates: Iterable[Candidate]) -> list[dict]:
    return [
        {
            "child_id": c.id,
            "parent_id": parent,
            "position": pos,
            "operator": c.operator,
            "job_id": job_id,
        }
        for c in candidates
        for pos, parent in enumerate(c.parents)
    ]


def evaluation_row(job_id: str, score: EvaluationRecord | Score, now: datetime) -> dict:
    # A plain Score carries no generation or time; the record type may.
    return {
        "job_id": job_id,
        "candidate_id": score.candidate_id,
        "split": score.split,
        "subset": score.subset,
        "value": score.value,
        "n": score.n,
        "failures": score.failures,
        "generation": getattr(score, "generation", None),
        "created_at": getattr(score, "created_at", None) or now,
    }


def llm_call_row(job_id: str, call: LLMCallRecord, now: datetime) -> dict:
    if call.job_id != job_id:
        raise ValueError(f"LLM call of job {call.job_id!r} in a batch for job {job_id!r}")
    return {
        "job_id": job_id,
        "candidate_id": call.candidate_id,
        "purpose": call.purpose,
        "model": call.model,
        "prompt_tokens": call.prompt_tokens,
        "completion_tokens": call.completion_tokens,
        "latency_s": call.latency_s,
        "cached": call.cached,
        "error": call.error,
        "created_at": call.created_at or now,
    }
