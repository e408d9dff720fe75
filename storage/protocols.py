"""What each kind of caller needs of the store, as ``typing.Protocol`` classes: one per part of
``Store``, naming exactly the methods its callers (in ``workers/``, ``api/``, ``evo/app/``,
``bench/`` and the tests) use. ``Store`` satisfies all four; a caller that needs one part can be
typed against it (and given a fake of that part alone).

- ``JobLife``: job life and control, leases (``storage.jobs``, ``storage.job_leases``);
- ``RunRecorder``: what a run writes and reads back to resume (``storage.recorder``);
- ``ReadModels``: what is shown of jobs and runs (``storage.reads``);
- ``ApiKeys``: REST API keys (``storage.keys``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from evo.candidate import Candidate, Outcome, Score
from storage.records import (
    KEEP,
    ApiKeyRecord,
    CandidatePage,
    ControlRequest,
    EvaluationRecord,
    GenerationSummary,
    HeldJob,
    JobRecord,
    JobState,
    JobStatus,
    JobUpdate,
    Keep,
    Lease,
    LineageEdge,
    LLMCallRecord,
)


class JobLife(Protocol):
    """Jobs created, moved, asked to stop, claimed and found: the job service and its CLI
    (``workers/jobs.py``, ``service.py``, ``lease.py``, ``runner.py``), the driver's claim, the
    API's job routes and auth, the CLI's listings."""

    def create_job(
        self, *, job_id: str, name: str, task: str, algorithm: str, spec: dict[str, Any],
        seed: int, status: JobStatus = "queued", owner: str | None = None,
        lease: tuple[str, float] | None = None,
    ) -> JobRecord: ...

    def set_status(
        self, job_id: str, status: JobStatus, *, reason: str | Keep | None = KEEP,
        started_at: datetime | Keep | None = KEEP, ended_at: datetime | Keep | None = KEEP,
    ) -> None: ...

    def set_control(
        self, job_id: str, control: ControlRequest | None, *, at: datetime | None
    ) -> None: ...

    def transition(
        self, job_id: str, from_status: Iterable[str], *, status: JobStatus,
        reason: str | Keep | None = KEEP, started_at: datetime | Keep | None = KEEP,
        ended_at: datetime | Keep | None = KEEP, control: ControlRequest | Keep | None = KEEP,
    ) -> bool: ...

    def job_control(self, job_id: str) -> JobState | None: ...

    def request_control(self, job_id: str, control: ControlRequest) -> bool: ...

    def claim_job(
        self, job_id: str, holder: str, ttl_s: float, *, from_status: Iterable[str] = ...,
        take_over: bool = False,
    ) -> Lease | None: ...

    def renew_leases(self, holder: str, ttl_s: float) -> list[HeldJob]: ...

    def stop_running(self, job_id: str, epoch: int, status: str, reason: str) -> str | None: ...

    def take_over_expired(
        self, reason: str, *, silent_for_s: float | None = None
    ) -> list[tuple[str, str]]: ...

    def enforce_cancels(self, grace_s: float) -> list[str]: ...

    def lease_history(self, job_id: str) -> list[tuple[int, str]]: ...

    def get_job(self, job_id: str) -> JobRecord | None: ...

    def list_jobs(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0,
        owner: str | None = None, algorithm: str | None = None, task: str | None = None,
        oldest_first: bool = False,
    ) -> list[JobRecord]: ...


class RunRecorder(Protocol):
    """What a job's run writes and reads back to resume: the driver and its recorder
    (``workers/recorder.py``, ``search.py``, ``write_behind.py``), ``runner.end_unstarted``,
    the store benchmark; ``candidate`` also for the API's candidate route."""

    def write_batch(
        self, job_id: str, *, candidates: Iterable[Candidate] = (),
        evaluations: Iterable[EvaluationRecord | Score] = (),
        llm_calls: Iterable[LLMCallRecord] = (),
        checkpoint: tuple[int, dict[str, Any]] | None = None,
        job: JobUpdate | Mapping[str, Any] | None = None,
        events: Iterable[dict[str, Any]] = (), lease: Lease | None = None,
        outcomes: Iterable[tuple[str, str, Outcome]] = (),
    ) -> None: ...

    def write_paid(
        self, job_id: str, calls: Iterable[LLMCallRecord],
        responses: Iterable[tuple[int, str, dict[str, Any]]], *, lease: Lease | None = None,
    ) -> None: ...

    def rewind(
        self, job_id: str, *, evaluations: int, outcomes: int, lease: Lease | None = None
    ) -> int: ...

    def candidates(self, job_id: str, *, generation: int | None = None) -> list[Candidate]: ...

    def candidate(self, candidate_id: str) -> Candidate | None: ...

    def paid_responses(self, job_id: str) -> list[tuple[str, dict[str, Any]]]: ...

    def latest_checkpoint(self, job_id: str) -> tuple[int, dict[str, Any]] | None: ...


class ReadModels(Protocol):
    """What is shown of jobs and runs: the API's routes (job counts, generations, candidate
    pages and details, ancestry, lineage, events, metrics), the CLI's progress view and export,
    the benchmarks' reports."""

    def leaderboard(
        self, job_id: str, *, split: str = "dev", k: int = 10, full_only: bool = True
    ) -> list[tuple[Candidate, EvaluationRecord]]: ...

    def evaluations(self, job_id: str, *, split: str | None = None) -> list[EvaluationRecord]: ...

    def generations(
        self, job_id: str, *, after: int | None = None, limit: int | None = None
    ) -> list[GenerationSummary]: ...

    def totals_upto(self, job_id: str, generation: int) -> tuple[int, int] | None: ...

    def refresh_generations(self, job_id: str) -> int: ...

    def candidate_page(
        self, job_id: str, *, generation: int | None = None, operator: str | None = None,
        min_score: float | None = None, max_score: float | None = None, sort: str = "created",
        limit: int | None = 50, offset: int = 0,
    ) -> CandidatePage: ...

    def candidate_job_id(self, candidate_id: str) -> str | None: ...

    def candidate_evaluations(self, candidate_id: str) -> list[EvaluationRecord]: ...

    def evaluations_of(
        self, candidate_ids: Sequence[str], split: str | None = None
    ) -> dict[str, list[EvaluationRecord]]: ...

    def outcomes(self, candidate_id: str, split: str) -> list[Outcome]: ...

    def children(self, candidate_id: str) -> list[str]: ...

    def ancestry(self, candidate_id: str) -> list[Candidate]: ...

    def lineage(self, job_id: str) -> list[LineageEdge]: ...

    def paid_response(self, job_id: str, digest: str) -> dict[str, Any] | None: ...

    def llm_calls(self, job_id: str) -> list[LLMCallRecord]: ...

    def call_totals(self, job_id: str) -> dict[str, Any]: ...

    def events(
        self, job_id: str, *, kind: str | None = None, after: int = 0
    ) -> list[tuple[int, dict[str, Any]]]: ...

    def count_jobs(
        self, *, status: str | None = None, owner: str | None = None,
        algorithm: str | None = None, task: str | None = None,
    ) -> int: ...

    def jobs_by_status(self) -> dict[str, int]: ...


class ApiKeys(Protocol):
    """REST API keys: ``api/keys.py`` (create, revoke, look up a bearer token for the API's
    auth), the CLI's ``evo keys`` and ``serve``."""

    def create_api_key(
        self, *, name: str, token_sha256: str, hint: str, admin: bool = False
    ) -> ApiKeyRecord: ...

    def api_key(self, token_sha256: str) -> ApiKeyRecord | None: ...

    def api_keys(self) -> list[ApiKeyRecord]: ...

    def revoke_api_keys(self, name: str) -> int: ...
