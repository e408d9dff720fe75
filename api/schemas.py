"""Response bodies of the API, built from the store's records (never from ORM rows).

Where a body has a record's shape, it is validated from the record itself
(``model_validate(record, from_attributes=True)``, or from ``fields_of(record)`` with what the
body adds), never copied field by field: a field is renamed by its ``validation_alias``, and
numbers JSON cannot carry are made null by a ``before`` validator (``plain``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from evo.candidate import Candidate
from storage import EvaluationRecord, JobRecord, JobStatus, LineageEdge, ScoredCandidate

PREVIEW_CHARS = 80


def plain(value: Any) -> Any:
    """JSON-safe copy: non-finite floats (which JSON cannot carry) become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def fields_of(record: Any) -> dict[str, Any]:
    """A dataclass record's fields by name (not copied: validation copies what it keeps)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


class ParetoPoint(BaseModel):
    candidate_id: str
    score: float = Field(description="full-dev score")
    prompt_tokens: int | None = Field(
        None, description="the prompt's length in tokens (evaluation.objectives -prompt_tokens)")
    cost_per_call: float | None = Field(
        None, description="USD per task call (evaluation.objectives -cost_per_call)")
    text: str


class JobOut(BaseModel):
    id: str
    name: str
    task: str
    algorithm: str
    status: JobStatus
    reason: str | None = Field(None, description="why the job is in its state, when it says")
    owner: str | None = Field(
        None, description="the name of the key that submitted it; for a job run or submitted "
        "from the command line, EVO_OWNER (default: the login name)"
    )
    seed: int
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    heartbeat_at: datetime | None = None
    best_candidate_id: str | None = None
    pending_control: str | None = Field(
        None,
        description="a request (cancel, pause) the running job has not acted on yet",
        validation_alias=AliasChoices("pending_control", "control"),  # JobRecord.control
    )
    stats: dict[str, Any] = Field(
        description="calls, tokens, usd (spend by the models' prices), scores... (after the job "
        "ends)")
    spec: dict[str, Any] = Field(description="the job spec as stored: defaults filled, no keys")
    pareto: list[ParetoPoint] | None = Field(
        None, description="with two evaluation.objectives: the finalists no other beats on both "
        "score and cost per use, best score first (None: one objective, or not ended yet)")

    @field_validator("stats", "spec", mode="before")
    @classmethod
    def _json_safe(cls, value: Any) -> Any:
        return plain(value or {})

    @model_validator(mode="after")
    def _front(self) -> JobOut:
        if self.pareto is None and self.stats.get("pareto"):
            self.pareto = [ParetoPoint.model_validate(p) for p in self.stats["pareto"]]
        return self

    @classmethod
    def of(cls, job: JobRecord) -> JobOut:
        return cls.model_validate(job, from_attributes=True)


class JobPage(BaseModel):
    total: int = Field(description="jobs matching the filters, over all pages")
    limit: int
    offset: int
    items: list[JobOut]


class GenerationOut(BaseModel):
    generation: int
    size: int = Field(description="candidates made in this generation")
    best: float | None = Field(description="best dev score among them")
    mean: float | None = Field(description="mean dev score of those scored")
    best_candidate_id: str | None
    distinct: int = Field(description="distinct candidate texts")
    diversity: float = Field(description="share of distinct texts: 1 = no two alike")
    calls: int | None = Field(None, description="LLM calls paid for during this generation")
    tokens: int | None = Field(None, description="tokens paid for during this generation")
    calls_total: int | None = Field(None, description="calls paid for up to its end")
    tokens_total: int | None = Field(None, description="tokens paid for up to its end")


class CandidateBrief(BaseModel):
    id: str
    generation: int
    operator: str = Field(description="how it was made (seed, paraphrase, ...)")
    kind: str
    text: str
    parents: list[str] = Field(description="parent ids, in the order the operator used them")

    @classmethod
    def of(cls, c: Candidate) -> CandidateBrief:
        return cls.model_validate(c, from_attributes=True)


class ScoreOut(BaseModel):
    split: str
    subset: str | None = Field(description="null: the whole split; else which sample of it")
    value: float | None
    n: int = Field(description="examples scored")
    failures: int = Field(description="examples whose call failed or answer was not understood")
    generation: int | None
    created_at: datetime | None

    @field_validator("value", mode="before")
    @classmethod
    def _json_safe(cls, value: Any) -> Any:
        return plain(value)

    @classmethod
    def of(cls, e: EvaluationRecord) -> ScoreOut:
        return cls.model_validate(e, from_attributes=True)


class CandidateOut(CandidateBrief):
    job_id: str
    island: int
    score: float | None = Field(
        description="latest dev score (null: not scored): during the search on a sample of the "
        "dev split, for finalists on the whole split; `score_on` says which"
    )
    score_on: ScoreOut | None = Field(
        None, description="the evaluation `score` comes from: `subset` null means the whole "
        "dev split, else the sample it was scored on; `n` the examples scored"
    )
    search_score: ScoreOut | None = Field(
        None, description="latest dev score on a sample of the split (the search's, on "
        "`algorithm.dev_subset` examples); null when only scored on the whole split"
    )
    meta: dict[str, Any]

    @field_validator("score", "meta", mode="before")
    @classmethod
    def _json_safe(cls, value: Any) -> Any:
        return plain(value)

    @classmethod
    def scored(
        cls, item: ScoredCandidate, evaluations: Sequence[EvaluationRecord] = ()
    ) -> CandidateOut:
        """``evaluations``: the candidate's, oldest first, to say what its score is on."""
        dev = [e for e in evaluations if e.split == "dev" and e.n > 0]
        sampled = [e for e in dev if e.subset is not None]
        return cls.model_validate({
            **fields_of(item.candidate),
            "job_id": item.job_id,
            "score": item.score,
            "score_on": ScoreOut.of(dev[-1]) if dev else None,
            "search_score": ScoreOut.of(sampled[-1]) if sampled else None,
        })


class CandidatePageOut(BaseModel):
    total: int = Field(description="candidates matching the filters, over all pages")
    limit: int
    offset: int
    items: list[CandidateOut]


class MessageOut(BaseModel):
    role: str
    content: str


class MetaCallOut(BaseModel):
    """The meta-LLM call that wrote a candidate: what it was asked and what it answered."""

    key: str = Field(description="the request's cache key")
    model: str | None
    messages: list[MessageOut]
    prefill: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    text: str | None = Field(description="the model's answer")
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_s: float | None = None

    @classmethod
    def of(cls, key: str, response: dict[str, Any]) -> MetaCallOut:
        request = response.get("request") or {}
        return cls(
            key=key,
            model=response.get("model"),
            messages=[
                MessageOut(role=str(m.get("role")), content=str(m.get("content")))
                for m in request.get("messages", [])
                if isinstance(m, dict)
            ],
            prefill=request.get("prefill"),
            temperature=plain(request.get("temperature")),
            max_tokens=request.get("max_tokens"),
            text=response.get("text"),
            prompt_tokens=response.get("prompt_tokens"),
            completion_tokens=response.get("completion_tokens"),
            latency_s=plain(response.get("latency_s")),
        )


class CandidateDetail(CandidateOut):
    scores: dict[str, ScoreOut] = Field(description="latest evaluation per split")
    evaluations: list[ScoreOut] = Field(description="every evaluation, oldest first")
    children: list[str] = Field(description="ids of candidates made from this one")
    made_by: MetaCallOut | None = Field(
        description="the meta-LLM call that wrote it (null for seeds and replayed text)"
    )


class OutcomeOut(BaseModel):
    example_id: str
    score: float | None
    prediction: str = Field(description="what the model answered (the label chosen)")
    failure: str | None = Field(description="why the example scored 0 without an answer")
    judge: dict[str, Any] | None = Field(
        None, description="metric judge: the judge's criterion scores (pointwise) or winners in "
        "each order (pairwise), its reasoning, and how many of its answers were unreadable")

    @field_validator("score", mode="before")
    @classmethod
    def _json_safe(cls, value: Any) -> Any:
        return plain(value)


class OutcomesOut(BaseModel):
    candidate_id: str
    split: str
    items: list[OutcomeOut] = Field(
        description="per example, in the split's order; empty unless the candidate was scored "
        "in the final phase (finalists and seed prompts, on full dev and on test)"
    )


class AncestryOut(BaseModel):
    candidate_id: str
    ancestors: list[CandidateBrief] = Field(description="every ancestor once, nearest first")


class LineageNode(BaseModel):
    id: str
    generation: int
    operator: str
    kind: str = Field(description="prompt, program, soft_prompt, mutation_prompt or instruction")
    score: float | None
    label: str = Field(description=f"the first {PREVIEW_CHARS} characters of the text")


class LineageEdgeOut(BaseModel):
    source: str = Field(description="parent id",
                        validation_alias=AliasChoices("source", "parent_id"))
    target: str = Field(description="child id", validation_alias=AliasChoices("target", "child_id"))
    operator: str
    position: int = Field(description="the parent's place among the child's parents")

    @classmethod
    def of(cls, edge: LineageEdge) -> LineageEdgeOut:
        return cls.model_validate(edge, from_attributes=True)


class LineageOut(BaseModel):
    job_id: str
    nodes: list[LineageNode]
    edges: list[LineageEdgeOut]


class TaskOut(BaseModel):
    name: str
    description: str
    kind: Literal["prompt", "program"]
    metric: str
    splits: dict[str, int] = Field(description="examples (or instances) per split")
    labels: list[str]
    rubric: dict[str, Any] | None = Field(
        None, description="metric judge: the criteria the judge scores, and how")
    json_schema: dict[str, Any] | None = Field(
        None, description="metric json_schema: the schema an answer must validate against")


class AlgorithmOut(BaseModel):
    name: str
    summary: str
    kinds: list[str] = Field(description="what it searches: prompts or programs")
    result: Literal["best", "dataset"] = Field(
        "best", description="what a job of it hands back: its best prompts, or a data set "
        "(GET /jobs/{id}/dataset)")
    parameters: dict[str, Any] = Field(description="JSON schema of its parameters")
    defaults: dict[str, Any]
    templates: list[str] = Field(description="meta-prompts a spec may replace")


class CallerOut(BaseModel):
    """Who a key acts for."""

    name: str = Field(description="the key's name: the owner of the jobs it sees")
    admin: bool = Field(description="an admin key sees every owner's jobs")


class HealthOut(BaseModel):
    status: Literal["ok", "unavailable"]
    store: Literal["ok", "error"]
    redis: Literal["ok", "error", "not configured"]


class DataSetItemOut(BaseModel):
    """One item of a data-set job (``evo/app/dataset.py``)."""

    id: str = Field(description="the item's candidate id")
    instruction: str
    response: str = Field(description="the task model's answer to the instruction")
    round: int = Field(description="the evolution round that made it (0: a seed instruction)")
    evolution: str = Field(description="the operator that made it (seed for a seed)")
    parent_id: str | None = Field(description="the instruction it evolved from")
    seed_id: str = Field(description="the seed instruction its evolutions started from")


class EliminatedOut(BaseModel):
    """A failed evolution, dropped from the data set."""

    id: str
    instruction: str
    round: int
    evolution: str
    parent_id: str | None
    reason: str = Field(description="why it was dropped (a rejection reason, evo/engine.py)")
    response: str | None = Field(description="the task model's answer, when it was asked")


class RoundOut(BaseModel):
    round: int
    kept: int
    eliminated: int
    reasons: dict[str, int] = Field(description="eliminated items by reason")


class DataSetOut(BaseModel):
    job_id: str
    total: int = Field(description="items in the data set")
    limit: int
    offset: int
    items: list[DataSetItemOut] = Field(description="the page of items, in the order made")
    eliminated: list[EliminatedOut] = Field(description="every failed evolution")
    rounds: list[RoundOut] = Field(description="per round: items kept and eliminated")


MAX_PREDICT_INPUTS = 100


class PredictIn(BaseModel):
    """New inputs for a job's prompt."""

    model_config = ConfigDict(extra="forbid")

    inputs: list[str] = Field(
        min_length=1, max_length=MAX_PREDICT_INPUTS,
        description=f"the inputs, each filled into the task's template (1 to "
        f"{MAX_PREDICT_INPUTS})",
    )
    candidate_id: str | None = Field(
        None, min_length=1, max_length=64,
        description="a candidate of the job (id, or a unique prefix of at least 4 characters); "
        "default: the job's best on the full dev split",
    )


class PredictionOut(BaseModel):
    input: str
    output: str | None = Field(
        description="a label task's label, else the model's text; null when there is none")
    error: str | None = Field(None, description="why there is no output (a failed call, an "
                              "answer that names no label)")


class PredictOut(BaseModel):
    job_id: str
    candidate_id: str
    kind: str = Field(description="prompt or soft_prompt")
    prompt: str = Field(description="the candidate's text (a soft prompt's: its nearest tokens)")
    items: list[PredictionOut] = Field(description="one per input, in order")
