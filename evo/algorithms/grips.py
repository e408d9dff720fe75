"""GrIPS (Prasad et al., EACL 2023): greedy search over phrase-level edits of one instruction.

base ← the best seed by the objective;  deleted ← ∅;  stale ← 0
for i = 1..I, while stale < P:
    phrases ← chunk(base)                          (punctuation and conjunctions, evo.edits)
    C ← m candidates, each base with l random edits from {delete, swap, paraphrase, add}
        (paraphrase: the meta-LLM rewords one phrase; add: a phrase from `deleted` comes back)
    score C on a dev sample:  objective = balanced accuracy + w · entropy(predicted labels)
    if the best c ∈ C beats base:  base ← c;  deleted ← deleted + c's deletions − c's additions
    else:  stale ← stale + 1

The entropy term (in nats, weight 0.1: the paper's 10 points on its 100-point scale) keeps an
instruction from winning by answering one label everywhere. Tasks without labels use the mean score.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import Field

from evo.algorithms.base import Algorithm, Params, Resume
from evo.candidate import Candidate, Score
from evo.edits import EDIT_OPS, Edit, EditOp, add, applicable, chunk, delete, join, paraphrase, swap
from evo.engine import SEED, Engine
from evo.gather import gather
from evo.metrics import ParsingMetric
from evo.operators import distinct_new, propose
from evo.task import Task

# The worked example's subject is made up (see evoprompt.py): a phrase about any task's own
# subject could not be told from a rewording on that task.
REWORD = """Say one phrase of an instruction in other words. Keep what it means and the part it \
plays in the instruction. Write the new phrase only.

Instruction: Read the zorb below and say whether it is a wug or a dax.
Phrase: say whether it is a wug or a dax.
New phrase: <phrase>tell if it is a wug or a dax.</phrase>

Instruction: {prompt}
Phrase: {phrase}
New phrase:"""


class GrIPSParams(Params):
    iterations: int = Field(10, ge=1, le=1000, description="search iterations at most")
    candidates: int = Field(5, ge=1, le=100, description="m, edited candidates per iteration")
    edits_per_candidate: int = Field(
        1, ge=1, le=10, description="l, edits composed into each candidate"
    )
    patience: int = Field(2, ge=1, le=100, description="P, stop after this many iterations "
                          "without a better base")
    edits: list[EditOp] = Field(
        default_factory=lambda: list(EDIT_OPS), min_length=1, description="edit kinds to draw from"
    )
    dev_subset: int | None = Field(
        100, ge=1, description="score on a fixed random dev sample of this size (full dev when "
        "smaller; None: always full dev)"
    )
    entropy_weight: float = Field(
        0.1, ge=0.0, le=10.0, description="weight of the predicted-label entropy (nats) added to "
        "balanced accuracy"
    )
    min_phrase_words: int = Field(
        3, ge=1, le=20, description="shorter pieces join their neighbour when chunking"
    )
    temperature: float = Field(1.0, ge=0.0, le=2.0, description="meta-LLM sampling temperature")


def grips_objective(
    score: Score,
    labels: Sequence[str],
    parse: Callable[[str], str | None] | None = None,
    entropy_weight: float = 0.1,
) -> float:
    """Balanced accuracy plus ``entropy_weight`` × the entropy of the predicted-label frequencies.

    Per-class recall is the mean outcome score over the examples of that class. Answers that name
    no label add nothing to the entropy (it is taken over the readable answers and scaled by their
    share), so unreadable output cannot look like a spread. Without labels: the mean score.
    """
    outcomes = score.outcomes
    if not labels or not outcomes:
        return score.value
    by_class: dict[str, list[float]] = {}
    for o in outcomes:
        by_class.setdefault(o.target, []).append(o.score)
    balanced = sum(sum(v) / len(v) for v in by_class.values()) / len(by_class)
    known = set(labels)

    def label_of(prediction: str) -> str | None:
        if prediction in known:
            return prediction
        return parse(prediction) if parse else None

    predicted = Counter(
        lab for o in outcomes if o.failure is None and (lab := label_of(o.prediction)) in known
    )
    read = sum(predicted.values())
    entropy = -sum(c / read * math.log(c / read) for c in predicted.values()) if read else 0.0
    return balanced + entropy_weight * entropy * read / len(outcomes)


class GrIPS(Algorithm):
    name = "grips"
    summary = "GrIPS: greedy phrase edits (delete, swap, paraphrase, add) of one instruction"
    params_model = GrIPSParams
    templates: ClassVar[Mapping[str, str]] = {"paraphrase": REWORD}
    result_by_own_fitness: ClassVar[bool] = True  # balanced accuracy + entropy, as in the paper
    params: GrIPSParams

    async def run(self, engine: Engine, resume: Resume | None = None) -> None:
        p = self.params
        if resume:
            start, state = resume[0] + 1, resume[1]
            [base] = engine.lookup([state["base"]])
            base_score, deleted, stale = state["base_score"], state["deleted"], state["stale"]
        else:
            start = 1
            seeds = [
                engine.candidate(s, operator=SEED, generation=0)
                for s in dict.fromkeys(engine.task.seed_prompts)
            ]
            scores = await self.objective(engine, seeds)
            base = max(seeds, key=lambda c: scores[c.id])  # the first of equals: seeds keep order
            base_score, deleted, stale = scores[base.id], [], 0
            await engine.generation_done(
                0, seeds, self.state(base, base_score, deleted, stale, scores)
            )

        for i in range(start, p.iterations + 1):
            if stale >= p.patience:
                break
            phrases = chunk(base.text, p.min_phrase_words)
            # one generator per candidate, drawn up front: edits stay reproducible however the
            # concurrent paraphrase calls interleave
            rngs = [random.Random(engine.rng.getrandbits(64)) for _ in range(p.candidates)]
            made = await gather(
                *(self.edited(engine, base, phrases, deleted, r, i) for r in rngs)
            )
            cands = distinct_new(engine, [base.text], made)
            scores = await self.objective(engine, cands) if cands else {}
            best = max(cands, key=lambda c: scores[c.id], default=None)
            parent = base
            if best is not None and scores[best.id] > base_score:
                base, base_score, stale = best, scores[best.id], 0
                deleted = self.updated_pool(deleted, best)
            else:
                stale += 1
            await engine.generation_done(
                i, [parent, *cands], self.state(base, base_score, deleted, stale, scores)
            )

    async def edited(
        self,
        engine: Engine,
        base: Candidate,
        phrases: list[str],
        deleted: list[str],
        rng: random.Random,
        generation: int,
    ) -> Candidate | None:
        """``base`` with up to l edits applied in turn; None when no edit could be made."""
        done: list[Edit] = []
        for _ in range(self.params.edits_per_candidate):
            ops = applicable(self.params.edits, phrases, deleted)
            if not ops:
                break
            op = rng.choice(ops)
            if op == "paraphrase":
                at = rng.randrange(len(phrases))
                new = await self.reword(engine, join(phrases), phrases[at])
                if new is None:
                    continue
                phrases, edit = paraphrase(phrases, at, new)
            elif op == "delete":
                phrases, edit = delete(phrases, rng)
            elif op == "swap":
                phrases, edit = swap(phrases, rng)
            else:
                phrases, edit = add(phrases, deleted, rng)
            done.append(edit)
        if not done:
            return None
        return engine.candidate(
            join(phrases),
            operator="+".join(e.op for e in done),
            generation=generation,
            parents=[base],
            meta={"edits": [e.as_dict() for e in done]},
        )

    async def reword(self, engine: Engine, prompt: str, phrase: str) -> str | None:
        out = await propose(
            engine,
            self.meta("paraphrase", prompt=prompt, phrase=phrase),
            operator="paraphrase",
            originals=(phrase,),
            tag="phrase",
            temperature=self.params.temperature,
            max_tokens=60,
            # far longer than the phrase is a new instruction, not a rewording of one part
            max_chars=2 * len(phrase) + 40,
        )
        return out[0].text if out else None

    @staticmethod
    def updated_pool(deleted: list[str], accepted: Candidate) -> list[str]:
        """The deleted pool once ``accepted`` is the base: its deletions join, its adds leave."""
        pool = list(deleted)
        for edit in accepted.meta.get("edits", []):
            if edit["op"] == "delete":
                pool.append(edit["phrase"])
            elif edit["op"] == "add" and edit["phrase"] in pool:
                pool.remove(edit["phrase"])
        return pool

    async def objective(self, engine: Engine, cands: list[Candidate]) -> dict[str, float]:
        task = engine.task
        metric = task.metric if isinstance(task, Task) else None
        parse = metric.parse if isinstance(metric, ParsingMetric) else None
        scores = await engine.evaluate(cands, "dev", self.params.dev_subset)
        fitness = {
            s.candidate_id: grips_objective(s, task.labels, parse, self.params.entropy_weight)
            for s in scores
        }
        if task.labels:
            # the finalists are GrIPS's best by its own objective; without labels that objective
            # is the task's score, and the final pick is the one every algorithm gets
            engine.prefer(fitness)
        return fitness

    @staticmethod
    def state(
        base: Candidate,
        base_score: float,
        deleted: list[str],
        stale: int,
        scores: dict[str, float],
    ) -> dict[str, Any]:
        return {
            "base": base.id,
            "base_score": base_score,
            "deleted": list(deleted),
            "stale": stale,
            "scores": dict(scores),  # this generation's candidates by the GrIPS objective
        }
