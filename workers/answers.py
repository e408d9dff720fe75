"""How a job's task answers were read: what ``evo show`` reports about label scoring, and what
the driver looks at to say why a search has no spread (``workers/spread.py``).

Every scored answer counts, whether the job paid for it or got it from the cache or a replay, so
a resumed job, which restores the tally from its checkpoint and asks again what came after it,
ends with the same counts as one that never stopped.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from evo.judge import UNPARSABLE, Verdict
from evo.llm import LLMResponse
from evo.metrics import ParsingMetric
from evo.task import ExampleResult, Task


@dataclass
class Answers:
    total: int = 0  # every answer scored
    logprobs: int = 0  # label tasks: the label read from the label words' log-probabilities
    parsed: int = 0  # label tasks: the label parsed from generated text
    unparsed: int = 0  # answers that named no label (or that the metric could not parse)
    errors: int = 0  # failed calls
    labels: Counter[str] = field(default_factory=Counter)  # label tasks: which label was read
    judged: int = 0  # metric judge: answers the judge gave a score
    judge_unparsable: int = 0  # metric judge: judge answers that could not be read
    judge_errors: int = 0  # metric judge: answers left without a verdict by a failed call

    def add(
        self, task: Task, response: LLMResponse, result: ExampleResult,
        verdict: Verdict | None = None,
    ) -> None:
        self.total += 1
        if verdict is not None:
            self.judged += verdict.value is not None
            self.judge_unparsable += verdict.unparsable
            self.judge_errors += verdict.value is None and verdict.failure != UNPARSABLE
        if response.error:
            self.errors += 1
            return
        if result.failure == "unparsed":
            self.unparsed += 1
        if not task.labels:
            return
        if response.label_logprobs is not None:
            self.logprobs += 1
            label = None if result.failure else result.prediction
        else:
            self.parsed += 1
            metric = task.metric
            label = metric.parse(result.prediction) if isinstance(metric, ParsingMetric) else None
        if label is not None:
            self.labels[label] += 1

    def label_scoring(self) -> dict[str, int]:
        return {"logprobs": self.logprobs, "parsed": self.parsed}

    def judge_counts(self) -> dict[str, int]:
        return {"judged": self.judged, "unparsable": self.judge_unparsable,
                "errors": self.judge_errors}

    def to_json(self) -> dict[str, Any]:
        return {"total": self.total, "logprobs": self.logprobs, "parsed": self.parsed,
                "unparsed": self.unparsed, "errors": self.errors, "labels": dict(self.labels),
                "judge": self.judge_counts()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Answers:
        j = d.get("judge", {})  # checkpoints from before judges: none
        return cls(d.get("total", 0), d.get("logprobs", 0), d.get("parsed", 0),
                   d.get("unparsed", 0), d.get("errors", 0), Counter(d.get("labels", {})),
                   j.get("judged", 0), j.get("unparsable", 0), j.get("errors", 0))
