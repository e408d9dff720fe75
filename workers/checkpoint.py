"""What a driver keeps, beside the stored rows, to continue a job exactly where it was.

A ``DriverState`` is taken at each generation's end and stored with the algorithm's own state in
the checkpoint. Its JSON layout is what stored checkpoints hold: change it only with a reader for
the old one (``from_json`` already fills what older checkpoints lack).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from evo.candidate import Score

Incumbents = dict[tuple[str, int | None], tuple[float, dict[str, float]]]


@dataclass(frozen=True)
class DriverState:
    rng: tuple[Any, ...]  # random.Random.getstate()
    count: int  # candidates made
    asked: dict[str, int]  # the main strand's samples per request
    forks: int  # strands forked off the main one
    generation: int  # the generation after the checkpoint's
    paid: int  # responses paid, in order
    calls: int
    tokens: int
    cached: int
    elapsed: float  # seconds the job has run
    rejections: dict[str, int] = field(default_factory=dict)
    racing_saved: int = 0
    preferred: dict[str, float] = field(default_factory=dict)
    best_search: float | None = None
    scores: dict[str, Score] = field(default_factory=dict)  # the search's own, without outcomes
    incumbents: Incumbents = field(default_factory=dict)
    answers: dict[str, Any] = field(default_factory=dict)  # how answers were read (Answers)
    warnings: list[dict[str, str]] = field(default_factory=list)  # said once: never again
    usd: float = 0.0  # spent, by the models' prices
    # score and per-example rows recorded by the checkpoint (None: a checkpoint from before
    # they were counted, whose job is resumed without rewinding them)
    rows: tuple[int, int] | None = None

    def to_json(self) -> dict[str, Any]:
        version, internal, gauss = self.rng
        return {
            "rng": [version, list(internal), gauss],
            "count": self.count,
            "asked": dict(self.asked),
            "forks": self.forks,
            "generation": self.generation,
            "paid": self.paid,
            "budget": {"calls": self.calls, "tokens": self.tokens, "cached": self.cached,
                       "elapsed": self.elapsed, "usd": self.usd},
            "rejections": dict(self.rejections),
            "racing_saved": self.racing_saved,
            "preferred": dict(self.preferred),
            "best_search": self.best_search,
            "scores": {c: [s.split, s.value, s.n, s.failures, s.subset]
                       for c, s in self.scores.items()},
            "incumbents": [[split, subset, value, per]
                           for (split, subset), (value, per) in self.incumbents.items()],
            "answers": dict(self.answers),
            "warnings": [dict(w) for w in self.warnings],
            **({"rows": list(self.rows)} if self.rows is not None else {}),
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> DriverState:
        version, internal, gauss = d["rng"]
        scores = {
            c: Score(c, split, value, n, failures, subset)
            for c, (split, value, n, failures, subset) in d["scores"].items()
        }
        budget = d["budget"]
        return cls(
            rng=(version, tuple(internal), gauss),
            count=d["count"],
            asked=dict(d["asked"]),
            forks=d.get("forks", 0),
            generation=d["generation"],
            paid=d["paid"],
            calls=budget["calls"],
            tokens=budget["tokens"],
            cached=budget["cached"],
            elapsed=budget["elapsed"],
            rejections=dict(d["rejections"]),
            racing_saved=d["racing_saved"],
            preferred=dict(d.get("preferred", {})),
            # checkpoints from before it was kept: the best of the scores the search still holds
            best_search=d.get("best_search", max((s.value for s in scores.values()),
                                                 default=None)),
            scores=scores,
            incumbents={(sp, sub): (v, per) for sp, sub, v, per in d["incumbents"]},
            # checkpoints from before they were kept: nothing counted, nothing said
            answers=dict(d.get("answers", {})),
            warnings=[dict(w) for w in d.get("warnings", [])],
            usd=budget.get("usd", 0.0),  # checkpoints from before money was counted: none
            rows=tuple(d["rows"]) if "rows" in d else None,  # type: ignore[arg-type]
        )
