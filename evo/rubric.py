"""What a judge model is asked to weigh (``task.rubric``, with ``metric: judge``).

A rubric is a list of criteria, each scored on a scale of 1..``scale`` and weighted; an answer's
score is the weighted mean of its criterion scores mapped to [0, 1]. ``pointwise`` shows the judge
one answer (with the example's reference answer when ``reference`` is on); ``pairwise`` shows it
the answer and a baseline (the reference, or the first seed prompt's answer) twice, in both
orders, so that a judge's preference for one position cancels out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Criterion(BaseModel):
    """One thing the judge scores, on 1..``scale``."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, max_length=40, description="a short name, e.g. accuracy")
    description: str = Field(..., min_length=1, description="what a high score means")
    weight: float = Field(1.0, gt=0, description="its share of the score")
    scale: int = Field(5, ge=2, le=10, description="scored 1..scale")

    @field_validator("name")
    @classmethod
    def _one_line(cls, v: str) -> str:
        if not v.strip() or "\n" in v or ":" in v:
            raise ValueError("a criterion's name is one line without ':'")
        return v.strip()


class Rubric(BaseModel):
    model_config = ConfigDict(extra="forbid")

    criteria: list[Criterion] = Field(
        ..., description="what the judge scores; at least one", json_schema_extra={"minItems": 1}
    )
    mode: Literal["pointwise", "pairwise"] = Field(
        "pointwise", description="pointwise: each answer scored on the criteria; pairwise: each "
        "answer compared with a baseline, in both orders",
    )
    reference: bool = Field(
        False, description="pointwise: show the judge the example's reference answer"
    )
    against: Literal["reference", "seed"] = Field(
        "reference", description="pairwise: the baseline answer, the example's reference or "
        "the first seed prompt's answer",
    )
    max_tokens: int = Field(160, ge=16, le=2048, description="the judge's answer, in tokens")

    @field_validator("criteria")
    @classmethod
    def _some(cls, v: list[Criterion]) -> list[Criterion]:
        if not v:
            raise ValueError("a rubric needs at least one criterion")
        names = [c.name.lower() for c in v]
        if len(set(names)) < len(names):
            raise ValueError("two criteria have the same name")
        return v

    def value(self, scores: dict[str, int]) -> float:
        """The weighted mean of the criterion scores, each mapped from 1..scale to [0, 1]."""
        total = sum(c.weight for c in self.criteria)
        return sum(c.weight * (scores[c.name] - 1) / (c.scale - 1) for c in self.criteria) / total
