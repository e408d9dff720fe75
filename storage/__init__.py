"""The record of Evo runs: jobs, candidates, lineage, evaluations, LLM calls, checkpoints."""

from storage.records import (
    CANDIDATE_SORTS,
    JOB_STATUSES,
    ApiKeyRecord,
    CandidatePage,
    CandidateSort,
    EvaluationRecord,
    GenerationSummary,
    JobRecord,
    JobStatus,
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
    "JobRecord",
    "JobStatus",
    "LLMCallRecord",
    "LineageEdge",
    "ScoredCandidate",
    "Store",
]
