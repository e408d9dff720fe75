"""The final phase, on the budget held back for it: the search's top-k and every seed prompt are
re-scored on the full dev split, and the winner and the best seed once on test.

Every seed, not only the one the search ranked first: on a small dev subset the weakest seed can
look best, and it would then be both the baseline reported and the prompt handed back. A task with
many seed prompts may keep only the best few by search score (``evaluation.final_seeds``): the
reserve is then that much smaller, and the best seed reported is the best of those. Choosing the
finalists and ordering the board are pure functions; only the scoring awaits.
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from evo.algorithms import get_algorithm
from evo.candidate import Candidate, Score
from evo.engine import SEED
from evo.programs import ProgramTask
from evo.significance import compare
from evo.spec import EvaluationSpec, JobSpec
from evo.strategies import MOST_CALLS
from evo.task import Task
from workers.scoring import Scorer, judge_calls

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One row of the final leaderboard."""

    candidate: Candidate
    dev: float
    dev_n: int
    test: float | None = None
    test_n: int = 0
    # per-example test scores, for confidence intervals, and answers, for label bias
    test_scores: tuple[float, ...] = field(default=(), repr=False)
    test_predictions: tuple[str, ...] = field(default=(), repr=False)
    dev_predictions: tuple[str, ...] = field(default=(), repr=False)
    # the job's task and model, set by ``evo.optimize`` (``workers/predict.py``)
    predictor: Any = field(default=None, repr=False, compare=False)

    def predict(self, inputs: str | Sequence[str]) -> str | list[str]:
        """This prompt applied to new input(s) with the job's model and template, read as the
        job read its answers: one input gives its output (a label task's label, else the
        model's text), a list the list of outputs."""
        if self.predictor is None:
            raise RuntimeError("this entry is not bound to its job's model: use the result of "
                               "evo.optimize, or `evo predict JOB` for a stored job")
        return self.predictor.outputs(self.candidate, inputs)

    @classmethod
    def of(cls, candidate: Candidate, dev: Score) -> Entry:
        return cls(candidate, dev.value, dev.n,
                   dev_predictions=tuple(o.prediction for o in dev.outcomes))

    def tested(self, score: Score) -> Entry:
        return replace(self, test=score.value, test_n=score.n,
                       test_scores=tuple(o.score for o in score.outcomes),
                       test_predictions=tuple(o.prediction for o in score.outcomes))


def versus_seed(
    board: Sequence[Entry], seed: Entry | None, confidence: float, job_seed: int
) -> dict[str, Any] | None:
    """The paired test of the winner against the best seed on test, as stored in the job's stats
    (``evo/significance.py``); None without test scores of both."""
    if not board or seed is None:
        return None
    if board[0].candidate.id == seed.candidate.id:
        return {"same": True, "sentence": "the winner is the best seed prompt: no candidate beat "
                "it on the full dev split"}
    winner = board[0]
    if not winner.test_scores or len(winner.test_scores) != len(seed.test_scores):
        return None
    found = compare(winner.test_scores, seed.test_scores, confidence=confidence,
                    rng=random.Random(job_seed))
    return {"same": False, **found.as_dict()}


DOMINANT = 0.8  # a prompt answering one label this often (more than the data has it) is biased


def label_bias(
    task: Task | ProgramTask, board: Sequence[Entry], seed: Entry | None
) -> dict[str, Any] | None:
    """How often each finalist answers each label on the full dev split, and the winner and the
    best seed on test, next to how often each label is right; with a warning for a prompt that
    answers one label for most inputs: its score then measures the model's bias towards that
    label more than the prompt."""
    if not isinstance(task, Task) or not task.labels or not board:
        return None
    out: dict[str, Any] = {"true": {}, "predicted": {}, "dev": {"true": {}, "finalists": {}},
                           "warnings": []}
    truth = Counter(ex.target for ex in task.split("test"))
    out["true"] = {label: truth[label] for label in task.labels}
    roles = [("winner", board[0])]
    if seed is not None and seed.candidate.id != board[0].candidate.id:
        roles.append(("seed", seed))
    for role, entry in roles:
        if entry.test_predictions:
            out["predicted"][role] = _counts(task, entry.test_predictions)
            out["warnings"] += _bias(f"the {role}", "test", out["predicted"][role], truth,
                                     len(entry.test_predictions))
    dev_truth = Counter(ex.target for ex in task.split("dev"))
    out["dev"]["true"] = {label: dev_truth[label] for label in task.labels}
    for i, entry in enumerate(board, 1):
        if entry.dev_predictions:
            counts = _counts(task, entry.dev_predictions)
            out["dev"]["finalists"][entry.candidate.id] = counts
            if i > 1:  # the winner's bias is told on test
                out["warnings"] += _bias(f"finalist #{i}", "dev", counts, dev_truth,
                                         len(entry.dev_predictions))
    return out if out["predicted"] or out["dev"]["finalists"] else None


def _counts(task: Task, predictions: Sequence[str]) -> dict[str, int]:
    counts = Counter(predictions)
    return {label: counts[label] for label in task.labels}


def _bias(who: str, split: str, counts: Mapping[str, int], truth: Counter, n: int) -> list[str]:
    top, k = max(counts.items(), key=lambda kv: kv[1])
    total = sum(truth.values())
    if k < DOMINANT * n or truth[top] >= DOMINANT * total:
        return []
    return [f"{who} answers {top!r} for {k} of {n} {split} inputs (it is right for {truth[top]} "
            f"of {total}): its score measures the model's bias towards that label more than the "
            "prompt"]


def finalists(
    search_scores: Mapping[str, Score],
    candidates: Mapping[str, Candidate],
    preferred: Mapping[str, float],
    made: Mapping[str, int],
    top_k: int,
    seeds_kept: int | None = None,
) -> tuple[list[Candidate], list[Candidate]]:
    """(the top ``top_k`` by the search's ranking, every seed it scored, in that ranking; only
    the first ``seeds_kept`` of those seeds when it is given).

    The ranking is the algorithm's own fitness where it has one, else the search score; equals go
    in the order they were made (``made``: a candidate's row order), however a checkpoint kept
    its dicts."""
    ranked = sorted(
        search_scores.values(),
        key=lambda s: (-preferred.get(s.candidate_id, s.value),
                       made.get(s.candidate_id, len(made))),
    )
    top = [candidates[s.candidate_id] for s in ranked[:top_k]]
    seeds = [candidates[s.candidate_id] for s in ranked
             if candidates[s.candidate_id].operator == SEED]
    return top, seeds if seeds_kept is None else seeds[:seeds_kept]


def board_of(
    top: list[Candidate],
    seeds: list[Candidate],
    dev: Mapping[str, Score],
    made: Mapping[str, int],
    *,
    own_objective: bool,
) -> tuple[list[Entry], Entry | None]:
    """The leaderboard by full-dev score, and the best seed's entry.

    Ties go to the older candidate: an evolved prompt that is no better on the full split than
    the seed it came from is no reason to change it. When no finalist beats the best seed, the
    seed leads (the finalists' search scores were luck on a small subset), unless the algorithm's
    own objective picks its result (GrIPS; ``Algorithm.result_by_own_fitness``)."""
    def order(e: Entry) -> tuple[float, int]:
        return -e.dev, made[e.candidate.id]

    board = sorted((Entry.of(c, dev[c.id]) for c in top if c.id in dev), key=order)
    seed = min((Entry.of(s, dev[s.id]) for s in seeds if s.id in dev), key=order, default=None)
    if (not own_objective and seed is not None and seed.candidate not in top
            and (not board or seed.dev >= board[0].dev)):
        board = [seed, *board]
    return board, seed


async def final_phase(
    scorer: Scorer,
    candidates: Mapping[str, Candidate],
    preferred: Mapping[str, float],
    made: Mapping[str, int],
    evaluation: EvaluationSpec,
    own_result: bool = False,
) -> tuple[list[Entry], Entry | None]:
    """``own_result``: the algorithm's own fitness picks the result (``result_by_own_fitness``)."""
    top, seeds = finalists(scorer.search_scores, candidates, preferred, made, evaluation.top_k,
                           evaluation.final_seeds)
    if not top:
        return [], None
    dev = await full_scores(scorer, top + [s for s in seeds if s not in top], "dev")
    board, seed = board_of(top, seeds, dev, made, own_objective=own_result and bool(preferred))
    if evaluation.test and board:
        wanted = [board[0].candidate] + ([seed.candidate] if seed else [])
        test = await full_scores(scorer, wanted, "test")
        if board[0].candidate.id in test:
            board[0] = board[0].tested(test[board[0].candidate.id])
        if seed is not None and seed.candidate.id in test:
            seed = seed.tested(test[seed.candidate.id])
    return board, seed


async def full_scores(scorer: Scorer, cands: list[Candidate], split: str) -> dict[str, Score]:
    """Scores on the whole split; a full-dev score the search already has is not paid again."""
    out: dict[str, Score] = {}
    need = []
    for c in dict.fromkeys(cands):
        prior = scorer.search_scores.get(c.id)
        if split == "dev" and prior and prior.subset is None and prior.split == "dev":
            out[c.id] = prior
            if prior.outcomes:  # scored in this process: its examples are known
                scorer.recorder.outcomes(c.id, "dev", prior.outcomes)
        else:
            need.append(c)
    scored = await scorer.score(need, split, None)
    if len(scored) < len(need):
        log.warning("final %s scoring cut short by the budget", split)
    out.update({s.candidate_id: s for s in scored})
    return out


@dataclass(frozen=True)
class Reserve:
    """The calls held back for the final phase, by what they pay for."""

    per_prompt: int  # one prompt on the full dev split (and its content-free call, calibrated)
    candidates: int  # top_k finalists on full dev
    seeds: int  # the seed prompts re-scored on full dev
    test: int  # the winner and the best seed on test
    seed_prompts: int  # how many seed prompts ``seeds`` pays for

    @property
    def total(self) -> int:
        return self.candidates + self.seeds + self.test


def reserve_of(spec: JobSpec, task: Task | ProgramTask) -> Reserve:
    """What the final phase holds back, part by part (nothing for programs: they are scored in
    the sandbox, not by paid calls; nothing for a method whose result is a data set)."""
    ev = spec.evaluation
    if isinstance(task, ProgramTask) or get_algorithm(spec.algorithm.name).result == "dataset":
        return Reserve(0, 0, 0, 0, 0)
    dev = len(task.split("dev"))
    # a strategy's chain costs up to MOST_CALLS per example (evo/strategies.py), and a judge
    # its own calls per answer
    each = MOST_CALLS[ev.strategy] + judge_calls(task)
    test = len(task.split("test")) * each if ev.test else 0
    # calibrated: one content-free call per finalist (test asks the same one again, cached)
    per_prompt = dev * each + (
        1 if ev.calibrate and ev.label_scoring and task.labels else 0)
    seeds = seed_count(task, ev.final_seeds)
    return Reserve(per_prompt, ev.top_k * per_prompt, seeds * per_prompt, 2 * test, seeds)


def final_reserve(spec: JobSpec, task: Task | ProgramTask) -> int:
    """Calls held back so that final scoring always fits: top-k and the seed prompts on full
    dev, and the winner and the best seed on test."""
    return reserve_of(spec, task).total


def seed_count(task: Task, final_seeds: int | None = None) -> int:
    """Distinct seed prompts the final phase re-scores (at least one is always there), at most
    ``final_seeds`` when it is given."""
    distinct = len(dict.fromkeys(task.seed_prompts)) or 1
    return distinct if final_seeds is None else min(distinct, final_seeds)


# A finalist written by the meta-LLM is assumed no longer, in task-model tokens, than this or
# the algorithm's own ``max_tokens`` (what it lets the meta-LLM write), whichever is more.
GENERATED_PROMPT_TOKENS = 512


def prompt_bound(spec: JobSpec, task: Task) -> int:
    """The longest finalist prompt the money reserve pays for, in tokens: the longest seed
    prompt (its UTF-8 bytes bound its tokens, see ``workers/cost.py``) or a generated one."""
    written = spec.algorithm.params.get("max_tokens")
    generated = max(GENERATED_PROMPT_TOKENS, written if isinstance(written, int) else 0)
    return max(generated, *(len(p.encode()) for p in task.seed_prompts))


def call_bound(spec: JobSpec, task: Task) -> float:
    """The most one final-phase call can cost: the task model asked an example of dev or test
    (or the content-free input, calibrated) under a prompt of ``prompt_bound`` bytes."""
    from workers.cost import cost_bound

    price = spec.models.task.price
    if price is None:
        return 0.0
    label = spec.evaluation.label_scoring and bool(task.labels)
    filler = "x" * prompt_bound(spec, task)  # one byte, so at most one token, per character
    examples = [*task.split("dev"), *(task.split("test") if spec.evaluation.test else ())]
    requests = [task.request(filler, ex, label_scoring=label) for ex in examples]
    if spec.evaluation.calibrate and label:
        requests.append(task.content_free_request(filler))
    return max((cost_bound(r, price) for r in requests), default=0.0)


def usd_reserve(spec: JobSpec, task: Task | ProgramTask) -> float:
    """Money held back for the final phase: its calls (``final_reserve``), each at the most one
    can cost (``call_bound``); nothing without ``budget.usd``. Direct answers only: a chain's
    later calls carry text the model writes (``workers/admission.py`` refuses the pair)."""
    calls = final_reserve(spec, task)
    if spec.budget.usd is None or calls == 0 or isinstance(task, ProgramTask):
        return 0.0
    return calls * call_bound(spec, task)
