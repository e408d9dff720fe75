"""Conversions between table rows and the records and candidates the store hands out: the one
place where a row becomes a record (and a record or candidate a row to insert).

A record whose fields are columns of the same names is read generically (``_reader``); a
candidate, which gathers its parents from other rows, is built by hand.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from operator import attrgetter
from typing import Any, TypeVar

from evo.candidate import Candidate, Outcome, Score
from storage.models import CandidateRow
from storage.records import (
    ApiKeyRecord,
    EvaluationRecord,
    JobRecord,
    LineageEdge,
    LLMCallRecord,
)

R = TypeVar("R")


def _reader(record: type[R], *copied: str) -> Callable[[Any], R]:
    """Row → record for a record whose every field is an attribute of the row under the same
    name (an ORM row or a result row); the JSON fields named in ``copied`` are copied, so a
    record never shares a dict with a row."""
    names = tuple(f.name for f in dataclasses.fields(record))  # type: ignore[arg-type]
    get = attrgetter(*names)
    at = tuple(names.index(name) for name in copied)

    def read(row: Any) -> R:
        values = get(row)
        if at:
            values = list(values)
            for i in at:
                values[i] = dict(values[i])
        return record(*values)

    read.__doc__ = f"The {record.__name__} of a row."
    return read


job_record = _reader(JobRecord, "spec", "stats")
evaluation_record = _reader(EvaluationRecord)
llm_call_record = _reader(LLMCallRecord)
lineage_edge = _reader(LineageEdge)
api_key_record = _reader(ApiKeyRecord)


def to_candidate(row: CandidateRow, parents: Sequence[str]) -> Candidate:
    """A candidate from its row and its parents' ids (in operator order)."""
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


def ancestor(row: Sequence[Any], parents: Sequence[str]) -> Candidate:
    """A candidate from a result row of (id, text, generation, operator, kind, island, ...),
    without its ``meta`` (what an ancestry walk reads)."""
    cid, text, generation, operator, kind, island = row[:6]
    return Candidate(cid, text, generation, operator, tuple(parents), kind, island)


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
    "latency_s", "cached", "error", "usd", "created_at",
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
         c.latency_s, c.cached, c.error, c.usd, c.created_at or now)
        for c in calls
    ]


OUTCOME_COLUMNS = (
    "job_id", "candidate_id", "split", "example_id", "score", "prediction", "failure", "judge",
    "created_at",
)


def outcome_rows(
    job_id: str, outcomes: Iterable[tuple[str, str, Outcome]], now: datetime
) -> list[tuple]:
    """(candidate id, split, outcome) as rows in ``OUTCOME_COLUMNS`` order."""
    return [(job_id, cid, split, o.example_id, o.score, o.prediction, o.failure, o.judge, now)
            for cid, split, o in outcomes]


def outcome(row: Any) -> Outcome:
    """The Outcome of a row (its target is not stored: the task has it)."""
    return Outcome(row.example_id, "", row.prediction, row.score, row.failure, judge=row.judge)
