"""``evaluation.final_seeds``: only the seed prompts with the best search scores are re-scored in
the final phase, and the reserve holds back only what they need; without it, every seed is."""

from __future__ import annotations

import dataclasses

from evo.candidate import Candidate, Score
from evo.engine import SEED
from evo.spec import JobSpec
from storage import Store
from tests.driver_helpers import run_toy
from tests.helpers import N_DEV, quality, toy_task
from workers.final import final_reserve, finalists, reserve_of, seed_count

SEEDS = ("Answer. q=0.2", "Reply. q=0.9", "Say. q=0.5")


def cand(cid: str, operator: str = "mutate") -> Candidate:
    return Candidate(id=cid, text=f"prompt {cid}", generation=0, operator=operator)


def test_finalists_keep_the_seeds_the_search_ranked_best() -> None:
    cands = {c.id: c for c in (cand("s1", SEED), cand("s2", SEED), cand("s3", SEED),
                               cand("c1"), cand("c2"))}
    scores = {cid: Score(cid, "dev", value, 4)
              for cid, value in (("s1", 0.3), ("s2", 0.7), ("s3", 0.5), ("c1", 0.9),
                                 ("c2", 0.1))}
    made = {cid: i for i, cid in enumerate(cands)}
    top, seeds = finalists(scores, cands, {}, made, 1)
    assert [c.id for c in top] == ["c1"] and [c.id for c in seeds] == ["s2", "s3", "s1"]
    top, seeds = finalists(scores, cands, {}, made, 1, seeds_kept=2)
    assert [c.id for c in top] == ["c1"] and [c.id for c in seeds] == ["s2", "s3"]
    # the algorithm's own fitness ranks them where it has one (as it ranks the top)
    _, seeds = finalists(scores, cands, {"s1": 1.0}, made, 1, seeds_kept=1)
    assert [c.id for c in seeds] == ["s1"]
    _, seeds = finalists(scores, cands, {}, made, 1, seeds_kept=10)
    assert len(seeds) == 3


def test_the_reserve_holds_only_the_seeds_kept() -> None:
    task = toy_task(SEEDS)

    def spec(**evaluation: object) -> JobSpec:
        return JobSpec.model_validate({"task": "sentiment",
                                       "evaluation": {"top_k": 2, **evaluation}})

    # every seed, as before: (top_k + 3 seeds) x dev + 2 x test
    assert final_reserve(spec(), task) == (2 + 3) * N_DEV + 2 * N_DEV
    assert final_reserve(spec(final_seeds=1), task) == (2 + 1) * N_DEV + 2 * N_DEV
    assert final_reserve(spec(final_seeds=9), task) == final_reserve(spec(), task)
    assert seed_count(task) == 3 and seed_count(task, 2) == 2 and seed_count(task, 5) == 3
    parts = reserve_of(spec(final_seeds=2, test=False), task)
    assert (parts.candidates, parts.seeds, parts.test, parts.seed_prompts) == (
        2 * N_DEV, 2 * N_DEV, 0, 2)
    assert parts.total == 4 * N_DEV


async def run_lucky(store: Store, final_seeds: int | None, job_id: str):
    """The weakest seed looks best to the search (and a poor candidate better still)."""
    evaluation = {"top_k": 1} | ({"final_seeds": final_seeds} if final_seeds else {})
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 3, "generations": 1,
                          "dev_subset": 4}, "evaluation": evaluation, "seed": 5}
    driver = run_toy(store, spec, task=toy_task(SEEDS), job_id=job_id)
    original = driver.search.generation_done

    async def done(generation, population, state):
        await original(generation, population, state)
        for s in list(driver.search.search_scores.values()):
            c = driver.search.candidates[s.candidate_id]
            q = quality(c.text)
            luck = {0.2: 0.9, 0.9: 0.1}.get(q, 0.5) if c.operator == SEED else (
                0.95 if q < 0.5 else 0.0)
            driver.search.search_scores[s.candidate_id] = dataclasses.replace(s, value=luck)

    driver.search.generation_done = done
    return driver, await driver.run()


def full_dev_texts(store: Store, job_id: str) -> set[str]:
    texts = {c.id: c.text for c in store.candidates(job_id)}
    return {texts[e.candidate_id] for e in store.evaluations(job_id)
            if e.split == "dev" and e.subset is None and e.n == N_DEV}


async def test_only_the_best_seeds_by_search_score_are_rescored(store: Store) -> None:
    every, every_result = await run_lucky(store, None, "a" * 32)
    one, one_result = await run_lucky(store, 1, "b" * 32)
    # every seed re-scored: the truly best one is the baseline
    assert every_result.seed is not None and every_result.seed.candidate.text == "Reply. q=0.9"
    assert set(SEEDS) <= full_dev_texts(store, every.job_id)
    # one seed re-scored: the one the search ranked first, though it is the weakest; the best
    # seed reported is the best of those re-scored
    assert one_result.seed is not None and one_result.seed.candidate.text == "Answer. q=0.2"
    assert full_dev_texts(store, one.job_id) & set(SEEDS) == {"Answer. q=0.2"}
    assert one_result.seed.dev == 0.2 and one_result.seed.test is not None
    # two seeds fewer on the full split: fewer calls paid, and the ledger agrees
    assert one_result.stats["calls"] < every_result.stats["calls"]
    paid = [c for c in store.llm_calls(one.job_id) if not c.cached]
    assert len(paid) == one_result.stats["calls"]
