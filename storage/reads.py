"""Read models for the REST API, the dashboard, exports and reports: ``ReadStore``.

Leaderboards, generation summaries (and their upkeep), candidate pages, ancestry and lineage,
evaluations, the LLM-call ledger and its totals, stored events, job counts. Every method returns
plain records or candidates; the queries themselves are in ``storage.queries`` and
``storage.summaries``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select

from evo.candidate import Candidate, Outcome
from storage import convert, summaries
from storage import queries as q
from storage.base import StoreBase
from storage.models import EvaluationRow, EventRow, LLMCallRow, OutcomeRow, ResponseRow
from storage.records import (
    CandidatePage,
    EvaluationRecord,
    GenerationSummary,
    LineageEdge,
    LLMCallRecord,
)


class ReadStore(StoreBase):
    """What is shown of jobs and their runs."""

    # --- scores and generations ----------------------------------------------------------------

    def leaderboard(
        self, job_id: str, *, split: str = "dev", k: int = 10, full_only: bool = True
    ) -> list[tuple[Candidate, EvaluationRecord]]:
        """Top ``k`` candidates by their latest evaluation on ``split`` (on the whole split when
        ``full_only``), best first; ties go to the earlier candidate."""
        with self._read() as session:
            return q.leaderboard(session, job_id, split, k, full_only)

    def evaluations(self, job_id: str, *, split: str | None = None) -> list[EvaluationRecord]:
        """In the order they were written."""
        stmt = select(EvaluationRow).where(EvaluationRow.job_id == job_id)
        if split is not None:
            stmt = stmt.where(EvaluationRow.split == split)
        with self._read() as session:
            return [
                convert.evaluation_record(r)
                for r in session.scalars(stmt.order_by(EvaluationRow.id))
            ]

    def generations(
        self, job_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[GenerationSummary]:
        """Per generation, from each candidate's best 'dev' evaluation (any subset): the rows
        kept when generations end, aggregated afresh for generations changed since. A page:
        the generations after ``after``, at most ``limit`` of them."""
        with self._read() as session:
            return summaries.read(session, job_id, after=after, limit=limit)

    def totals_upto(self, job_id: str, generation: int) -> tuple[int, int] | None:
        """(calls, tokens) the job had paid for at the end of the last generation up to
        ``generation`` that ended; None when none has."""
        with self._read() as session:
            return summaries.totals_upto(session, job_id, generation)

    def refresh_generations(self, job_id: str) -> int:
        """Recompute and store every generation summary of a job, e.g. after rows were loaded
        without ``write_batch``; returns the number of generations."""
        with self._write() as session:
            q.lock_job(session, job_id)
            return summaries.refresh(session, job_id, everything=True)

    # --- candidates and lineage ----------------------------------------------------------------

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
        with self._read() as session:
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
        with self._read() as session:
            return q.candidate_job_id(session, candidate_id)

    def candidate_evaluations(self, candidate_id: str) -> list[EvaluationRecord]:
        """Every evaluation of one candidate, in the order they were written."""
        with self._read() as session:
            return q.candidate_evaluations(session, candidate_id)

    def evaluations_of(
        self, candidate_ids: Sequence[str], split: str | None = None
    ) -> dict[str, list[EvaluationRecord]]:
        """The evaluations of many candidates in one read (on ``split`` only, if given), each
        candidate's oldest first; a candidate without any maps to an empty list."""
        with self._read() as session:
            return q.evaluations_of(session, candidate_ids, split)

    def outcomes(self, candidate_id: str, split: str) -> list[Outcome]:
        """Per-example results of a candidate scored in the final phase on ``split`` (or, under
        metric judge, in the search: ``search``), in example order (the last scoring, if it was
        scored more than once)."""
        stmt = (select(OutcomeRow.example_id, OutcomeRow.score, OutcomeRow.prediction,
                       OutcomeRow.failure, OutcomeRow.judge, OutcomeRow.created_at)
                .where(OutcomeRow.candidate_id == candidate_id, OutcomeRow.split == split)
                .order_by(OutcomeRow.id))
        with self._read() as session:
            rows = list(session.execute(stmt))
        last = rows[-1].created_at if rows else None
        return [convert.outcome(r) for r in rows if r.created_at == last]

    def children(self, candidate_id: str) -> list[str]:
        """Ids of the candidates that have this one as a parent, in insertion order."""
        with self._read() as session:
            return q.children(session, candidate_id)

    def ancestry(self, candidate_id: str) -> list[Candidate]:
        """All ancestors, each once, nearest first, with their parents; ``meta`` is left empty
        (what the lineage views show does not need it; ``candidate`` gives one in full)."""
        with self._read() as session:
            return q.ancestry(session, candidate_id)

    def lineage(self, job_id: str) -> list[LineageEdge]:
        with self._read() as session:
            return q.lineage_edges(session, job_id)

    def paid_response(self, job_id: str, digest: str) -> dict[str, Any] | None:
        """One paid response of a job by its request key (for a meta-LLM call, with the request
        that was sent): how a candidate's ``made_by`` is shown."""
        with self._read() as session:
            row = session.execute(
                select(ResponseRow.response).where(
                    ResponseRow.job_id == job_id, ResponseRow.digest == digest
                )
            ).first()
        return None if row is None else dict(row.response)

    # --- cost, events, counts ------------------------------------------------------------------

    def llm_calls(self, job_id: str) -> list[LLMCallRecord]:
        stmt = select(LLMCallRow).where(LLMCallRow.job_id == job_id).order_by(LLMCallRow.id)
        with self._read() as session:
            return [convert.llm_call_record(r) for r in session.scalars(stmt)]

    def call_totals(self, job_id: str) -> dict[str, Any]:
        """``calls``: calls sent to a model (cache misses); ``cached``: cache hits; tokens and
        ``latency_s``, ``usd``: summed over the calls sent, i.e. what the job paid; ``errors``:
        failed calls."""
        with self._read() as session:
            return q.call_totals(session, job_id)

    def events(
        self, job_id: str, *, kind: str | None = None, after: int = 0
    ) -> list[tuple[int, dict[str, Any]]]:
        """Stored events of a job as (id, payload), oldest first, with id > ``after``."""
        criteria = [EventRow.job_id == job_id, EventRow.id > after]
        if kind is not None:
            criteria.append(EventRow.kind == kind)
        with self._read() as session:
            rows = session.execute(
                select(EventRow.id, EventRow.payload).where(*criteria).order_by(EventRow.id)
            )
            return [(r.id, r.payload) for r in rows]

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
        with self._read() as session:
            return q.count_jobs(session, criteria)

    def jobs_by_status(self) -> dict[str, int]:
        """Number of jobs in each status (statuses without jobs are left out)."""
        with self._read() as session:
            return q.jobs_by_status(session)
