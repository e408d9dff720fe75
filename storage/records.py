"""Plain frozen records handed out by the store, so callers never hold ORM objects or sessions."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import Enum
from typing import Any, Literal, NamedTuple, get_args

from evo.candidate import Candidate

JobStatus = Literal[
    "queued", "running", "paused", "cancelled", "failed", "completed", "interrupted"
]
JOB_STATUSES: frozenset[str] = frozenset(get_args(JobStatus))
# what a running job's driver may be asked to do (``Store.request_control``)
ControlRequest = Literal["cancel", "pause", "interrupt"]
CONTROL_REQUESTS: frozenset[str] = frozenset(get_args(ControlRequest))


@dataclass(frozen=True)
class JobRecord:
    id: str
    name: str
    task: str
    algorithm: str
    spec: dict[str, Any] = field(hash=False)
    seed: int
    status: str
    reason: str | None
    best_candidate_id: str | None
    stats: dict[str, Any] = field(hash=False)
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    heartbeat_at: datetime | None
    owner: str | None
    control: str | None = None
    control_at: datetime | None = None
    lease_holder: str | None = None
    lease_epoch: int = 0
    lease_expires_at: datetime | None = None


class Keep(Enum):
    """A job field that an update leaves as it is (``KEEP``), unlike None, which clears it."""

    KEEP = "keep"


KEEP = Keep.KEEP


@dataclass(frozen=True)
class JobUpdate:
    """Fields of a job set together, in one UPDATE; those left at ``KEEP`` are not touched. A
    lease's fields are not among them: they move only by claims and takeovers."""

    status: JobStatus | Keep = KEEP
    reason: str | Keep | None = KEEP
    best_candidate_id: str | Keep | None = KEEP
    stats: dict[str, Any] | Keep = field(default=KEEP, hash=False)
    started_at: datetime | Keep | None = KEEP
    ended_at: datetime | Keep | None = KEEP
    heartbeat_at: datetime | Keep | None = KEEP
    control: ControlRequest | Keep | None = KEEP
    control_at: datetime | Keep | None = KEEP

    def values(self) -> dict[str, Any]:
        """The fields set, by name."""
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not KEEP}


@dataclass(frozen=True)
class Lease:
    """The right to run one job: granted to ``holder`` under ``epoch``, a fencing token. Every
    write made under the lease names the epoch, and the store refuses it once the job has moved
    on (another claim, a takeover, a cancel enforced, the job ended)."""

    job_id: str
    epoch: int
    holder: str


class JobState(NamedTuple):
    """What a running driver polls: the job's status, a pending control request, its epoch."""

    status: str
    control: str | None
    epoch: int


@dataclass(frozen=True)
class HeldJob:
    """A running job whose lease a holder has just renewed."""

    job_id: str
    epoch: int
    control: str | None


@dataclass(frozen=True)
class EvaluationRecord:
    """One scoring of a candidate. ``created_at`` is set by the store when left out."""

    candidate_id: str
    split: str
    value: float
    n: int
    failures: int = 0
    subset: str | None = None
    generation: int | None = None
    created_at: datetime | None = field(default=None, compare=False)


@dataclass(frozen=True)
class LLMCallRecord:
    """One model call, for cost accounting. ``created_at`` is set by the store when left out."""

    job_id: str
    candidate_id: str | None
    purpose: str  # "evaluate" | "generate" | ...
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0
    cached: bool = False
    error: str | None = None
    created_at: datetime | None = field(default=None, compare=False)
    usd: float = 0.0  # what it cost by the model's price (0 for a cache hit)


@dataclass(frozen=True)
class GenerationSummary:
    """Fitness of one generation: ``size`` counts its candidates; ``best`` and ``mean`` are over
    those with a dev score (``None`` when none has one yet); ``distinct`` counts their distinct
    texts. ``calls_total`` and ``tokens_total`` are what the job had paid for when the generation
    ended (``None`` until it has)."""

    generation: int
    size: int
    best: float | None
    mean: float | None
    best_candidate_id: str | None
    distinct: int = 0
    calls_total: int | None = None
    tokens_total: int | None = None


@dataclass(frozen=True)
class LineageEdge:
    parent_id: str
    child_id: str
    operator: str
    position: int


@dataclass(frozen=True)
class ApiKeyRecord:
    """A REST API key as listed: never the token, only its first characters (``hint``)."""

    id: int
    name: str
    hint: str
    admin: bool
    created_at: datetime
    revoked_at: datetime | None


# Orders of a candidate listing: by insertion, latest dev score, generation, operator, text
# length; "-" = reversed.
CandidateSort = Literal[
    "created", "-created", "score", "-score", "generation", "-generation",
    "operator", "-operator", "length", "-length",
]
CANDIDATE_SORTS: tuple[str, ...] = get_args(CandidateSort)


@dataclass(frozen=True)
class ScoredCandidate:
    """A candidate with its latest dev score (over at least one example; ``None`` when it has
    none yet, or could not be scored)."""

    job_id: str
    candidate: Candidate
    score: float | None


@dataclass(frozen=True)
class CandidatePage:
    """One page of a filtered candidate listing; ``total`` counts every match."""

    total: int
    items: tuple[ScoredCandidate, ...]
