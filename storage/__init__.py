"""The record of Evo runs: jobs, candidates, lineage, evaluations, LLM calls, checkpoints."""

from storage.records import (
    JOB_STATUSES,
    EvaluationRecord,
    GenerationSummary,
    JobRecord,
    JobStatus,
    LineageEdge,
    LLMCallRecord,
)
from storage.repository import Store

__all__ = [
    "JOB_STATUSES",
    "EvaluationRecord",
    "GenerationSummary",
    "JobRecord",
    "JobStatus",
    "LLMCallRecord",
    "LineageEdge",
    "Store",
]
