"""Table mappings (SQLAlchemy 2.0 declarative, typed).

The schema itself is owned by the alembic migrations in ``storage/migrations``; these classes
describe it for queries and must stay in step with them (a test compares the two).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# JSONB on Postgres: smaller, indexable, and compared by value rather than by text.
JSONType = JSON().with_variant(JSONB(), "postgresql")
# JSON kept as written, key order included: state that is restored, never queried by content.
OrderedJSON = JSON()
# SQLite only auto-increments a column declared exactly "INTEGER PRIMARY KEY".
AutoId = BigInteger().with_variant(Integer(), "sqlite")

ID_LEN = 32


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores instants in UTC and always hands back timezone-aware values.

    SQLite keeps no offset, so values are normalised to UTC on the way in and tagged as UTC on the
    way out; naive datetimes are refused because their meaning is ambiguous.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dict[str, Any]: JSONType,
        datetime: UTCDateTime(),
    }


def _job_fk() -> Any:
    # Deleting a job removes everything recorded under it.
    return ForeignKey("jobs.id", ondelete="CASCADE")


def _candidate_fk() -> Any:
    return ForeignKey("candidates.id", ondelete="CASCADE")


class JobRow(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_created_at", "created_at"),
        Index("ix_jobs_status_created_at", "status", "created_at"),
        Index("ix_jobs_lease_holder", "lease_holder"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    task: Mapped[str] = mapped_column(String(255))
    algorithm: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]]
    seed: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    # No foreign key: jobs and candidates would reference each other, which complicates inserts.
    best_candidate_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    stats: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    heartbeat_at: Mapped[datetime | None]
    owner: Mapped[str | None] = mapped_column(String(64))
    # "cancel" or "pause" while a request waits for the running driver to act on it
    control: Mapped[str | None] = mapped_column(String(16))
    control_at: Mapped[datetime | None]  # when it was asked: one left unheeded is enforced
    # the lease: who may run the job, under which epoch (a fencing token), until when
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    lease_epoch: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    lease_expires_at: Mapped[datetime | None]


class JobLeaseRow(Base):
    """Every claim of a job: its epoch is handed out once (the primary key says so)."""

    __tablename__ = "job_leases"

    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk(), primary_key=True)
    epoch: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    claimed_at: Mapped[datetime]


class CandidateRow(Base):
    __tablename__ = "candidates"
    __table_args__ = (
        Index("ix_candidates_job_generation", "job_id", "generation"),
        Index("ix_candidates_job_seq", "job_id", "seq"),
    )

    id: Mapped[str] = mapped_column(String(ID_LEN), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk())
    text: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(16))
    generation: Mapped[int]
    island: Mapped[int]
    operator: Mapped[str] = mapped_column(String(64))
    meta: Mapped[dict[str, Any]]
    # Insertion order within the job: stable ordering and tie-breaks without relying on clocks.
    seq: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LineageRow(Base):
    __tablename__ = "lineage"
    # The primary key (child_id, position) doubles as the index for "parents of a child".
    __table_args__ = (Index("ix_lineage_parent_id", "parent_id"),)

    child_id: Mapped[str] = mapped_column(String(ID_LEN), _candidate_fk(), primary_key=True)
    position: Mapped[int] = mapped_column(primary_key=True)
    parent_id: Mapped[str] = mapped_column(String(ID_LEN), _candidate_fk())
    operator: Mapped[str] = mapped_column(String(64))
    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk())


class EvaluationRow(Base):
    """Append-only: a re-score is a new row, so the history of a candidate's fitness is kept."""

    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_job_split_value", "job_id", "split", "value"),
        Index("ix_evaluations_candidate_id", "candidate_id"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk())
    candidate_id: Mapped[str] = mapped_column(String(ID_LEN), _candidate_fk())
    split: Mapped[str] = mapped_column(String(32))
    subset: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float] = mapped_column(Float)
    n: Mapped[int]
    failures: Mapped[int]
    generation: Mapped[int | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class GenerationSummaryRow(Base):
    """Per-generation dev fitness, kept so the job page need not re-aggregate every evaluation.

    Written as a ``stale`` placeholder when a batch adds candidates to a generation or dev scores
    to its candidates, and computed (``stale`` false) when a generation ends; readers aggregate
    stale generations themselves, so what they see is always the same as the full aggregate.
    """

    __tablename__ = "generation_summaries"

    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk(), primary_key=True)
    generation: Mapped[int] = mapped_column(primary_key=True)
    stale: Mapped[bool] = mapped_column(Boolean)
    # NULL while stale and never computed; otherwise as in ``GenerationSummary``
    size: Mapped[int | None]
    best: Mapped[float | None] = mapped_column(Float)
    mean: Mapped[float | None] = mapped_column(Float)
    # No foreign key, as for jobs.best_candidate_id: both rows go with their job.
    best_candidate_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    distinct_texts: Mapped[int | None]
    # What the job had paid for when the generation ended (its GenerationDone event), kept here
    # so the job page reads no events; NULL until the generation ends. Not touched by `stale`.
    calls_total: Mapped[int | None] = mapped_column(BigInteger)
    tokens_total: Mapped[int | None] = mapped_column(BigInteger)


class ExampleResultRow(Base):
    __tablename__ = "example_results"

    evaluation_id: Mapped[int] = mapped_column(
        AutoId, ForeignKey("evaluations.id", ondelete="CASCADE"), primary_key=True
    )
    example_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    score: Mapped[float] = mapped_column(Float)
    prediction: Mapped[str | None] = mapped_column(Text)
    failure: Mapped[str | None] = mapped_column(Text)


class LLMCallRow(Base):
    """Cost accounting for one model call. Credentials are never stored."""

    __tablename__ = "llm_calls"
    __table_args__ = (Index("ix_llm_calls_job_id", "job_id"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk())
    # No foreign key: a call whose output was discarded still costs, and must not be lost.
    candidate_id: Mapped[str | None] = mapped_column(String(ID_LEN))
    purpose: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(255))
    prompt_tokens: Mapped[int]
    completion_tokens: Mapped[int]
    latency_s: Mapped[float] = mapped_column(Float)
    cached: Mapped[bool]
    error: Mapped[str | None] = mapped_column(Text)
    usd: Mapped[float] = mapped_column(Float, default=0.0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class OutcomeRow(Base):
    """One example's result for a candidate scored in the final phase (finalists and seeds, on
    full dev and on test): what pairs two prompts example by example. Under metric judge, every
    search scoring too (split ``search``), for the judge's reasons."""

    __tablename__ = "outcomes"
    __table_args__ = (Index("ix_outcomes_candidate_split", "candidate_id", "split"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk())
    candidate_id: Mapped[str] = mapped_column(String(ID_LEN), _candidate_fk())
    split: Mapped[str] = mapped_column(String(32))
    example_id: Mapped[str] = mapped_column(String(128))
    score: Mapped[float] = mapped_column(Float)
    prediction: Mapped[str] = mapped_column(Text)
    failure: Mapped[str | None] = mapped_column(Text)
    # metric judge: the judge's scores or winners and its reasoning (evo/judge.py)
    judge: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CheckpointRow(Base):
    __tablename__ = "checkpoints"

    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk(), primary_key=True)
    generation: Mapped[int] = mapped_column(primary_key=True)
    state: Mapped[dict[str, Any]] = mapped_column(OrderedJSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ResponseRow(Base):
    """A paid model answer, kept per job so that a resumed job replays it instead of paying
    again. Written in the same transaction as the call's ledger row."""

    __tablename__ = "responses"

    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk(), primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), primary_key=True)  # the request's cache key
    seq: Mapped[int]  # the order in which the job paid for its responses
    response: Mapped[dict[str, Any]] = mapped_column(OrderedJSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class EventRow(Base):
    __tablename__ = "events"
    # Readers follow a job's stream by "id greater than the last one seen".
    __table_args__ = (Index("ix_events_job_id_id", "job_id", "id"),)

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(String(ID_LEN), _job_fk())
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKeyRow(Base):
    """A REST API key. Only a SHA-256 of the token is kept: tokens are long random strings, so a
    fast unsalted hash is enough, and lookups by hash stay one indexed read."""

    __tablename__ = "api_keys"
    __table_args__ = (
        Index("ux_api_keys_token_sha256", "token_sha256", unique=True),
        Index("ix_api_keys_name", "name"),
    )

    id: Mapped[int] = mapped_column(AutoId, primary_key=True, autoincrement=True)
    # the tenant: jobs submitted with the key are owned by this name
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64))
    hint: Mapped[str] = mapped_column(String(16))  # the token's first characters, for listings
    admin: Mapped[bool]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None]
