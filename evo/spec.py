"""What a user submits: the job spec (task, algorithm, models, budget, seed), as pydantic models."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from evo.task import TaskSpec


class Price(BaseModel):
    """What a model's calls cost, in US dollars per million tokens."""

    model_config = ConfigDict(extra="forbid")

    input: float = Field(0.0, ge=0, description="USD per million prompt tokens")
    output: float = Field(0.0, ge=0, description="USD per million completion tokens")


class ModelSpec(BaseModel):
    """A model endpoint. ``provider: local`` runs a GGUF file with llama.cpp (the bundled SmolLM2 by
    default); ``provider: openai`` talks to any OpenAI-compatible endpoint. The key is read from the
    environment variable named by ``api_key_env``; a key given inline is held in memory only and is
    never serialized."""

    model_config = ConfigDict(extra="forbid")

    provider: Literal["local", "openai", "scripted"] = "local"
    model: str | None = Field(
        None, description="local: path to a GGUF file, or gemma-3-270m (the extra "
        "evo-opt[gemma]; Gemma terms of use); openai: model name")
    base_url: str | None = Field(
        None, description="OpenAI-compatible base URL (env EVO_LLM_BASE_URL)"
    )
    api_key_env: str = "OPENAI_API_KEY"
    api_key: SecretStr | None = Field(None, exclude=True)
    concurrency: int = Field(8, ge=1, le=1024, description="requests in flight per worker")
    workers: int | None = Field(
        None, ge=1, le=256, description="pool size; local default: one per core"
    )
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(4, ge=0, le=20)
    n_ctx: int = Field(2048, ge=256, description="local: context of one sequence, in tokens")
    threads: int = Field(1, ge=1, le=64, description="llama.cpp threads per local worker")
    parallel: int = Field(
        8, ge=1, le=64, description="local: sequences a worker decodes side by side (the "
        "examples of a prompt, the samples of a meta-prompt); its KV cache holds "
        "(parallel + 1) x n_ctx tokens",
    )
    rpm: int | None = Field(None, ge=1, description="requests per minute to this endpoint")
    tpm: int | None = Field(None, ge=1, description="tokens per minute to this endpoint")
    mode: Literal["chat", "completion"] = Field(
        "chat", description="chat: messages through the chat template (/chat/completions); "
        "completion: their text as a plain prompt (/completions), for base models",
    )
    price: Price | None = Field(
        None, description="USD per million input and output tokens (None: spend not counted)"
    )


class AlgorithmSpec(BaseModel):
    """``name`` picks the method; every other key is one of its parameters, validated by it."""

    model_config = ConfigDict(extra="allow")

    name: str = Field("evoprompt-ga", description="a registered algorithm, e.g. evoprompt-ga, opro")
    templates: dict[str, str] = Field(
        default_factory=dict, description="meta-prompt overrides by template name"
    )

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ModelsSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    task: ModelSpec = Field(default_factory=ModelSpec, description="answers the task examples")
    meta: ModelSpec | None = Field(None, description="writes new candidates (default: task model)")
    judge: ModelSpec | None = Field(
        None, description="scores answers under metric: judge (default: the task model)"
    )

    @property
    def optimizer(self) -> ModelSpec:
        return self.meta or self.task

    @property
    def grader(self) -> ModelSpec:
        return self.judge or self.task

    def roles(self) -> list[tuple[str, ModelSpec]]:
        """The models the spec names, by role (the task model, then meta and judge if given)."""
        named = [("task", self.task), ("meta", self.meta), ("judge", self.judge)]
        return [(role, model) for role, model in named if model is not None]


class BudgetSpec(BaseModel):
    """Limits for the whole job; final re-scoring is reserved out of ``calls`` up front."""

    model_config = ConfigDict(extra="forbid")

    calls: int | None = Field(5000, ge=1, description="LLM calls (cache hits are free)")
    tokens: int | None = Field(None, ge=1, description="prompt + completion tokens")
    seconds: float | None = Field(None, gt=0, description="wall time of the search")
    usd: float | None = Field(
        None, gt=0, description="spend in US dollars, by the models' prices (never exceeded)"
    )


class RacingSpec(BaseModel):
    """Score in blocks and stop a candidate once it is significantly behind the leader."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False
    block: int = Field(10, ge=1, description="examples per block")
    confidence: float = Field(0.95, gt=0.5, lt=1.0, description="of the one-sided sign test")
    min_examples: int = Field(20, ge=1, description="examples seen before anyone is dropped")


class EvaluationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    top_k: int = Field(
        3, ge=1, le=100, description="best candidates re-scored on the full dev split"
    )
    final_seeds: int | None = Field(
        None, ge=1, le=1000,
        description="seed prompts re-scored on the full dev split in the final phase: the ones "
        "with the best search scores (None: every seed prompt); the best seed reported is the "
        "best of those",
    )
    test: bool = Field(True, description="score the winner and the best seed once on test")
    calibrate: bool = Field(
        False, description="contextual calibration of label scores: divide each label's "
        "probability by the one the model gives it for a content-free input under the same "
        "prompt (one more call per prompt, cached), in the search and the final phase alike",
    )
    confidence: float = Field(
        0.95, ge=0.5, lt=1.0,
        description="confidence of the paired test of the winner against the best seed on test "
        "(its interval and verdict)",
    )
    label_scoring: bool = Field(
        True, description="score labels from log-probabilities when the model gives them"
    )
    batch_size: int = Field(16, ge=1, le=1024, description="requests sent to a worker at once")
    racing: RacingSpec = Field(default_factory=RacingSpec)
    resample_subsets: bool = Field(
        False, description="draw a new random dev subset each generation (else one for the job)"
    )
    strategy: Literal["direct", "zero_shot_cot", "eot"] = Field(
        "direct", description="how a prompt answers an example: direct (one call), "
        "zero_shot_cot (reason, then read off the answer: two calls) or eot (choose a prompt of "
        "the candidate's pool, restate the example, answer: three calls); evo/strategies.py",
    )
    objectives: list[Literal["score", "-prompt_tokens", "-cost_per_call"]] = Field(
        default_factory=lambda: ["score"], min_length=1, max_length=2,
        description="what the final phase weighs: the score alone, or the score and the "
        "prompt's length in tokens or its cost per call (the front of finalists no other "
        "beats on both is stored with the job; the winner stays the best by score)",
    )

    @model_validator(mode="after")
    def _objectives(self) -> EvaluationSpec:
        if "score" not in self.objectives:
            raise ValueError("evaluation.objectives must include 'score'")
        if len(set(self.objectives)) < len(self.objectives):
            raise ValueError("evaluation.objectives lists an objective twice")
        return self


class JobSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = None
    task: str | TaskSpec = Field(..., description="a built-in task name or a task definition")
    algorithm: AlgorithmSpec = Field(default_factory=AlgorithmSpec)
    models: ModelsSpec = Field(default_factory=ModelsSpec)
    budget: BudgetSpec = Field(default_factory=BudgetSpec)
    evaluation: EvaluationSpec = Field(default_factory=EvaluationSpec)
    seed: int = Field(0, description="drives every random choice of the job")
    # where relative data paths in ``task`` resolve: the spec file's folder (not stored)
    _base_dir: str | None = PrivateAttr(None)

    @model_validator(mode="after")
    def _cost_objective(self) -> JobSpec:
        if "-cost_per_call" in self.evaluation.objectives and self.models.task.price is None:
            raise ValueError("evaluation.objectives has '-cost_per_call' but models.task.price "
                             "is not set: a call's cost needs the task model's price")
        return self

    def public_dict(self) -> dict[str, Any]:
        """What may be stored and shown: no secrets (inline keys are excluded by the field)."""
        return self.model_dump(mode="json", exclude_none=True)
