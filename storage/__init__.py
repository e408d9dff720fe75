"""The record of Evo runs: jobs, candidates, lineage, evaluations, LLM calls, checkpoints."""

from storage.errors import LeaseLost, StoreUnavailable
from storage.records import (
    CANDIDATE_SORTS,
    JOB_STATUSES,
    KEEP,
    ApiKeyRecord,
    CandidatePage,
    CandidateSort,
    EvaluationRecord,
    GenerationSummary,
    HeldJob,
    JobRecord,
    JobState,
    JobStatus,
    JobUpdate,
    Lease,
    LineageEdge,
    LLMCallRecord,
    ScoredCandidate,
)
from storage.repository import Store

__all__ = [
    "CANDIDATE_SORTS",
    "JOB_STATUSES",
    "KEEP",
    "ApiKeyRecord",
    "CandidatePage",
    "CandidateSort",
    "EvaluationRecord",
    "GenerationSummary",
    "HeldJob",
    "JobRecord",
    "JobState",
    "JobStatus",
    "JobUpdate",
    "LLMCallRecord",
    "Lease",
    "LeaseLost",
    "LineageEdge",
    "ScoredCandidate",
    "Store",
    "StoreUnavailable",
]
