"""The record of Evo runs: jobs, candidates, lineage, evaluations, LLM calls, checkpoints."""

from storage.errors import LeaseLost
from storage.records import (
    CANDIDATE_SORTS,
    JOB_STATUSES,
    ApiKeyRecord,
    CandidatePage,
    CandidateSort,
    EvaluationRecord,
    GenerationSummary,
    HeldJob,
    JobRecord,
    JobState,
    JobStatus,
    Lease,
    LineageEdge,
    LLMCallRecord,
    ScoredCandidate,
)
from storage.repository import Store

__all__ = [
    "CANDIDATE_SORTS",
    "JOB_STATUSES",
    "ApiKeyRecord",
    "CandidatePage",
    "CandidateSort",
    "EvaluationRecord",
    "GenerationSummary",
    "HeldJob",
    "JobRecord",
    "JobState",
    "JobStatus",
    "LLMCallRecord",
    "Lease",
    "LeaseLost",
    "LineageEdge",
    "ScoredCandidate",
    "Store",
]
