"""BDPL: the PMI vocabulary, the policy gradient on a synthetic objective whose optimum is known,
the lineage it records, the specs it refuses, and resuming through the driver."""

from __future__ import annotations

import asyncio
import json
import re

import numpy as np
import pytest

import tests.helpers as helpers
from evo.algorithms.bdpl import BDPL, BDPLParams
from evo.candidate import Candidate, Outcome
from evo.categorical import Categorical
from evo.llm import LLMRequest
from evo.metrics import get_metric
from evo.pmi import label_vocabulary
from evo.spec_io import SpecError, parse_spec
from evo.task import Example, Task
from evo.testing import FakeEngine
from storage import Store
from tests.helpers import crash_and_resume, job_record

GOOD = ("good", "great", "lovely")
BAD = ("bad", "awful", "dull")


def reviews_task(seeds: tuple[str, ...] = ("Rate it.", "Good or bad?")) -> Task:
    """Reviews whose label is told by one word of three per label, among words of both labels."""
    rows = []
    for i in range(12):
        label = "pos" if i % 2 else "neg"
        word = (GOOD if label == "pos" else BAD)[i // 2 % 3]
        rows.append(Example(f"r{i}", f"the film was {word} and the end was long", label))
    return Task(
        name="reviews", description="pos or neg", template="{prompt}\n\nReview: {input}",
        splits={"train": tuple(rows), "dev": tuple(rows), "test": tuple(rows)},
        metric=get_metric("label_accuracy", verbalizers={"pos": "pos", "neg": "neg"}),
        labels=("pos", "neg"), verbalizers={"pos": "pos", "neg": "neg"},
        seed_prompts=seeds, max_answer_tokens=2,
    )


def run(algorithm: BDPL, engine: FakeEngine) -> None:
    asyncio.run(algorithm.run(engine))


def bdpl(**params) -> BDPL:
    return BDPL(BDPLParams(**params))


def test_the_vocabulary_holds_the_label_indicative_words_balanced_across_labels() -> None:
    train = reviews_task().split("train")
    vocab = label_vocabulary([e.input for e in train], [e.target for e in train], ["pos", "neg"],
                             size=6, max_ngram=1)
    # words shared by both labels ("the", "film", "long") have no PMI with either
    assert sorted(vocab) == sorted(GOOD + BAD)
    # in turn: the best of pos, the best of neg, … (equal PMI: by text)
    assert vocab == ["good", "awful", "great", "bad", "lovely", "dull"]
    bigrams = label_vocabulary([e.input for e in train], [e.target for e in train],
                               ["pos", "neg"], size=100, max_ngram=2)
    assert "was good" in bigrams and "good and" in bigrams and "the film" not in bigrams
    # an entry must occur in min_count examples
    assert label_vocabulary(["a x", "b y", "a z"], ["p", "n", "p"], ["p", "n"], size=9,
                            max_ngram=1) == ["a"]
    assert label_vocabulary(["a x", "b y", "a z"], ["p", "n", "p"], ["p", "n"], size=9,
                            max_ngram=1, min_count=1) == ["a", "b", "x", "y", "z"]


def test_the_gradient_pushes_down_the_entries_of_worse_than_average_samples() -> None:
    dist = Categorical.uniform(2, 3)
    samples = np.array([[0, 1], [2, 1]])
    grad = dist.gradient(samples, [1.0, 3.0])  # mean 2: the first is better, the second worse
    assert grad.tolist() == [[-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]]
    dist.step(grad, lr=0.5)
    assert dist.logits[0, 0] > 0 > dist.logits[0, 2] and dist.logits[1, 1] == 0.0
    assert dist.mode() == [0, 1]  # position 1 is still tied: the tie goes to entry 1
    again = Categorical.from_json(dist.to_json())
    assert np.array_equal(again.logits, dist.logits) and np.array_equal(again.v, dist.v)
    with pytest.raises(ValueError, match="two samples"):
        dist.gradient(samples[:1], [1.0])


def test_sampling_follows_the_distribution() -> None:
    dist = Categorical(np.log(np.array([[0.7, 0.2, 0.1]])), np.zeros((1, 3)), np.zeros((1, 3)))
    drawn = dist.sample(np.random.default_rng(5), 20_000)[:, 0]
    assert np.bincount(drawn, minlength=3) / 20_000 == pytest.approx([0.7, 0.2, 0.1], abs=0.02)


TARGET = [3, 0, 5, 1]  # the optimum: these vocabulary entries at positions 0..3


def mismatches(cand: Candidate) -> int:
    if "entries" not in cand.meta:
        return len(TARGET)  # a seed
    return sum(a != b for a, b in zip(cand.meta["entries"], TARGET, strict=True))


def synthetic(cand: Candidate, split: str) -> list[Outcome]:
    """One answer whose hinge loss is the number of positions not holding the target entry."""
    m = mismatches(cand)
    return [Outcome("x", "pos", "pos", float(m == 0), label_logprobs={"pos": 0.0, "neg": m - 1.0})]


def test_the_policy_gradient_finds_the_known_optimum() -> None:
    engine = FakeEngine(reviews_task(), reply=lambda ask: None, outcomes=synthetic)
    run(bdpl(steps=60, samples=8, n_tokens=4, vocab_size=6, max_ngram=1, lr=0.3, loss="hinge"),
        engine)
    modes = [c for c in engine.made if c.operator == "bdpl_mode"]
    assert modes[-1].meta["entries"] == TARGET and modes[-1].generation == 61
    assert modes[-1].text == "bad good dull awful"  # the entries' words, joined
    final = Categorical.from_json(engine.checkpoints[-1][2]["policy"])
    assert (final.probs()[range(4), TARGET] > 0.9).all()
    # the samples' mean loss (the baseline) fell from near-random to near zero
    baselines = [state["baseline"] for _, _, state in engine.checkpoints[1:-1]]
    assert baselines[0] > 2.5 and np.mean(baselines[-5:]) < 0.5
    # every scored prompt is ranked by its loss
    assert engine.preferred[modes[-1].id] == 0.0
    assert all(engine.preferred[c.id] == -mismatches(c) for c in engine.made)


def test_lineage_modes_and_samples() -> None:
    engine = FakeEngine(reviews_task(), reply=lambda ask: None, outcomes=synthetic)
    run(bdpl(steps=2, samples=3, n_tokens=4, vocab_size=6, max_ngram=1), engine)
    by_gen: dict[int, list[Candidate]] = {}
    for c in engine.made:
        by_gen.setdefault(c.generation, []).append(c)
    assert [c.operator for c in by_gen[0]] == ["seed", "seed"]
    for t in (1, 2):
        mode, *samples = by_gen[t]
        assert mode.operator == "bdpl_mode" and len(samples) == 3
        assert all(s.operator == "bdpl_sample" and s.parents == (mode.id,) for s in samples)
    # the untrained distribution's mode: the vocabulary's leading entries
    assert by_gen[1][0].parents == () and by_gen[1][0].meta["entries"] == [0, 1, 2, 3]
    # a mode descends from the previous mode and the samples that moved the distribution
    assert by_gen[2][0].parents == tuple(c.id for c in by_gen[1])
    assert [c.operator for c in by_gen[3]] == ["bdpl_mode"]  # the final distribution's mode
    assert by_gen[3][0].parents == tuple(c.id for c in by_gen[2])
    assert [g for g, _, _ in engine.checkpoints] == [0, 1, 2, 3]
    state = engine.checkpoints[1][2]
    assert state["vocabulary"] == ["good", "awful", "great", "bad", "lovely", "dull"]
    assert state["baseline"] == pytest.approx(np.mean(state["losses"]))
    # every scored prompt costs a call per example of the mini-batch: the seeds, then 1 + 3 a
    # step, then the final mode
    assert engine.calls == 2 + 4 + 4 + 1


def test_best_seed_prefix() -> None:
    def outcomes(cand: Candidate, split: str) -> list[Outcome]:
        right = -0.1 if cand.text.startswith("Good or bad?") else -2.0
        return [Outcome("x", "pos", "pos", 1.0, label_logprobs={"pos": right, "neg": -1.0})]

    engine = FakeEngine(reviews_task(), reply=lambda ask: None, outcomes=outcomes)
    run(bdpl(steps=1, samples=2, n_tokens=2, max_ngram=1, prefix="best_seed"), engine)
    seeds = engine.made[:2]
    later = engine.made[2:]
    assert later and all(c.text.startswith("Good or bad? ") for c in later)
    assert later[0].parents == (seeds[1].id,)  # the first mode comes from the seed it extends


def test_without_label_log_probabilities_it_stops_at_once() -> None:
    def outcomes(cand: Candidate, split: str) -> list[Outcome]:
        return [Outcome("x", "pos", "pos", 1.0)]  # a generated answer: no label scores

    engine = FakeEngine(reviews_task(), reply=lambda ask: None, outcomes=outcomes)
    with pytest.raises(ValueError, match="no log-probabilities"):
        run(bdpl(steps=3), engine)
    assert engine.calls == 2  # the seeds, and nothing after them


def test_specs_it_cannot_run_are_refused_naming_why() -> None:
    with pytest.raises(SpecError) as err:
        parse_spec({"task": "sentiment", "algorithm": {"name": "bdpl"},
                    "evaluation": {"label_scoring": False}})
    assert "evaluation.label_scoring" in str(err.value) and "log-probabilities" in str(err.value)
    with pytest.raises(SpecError) as err:
        parse_spec({"task": "arithmetic", "algorithm": {"name": "bdpl"}})
    assert "task" in str(err.value) and "labels" in str(err.value)
    with pytest.raises(SpecError, match=r"algorithm\.samples"):
        parse_spec({"task": "sentiment", "algorithm": {"name": "bdpl", "samples": 1}})
    spec = parse_spec({"task": "topic", "algorithm": {"name": "bdpl", "steps": 3}})
    assert spec.algorithm.params == {"steps": 3}



def test_compare_and_the_quality_bench_give_it_the_parameters_it_has() -> None:
    from bench import quality
    from evo.app.compare import run_specs

    shared = parse_spec({"task": "topic", "algorithm": {
        "name": "opro", "steps": 4, "train_subset": 8, "samples_per_step": 3}})
    [_, (_, _, ours)] = run_specs(shared, ["opro", "bdpl"], 1)
    assert ours.algorithm.name == "bdpl"
    assert ours.algorithm.params == {"steps": 4, "train_subset": 8}
    # the bench sizes its mini-batch like OPRO's sample and lets the budget stop it
    spec = quality.evo_spec("sentiment", "bdpl", 200, 1, 8, quality.load("sentiment"))
    assert spec["algorithm"] == {"name": "bdpl", "train_subset": 8, "steps": 1000}
    assert parse_spec(spec).algorithm.name == "bdpl"

# -- through the driver, with a scripted model -------------------------------------------------


def odd_digits_reply(request: LLMRequest) -> dict[str, float]:
    """The right label's log-probability rises with the odd digits in the prompt (the toy task's
    inputs are "item i of n"; its label is yes for odd i)."""
    text = request.messages[-1].content
    prompt, _, item = text.partition("\n\nInput: ")
    i = int(re.search(r"item (\d+)", item).group(1))
    gold = "yes" if i % 2 else "no"
    odd = sum(int(d) % 2 for d in re.findall(r"\b\d\b", prompt))
    return {w: (-1.0 + 0.2 * odd if w == gold else -1.0) for w in request.labels}


def test_resumes_from_its_checkpoint_as_if_never_stopped(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helpers, "label_reply", odd_digits_reply)
    spec = {"algorithm": {"name": "bdpl", "steps": 4, "samples": 3, "n_tokens": 3,
                          "min_count": 1, "train_subset": 6, "lr": 0.5}}
    straight, resumed = asyncio.run(crash_and_resume(spec, lambda r: "", store, None, crash_at=3))
    record = job_record(store, resumed)
    assert record == job_record(store, straight)
    assert record["status"] == "completed"
    ops = [c[1] for c in record["candidates"]]
    assert ops.count("bdpl_mode") == 5 and ops.count("bdpl_sample") == 12
    # the losses told prompts apart, so the distribution moved
    state = store.latest_checkpoint(resumed)[1]["algorithm"]
    assert np.abs(Categorical.from_json(state["policy"]).logits).max() > 0.5


# -- the real model, through llama-cpp-python's own OpenAI-compatible server --------------------


@pytest.mark.model
def test_a_tiny_job_through_an_openai_compatible_server(tmp_path) -> None:
    from evo.app.settings import Settings
    from tests.servers import start_llama_server
    from tests.test_e2e_local import small_copy
    from workers.llm_local import bundled_model_path
    from workers.runner import optimize

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'job.db'}", executor="inprocess")
    spec = {
        # the seed asks for the label word: label scores are read from the 20 most likely first
        # tokens, and labels outside them all get the same floor (no loss to learn from)
        "task": small_copy(tmp_path, "sentiment", n=4) | {"seed_prompts": [
            "Classify the sentiment of this review. Answer with one word: positive or negative."]},
        "algorithm": {"name": "bdpl", "steps": 1, "samples": 2, "n_tokens": 3,
                      "train_subset": 3, "min_count": 1, "prefix": "best_seed"},
        "evaluation": {"top_k": 1, "test": False},
        "budget": {"calls": 200},
    }
    with start_llama_server(bundled_model_path(), n_ctx=1024, threads=1) as url:
        spec["models"] = {"task": {"provider": "openai", "model": "smollm2", "base_url": url,
                                   "workers": 1}}
        result = optimize(spec, settings=settings)
    assert result.status == "completed", result.reason
    with Store(settings.database_url) as store:
        cands = store.candidates(result.job_id)
        calls = store.llm_calls(result.job_id)
        state = store.latest_checkpoint(result.job_id)[1]["algorithm"]
    assert [c.operator for c in cands].count("bdpl_sample") == 2
    assert {c.purpose for c in calls} == {"evaluate"} and all(c.error is None for c in calls)
    # the server's log-probabilities gave losses that told the samples apart: the logits moved
    assert np.abs(Categorical.from_json(state["policy"]).logits).max() > 0.05
    assert 0 < state["mode_loss"] < 10


def sure_but_sometimes_wrong_reply(request) -> dict[str, float]:
    """Seed prompts (they carry "q="): always right but barely (a high loss). Any other prompt:
    sure of itself (a low loss) and wrong on one example in ten."""
    text = request.messages[-1].content
    i = int(re.search(r"item (\d+) of", text).group(1))
    gold = "yes" if i % 2 else "no"
    if "q=" in text:
        return {w: (-0.69 if w == gold else -0.70) for w in request.labels}
    right = i % 10 != 0
    return {w: (0.0 if (w == gold) == right else -3.0) for w in request.labels}


def test_a_lower_loss_names_the_finalists_but_a_better_seed_on_dev_still_wins(
        store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(helpers, "label_reply", sure_but_sometimes_wrong_reply)
    spec = {"algorithm": {"name": "bdpl", "steps": 2, "samples": 3, "n_tokens": 3,
                          "min_count": 1, "train_subset": 10}, "evaluation": {"top_k": 1}}
    driver, _, _ = helpers.scripted_job(spec, lambda r: "", store)
    result = asyncio.run(driver.run())
    learned = [c for c in store.candidates(result.job_id) if c.operator != "seed"]
    assert learned and min(-driver.search.preferred[c.id] for c in learned) < min(
        -v for cid, v in driver.search.preferred.items() if cid not in {c.id for c in learned})
    winner = result.leaderboard[0]
    assert winner.candidate.operator == "seed" and winner.dev == 1.0
    assert result.leaderboard[1].dev == pytest.approx(0.9)


@pytest.mark.timeout(300)
def test_bdpl_curve_reads_the_quality_benchmarks_job_back(tmp_path) -> None:
    """bench/bdpl_curve.py on the bundled model, at the smallest budget that buys one step."""
    from bench import bdpl_curve

    out = tmp_path / "curve.json"
    figures = bdpl_curve.main(["--task", "sentiment", "--calls", "60", "--dev-subset", "4",
                               "--dev-limit", "8", "--test-limit", "4", "--out", str(out)])
    assert figures == json.loads(out.read_text())
    # 3 seeds x 4 examples, then steps of 9 prompts x 4: one step fits in 60 search calls
    assert figures["steps"] == 1 and figures["curve"][0][0] == 1
    _, mode_loss, least, mean = figures["curve"][0]
    assert least <= mean and mode_loss > 0
    assert len(figures["positions"]) == 20  # n_tokens
    # one small step from uniform: every position still nearly so
    assert all(0.95 < q["entropy"] <= 1.0 for q in figures["positions"])
    assert figures["winner"] and figures["winner_dev"] is not None
