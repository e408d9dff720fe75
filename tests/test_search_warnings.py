"""A search with no spread says so once; a job's stats say how its labels were read."""

from __future__ import annotations

import zlib

import pytest

from evo.candidate import Score
from evo.events import SearchWarning
from evo.llm import LLMRequest
from evo.problems.binpacking import bin_packing
from evo.spec import JobSpec
from storage import Store
from tests.helpers import crash_and_resume, draw, scripted_job, toy_task
from workers.answers import Answers
from workers.checkpoint import DriverState
from workers.spread import no_spread

GA = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 3}, "seed": 5}
FLAT_SEEDS = ("Answer. q=0.5", "Reply. q=0.5")


def flat_meta(request: LLMRequest) -> str:
    """New prompts that differ in words only: every one answers half the examples right."""
    seed = zlib.crc32(f"{draw(request)}{request.messages[-1].content}".encode())
    return f"New way {seed % 997}. q=0.5</prompt>"


def spread_meta(request: LLMRequest) -> str:
    seed = zlib.crc32(f"{draw(request)}{request.messages[-1].content}".encode())
    return f"New way {seed % 997}. q=0.{seed % 9}</prompt>"


def warnings_of(store: Store, job_id: str) -> list[dict]:
    return [payload for _, payload in store.events(job_id, kind="SearchWarning")]


async def test_flat_search_warns_once_stored_published_and_in_stats(store: Store) -> None:
    driver, _, _ = scripted_job(GA, flat_meta, store, seeds=FLAT_SEEDS)
    heard = []
    driver.bus.subscribe(heard.append)
    result = await driver.run()
    assert result.status == "completed"
    (stored,) = warnings_of(store, driver.job_id)
    assert stored["code"] == "no_spread"
    message = stored["message"]
    assert message.startswith("All 8 prompts scored so far (the seeds and generation 1) have "
                              "the same score, 0.5 on 10 dev examples")
    assert "the dev split holds only 10 examples" in message
    # the toy model reads the prompt: no label bias, no failures to blame
    assert "named no label" not in message and "whatever the prompt" not in message
    assert [e for e in heard if isinstance(e, SearchWarning)] == [
        SearchWarning(driver.job_id, "no_spread", message)]
    assert result.stats["warnings"] == [{"code": "no_spread", "message": message}]
    assert store.get_job(driver.job_id).stats["warnings"] == result.stats["warnings"]
    # said with generation 1: stored right after its GenerationDone, with its checkpoint
    kinds = [(p["kind"], p.get("generation")) for _, p in store.events(driver.job_id)
             if p["kind"] in ("GenerationDone", "SearchWarning")]
    assert kinds[:3] == [("GenerationDone", 0), ("GenerationDone", 1), ("SearchWarning", None)]
    checkpoint = DriverState.from_json(store.latest_checkpoint(driver.job_id)[1]["driver"])
    assert checkpoint.warnings == result.stats["warnings"]


async def test_a_search_with_spread_says_nothing(store: Store) -> None:
    driver, _, _ = scripted_job(GA, spread_meta, store)
    heard = []
    driver.bus.subscribe(heard.append)
    result = await driver.run()
    assert result.status == "completed"
    assert warnings_of(store, driver.job_id) == []
    assert not any(isinstance(e, SearchWarning) for e in heard)
    assert "warnings" not in result.stats


def same_label(request: LLMRequest) -> dict[str, float]:
    return {w: (0.0 if w == "no" else -3.0) for w in request.labels}


def no_label(request: LLMRequest) -> dict[str, float]:
    # every label at the same floor: the model gave none of them (see Task._best_label)
    return dict.fromkeys(request.labels, -30.0)


@pytest.mark.parametrize(("labels", "cause"), [
    (same_label, "80 of 80 answers were the label 'no' whatever the prompt"),
    (no_label, "80 of 80 answers named no label: the model never produced the verbalizers "
               "('yes', 'no')"),
])
async def test_the_warning_names_what_the_answers_show(store: Store, labels, cause) -> None:
    driver, client, _ = scripted_job(GA, flat_meta, store, seeds=FLAT_SEEDS)
    client.reply = lambda r: labels(r) if r.labels else flat_meta(r)
    await driver.run()
    (stored,) = warnings_of(store, driver.job_id)
    assert cause in stored["message"]


def text_answers(request: LLMRequest) -> str:
    """Label scoring off: task requests are generated text, and this model never says a label."""
    if request.messages[-1].content.endswith("Answer:"):
        return "maybe"
    return flat_meta(request)


async def test_label_scoring_off_is_named_and_counted_as_parsed(store: Store) -> None:
    spec = {**GA, "evaluation": {"top_k": 2, "label_scoring": False}}
    driver, _, _ = scripted_job(spec, text_answers, store)
    result = await driver.run()
    (stored,) = warnings_of(store, driver.job_id)
    assert "label scoring is off (evaluation.label_scoring: false)" in stored["message"]
    assert "80 of 80 answers named no label" in stored["message"]
    asked = [c for c in store.llm_calls(driver.job_id) if c.purpose == "evaluate"]
    assert result.stats["label_scoring"] == {"logprobs": 0, "parsed": len(asked)}


@pytest.mark.parametrize("crash_at", [2, 3])  # in generation 1, before it warned; then after
async def test_a_resumed_job_warns_once(store: Store, crash_at: int) -> None:
    straight, resumed = await crash_and_resume(GA, flat_meta, store, FLAT_SEEDS, crash_at)
    (once,) = warnings_of(store, resumed)
    assert once["message"] == warnings_of(store, straight)[0]["message"]
    assert store.get_job(resumed).stats["warnings"] == store.get_job(straight).stats["warnings"]


async def test_label_scoring_counts_every_answer_read_by_logprobs(store: Store) -> None:
    driver, _, _ = scripted_job(GA, spread_meta, store)
    result = await driver.run()
    # each scored answer has a ledger row, paid or from the cache
    asked = [c for c in store.llm_calls(driver.job_id) if c.purpose == "evaluate"]
    assert any(c.cached for c in asked)
    assert result.stats["label_scoring"] == {"logprobs": len(asked), "parsed": 0}


@pytest.mark.parametrize("crash_at", [2, 4])
async def test_label_scoring_counts_survive_a_resume(store: Store, crash_at: int) -> None:
    straight, resumed = await crash_and_resume(GA, spread_meta, store, None, crash_at)
    counts = store.get_job(straight).stats["label_scoring"]
    assert counts["logprobs"] > 0
    assert store.get_job(resumed).stats["label_scoring"] == counts


def test_old_checkpoints_load_with_nothing_counted_or_said() -> None:
    state = DriverState(rng=(3, (1, 2), None), count=1, asked={}, forks=0, generation=1,
                        paid=0, calls=0, tokens=0, cached=0, elapsed=0.0,
                        answers={"total": 3, "logprobs": 3, "labels": {"yes": 3}},
                        warnings=[{"code": "no_spread", "message": "m"}])
    stored = state.to_json()
    assert DriverState.from_json(stored) == state
    del stored["answers"], stored["warnings"]
    old = DriverState.from_json(stored)
    assert (old.answers, old.warnings) == ({}, [])
    assert Answers.from_json(old.answers) == Answers()


def test_no_spread_needs_two_equal_scores() -> None:
    spec = JobSpec.model_validate({"task": "sentiment"})
    task = toy_task()
    one = [Score("a", "dev", 0.5, 10)]
    assert no_spread(spec, task, one, Answers()) is None
    assert no_spread(spec, task, [*one, Score("b", "dev", 0.6, 10)], Answers()) is None
    many = [Score(c, "dev", 0.5, 40, subset="40") for c in "abc"]
    message = no_spread(spec, task, many, Answers(total=120, logprobs=120))
    assert message is not None
    # nothing the driver can point at: the general causes, and no small-subset claim
    assert message.endswith("Likely causes: the prompts may be too alike, or the task too hard "
                            "or too easy for the task model.")
    small = [Score(c, "dev", 0.5, 8, subset="8") for c in "ab"]
    assert "a subset of only 8 examples" in no_spread(spec, task, small, Answers())
    failed = Answers(total=10, errors=9)
    assert "9 of 10 task calls failed" in no_spread(spec, task, small, failed)


def test_no_spread_for_programs_speaks_of_programs() -> None:
    spec = JobSpec.model_validate({"task": "sentiment"})
    scores = [Score(c, "dev", -12.0, 5) for c in "abcd"]
    message = no_spread(spec, bin_packing(), scores, Answers(), failed_runs=3)
    assert message is not None
    assert message.startswith("All 4 programs scored so far (the seeds and generation 1) have "
                              "the same fitness, -12 on 5 instances")
    assert "3 programs failed to run" in message and "only 5 instances" in message
    assert "prompt" not in message and "label" not in message

