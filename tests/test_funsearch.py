"""FunSearch: the program database's rules on its own and on the in-memory engine, and whole jobs
on the real driver and sandbox with a scripted proposer (finding a planted better heuristic,
resuming after a crash)."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from collections.abc import Sequence

import pytest

from evo.algorithms.funsearch import FunSearch, FunSearchParams
from evo.best_shot import function_body, link_versions, program, prompt
from evo.candidate import Candidate, Outcome, Score
from evo.llm import LLMRequest
from evo.problems.binpacking import bin_packing
from evo.program_db import ProgramDatabase, softmax
from evo.testing import FakeEngine
from storage import Store
from tests.helpers import crash_and_resume, job_record, scripted_job

# A priority of our own for Weibull(3, 45) items: the room left, weighted by how unlikely a bin
# with this much free capacity is to take more (a Weibull(3, 40) survival curve). On these
# instances it packs with less excess than best fit on every split.
WEIBULL = "\n    left = bins - item\n    return -left * np.exp(-(bins / 40) ** 3)\n"
DULL = ["\n    return -(bins - item) * 2.0\n",  # best fit again: the seed's signature
        "\n    return bins\n",  # worst fit
        "\n    return (bins -\n"]  # does not parse


def small_binpacking():
    task = bin_packing(items=60)
    return type(task)(**{**task.__dict__, "cpu_s": 4.0, "wall_s": 8.0})


# ---- the database on its own ------------------------------------------------------------------


def database(lengths: dict[str, int], islands: int = 1, period: int = 10) -> ProgramDatabase:
    return ProgramDatabase(islands, temperature=0.5, period=period, length=lengths.__getitem__)


def test_programs_with_the_same_signature_share_a_cluster() -> None:
    db = database({"a": 1, "b": 1, "c": 1})
    db.register(0, "a", (0.1, 0.3), 0.2)
    db.register(0, "b", (0.1, 0.3), 0.2)
    db.register(0, "c", (0.3, 0.1), 0.2)  # the same mean, another signature
    clusters = db.islands[0].clusters
    assert [c.programs for c in clusters.values()] == [["a", "b"], ["c"]]


def test_clusters_are_drawn_by_a_boltzmann_distribution_whose_temperature_falls() -> None:
    db = database({"a": 1, "b": 1, "c": 1}, period=10)
    for name, score in (("a", 0.0), ("b", 0.5), ("c", 1.0)):
        db.register(0, name, (score,), score)
    # three registered: temperature 0.5 * (1 - 3/10); normalized scores 0, 0.5, 1
    t = 0.5 * 0.7
    assert db.cluster_temperature(0) == pytest.approx(t)
    assert [p for _, p in db.cluster_probabilities(0)] == pytest.approx(softmax([0, 0.5, 1], t))
    before = db.cluster_probabilities(0)[-1][1]
    for _ in range(6):  # nine registered: colder, the best cluster likelier
        db.register(0, "c", (1.0,), 1.0)
    assert db.cluster_temperature(0) == pytest.approx(0.05)
    assert db.cluster_probabilities(0)[-1][1] > before > 1 / 3
    db.register(0, "c", (1.0,), 1.0)  # ten: the period is over, it starts hot again
    assert db.cluster_temperature(0) == pytest.approx(0.5)
    # and the draws follow the distribution
    rng = random.Random(3)
    expected = dict((c.programs[0], p) for c, p in db.cluster_probabilities(0))
    counts = Counter(db.sample(rng, 0, 1)[0][0] for _ in range(20_000))
    for name, p in expected.items():
        assert abs(counts[name] / 20_000 - p) < 0.015


def test_shorter_programs_are_likelier_within_a_cluster() -> None:
    lengths = {"short": 40, "long": 400}
    db = database(lengths)
    for name in lengths:
        db.register(0, name, (0.5,), 0.5)
    probs = dict(db.program_probabilities(db.islands[0].clusters[(0.5,)]))
    assert probs["short"] == pytest.approx(1 / (1 + math.exp(-(400 - 40) / (400 + 1e-6))))
    rng = random.Random(0)
    counts = Counter(db.sample(rng, 0, 1)[0][0] for _ in range(5000))
    assert counts["short"] > 1.5 * counts["long"]


def test_the_weaker_half_of_the_islands_is_founded_again_from_the_best_of_the_others() -> None:
    lengths = {f"p{i}": 10 for i in range(8)} | {"p3short": 5}
    db = database(lengths, islands=4)
    for island, best in enumerate((0.1, 0.9, 0.4, 0.7)):
        db.register(island, f"p{2 * island}", (best,), best)
        db.register(island, f"p{2 * island + 1}", (best - 0.05,), best - 0.05)
    db.register(1, "p3short", (0.9,), 0.9)  # the shorter of the best cluster founds
    done = db.reset_weaker_half(random.Random(1))
    assert sorted(i for i, _ in done) == [0, 2]  # best 0.1 and 0.4 are the weaker half
    assert {source for _, source in done} <= {1, 3}
    for island, source in done:
        founder = {1: "p3short", 3: "p6"}[source]
        assert db.islands[island].program_ids() == [founder]
        assert db.islands[island].registered == 1
    assert db.islands[1].program_ids() == ["p2", "p3short", "p3"]  # the stronger half stays
    assert db.islands[3].program_ids() == ["p6", "p7"]


# ---- the prompt and the answer -------------------------------------------------------------


def test_a_best_shot_prompt_shows_versions_and_asks_for_the_next() -> None:
    task = bin_packing(items=10)
    text, ask = prompt(task, ["    return -(bins - item)", "    return bins"])
    assert text.index("def priority_v0(") < text.index("-(bins - item)")
    assert text.index("def priority_v1(") < text.index("return bins")
    assert '"""Improved version of `priority_v0`."""' in text
    # the prompt ends right after the docstring of v2: no newline
    assert ask.startswith("def priority_v2(item: float, bins: np.ndarray)")
    assert ask.endswith('"""Improved version of `priority_v1`."""')
    code, why = program(task, WEIBULL + "\n\ndef priority_v3(item, bins):\n    return 0\n")
    assert why is None and code.endswith(
        "def priority(item: float, bins: np.ndarray) -> np.ndarray:" + WEIBULL.rstrip() + "\n")
    assert code.startswith("import numpy as np\n")
    assert function_body(code, "priority") == WEIBULL.strip("\n")
    assert program(task, "\n    return (bins -\n") == (None, "syntax_error")
    assert program(task, "\n\nprint('hello')") == (None, "empty")
    assert program(task, " and more prose.\n    return bins") == (None, "syntax_error")
    # a chat model's whole function, after a sentence and in a fenced block
    chat = ("Here is v2:\n```python\ndef priority_v2(item, bins):\n"
            "    return -(bins - item) ** 2\n```\nIt packs tightly.")
    assert program(task, chat) == ("import numpy as np\n\n\ndef priority(item, bins):\n"
                                   "    return -(bins - item) ** 2\n", None)


# ---- the loop on the in-memory engine ---------------------------------------------------------


class SignatureEngine(FakeEngine):
    """Scores a program per instance from a ``# scores a b`` comment in it (else from its
    length), as the sandbox gives per-instance objectives."""

    async def evaluate(self, candidates: Sequence[Candidate], split: str = "dev",
                       subset: int | None = None) -> list[Score]:
        scores = []
        for cand in candidates:
            self._spend(1)
            found = re.search(r"# scores ([-\d. ]+)", cand.text)
            values = ([float(v) for v in found.group(1).split()] if found
                      else [len(cand.text) / 1000] * 2)
            outcomes = tuple(Outcome(f"{split}-{i}", "", "", v) for i, v in enumerate(values))
            scores.append(Score(cand.id, split, sum(values) / len(values), len(values), 0, None,
                                outcomes))
        self.scored += scores
        return scores


def shown_bodies(prompt: str) -> list[str]:
    """The bodies of the versions a best-shot prompt shows, v0 first."""
    return re.findall(r'def priority_v\d+\([^\n]*\n    """[^\n]*"""\n(.*?)(?=\n\n\n)', prompt,
                      re.S)


def engine_for(replies: list[str], seed: int = 0) -> SignatureEngine:
    answers = iter(replies * 1000)
    return SignatureEngine(bin_packing(items=10), reply=lambda ask: next(answers), seed=seed)


async def test_each_prompt_shows_its_programs_weakest_first_and_asks_for_one_more() -> None:
    replies = [f"\n    return bins * {i}  # scores {i / 10} {i / 10}\n" for i in range(1, 9)]
    engine = engine_for(replies)
    params = FunSearchParams(generations=4, islands=2, prompts=2, samples_per_prompt=2,
                             reset_every=100)
    await FunSearch(params).run(engine)
    score = {s.candidate_id: s.value for s in engine.scored}
    by_body = {function_body(c.text, "priority"): c.id for c in engine.made if c.id in score}
    asked = [a for a in engine.asked if a.purpose == "best_shot"]
    assert len(asked) == 4 * 2 * 2
    two = 0
    for ask in asked:
        bodies = shown_bodies(ask.prompt)
        shown = [score[by_body[b]] for b in bodies]
        assert shown == sorted(shown)  # v0 the weakest
        assert ask.prefill.startswith(f"def priority_v{len(bodies)}(")
        assert ask.prefill.endswith(f"`priority_v{len(bodies) - 1}`.\"\"\"")
        two += len(bodies) == 2
    assert two > len(asked) // 2  # two clusters are shown once the islands hold two
    # each child lives on the island of its prompt, and the checkpoint clusters it there
    _, _, state = engine.checkpoints[-1]
    for island, data in enumerate(state["islands"]):
        held = [p for c in data["clusters"] for p in c["programs"]]
        children = [c for c in engine.made if c.id in held and c.operator == "best_shot"]
        assert all(c.island == island for c in children)


async def test_a_childs_parents_are_the_versions_its_prompt_showed_in_order() -> None:
    replies = [f"\n    return bins * {i}  # scores {i / 10} {i % 3 / 10}\n" for i in range(1, 40)]
    engine = engine_for(replies, seed=2)
    params = FunSearchParams(generations=4, islands=2, prompts=2, samples_per_prompt=2,
                             reset_every=100)
    await FunSearch(params).run(engine)
    scored = {s.candidate_id for s in engine.scored}
    by_body = {function_body(c.text, "priority"): c.id for c in engine.made if c.id in scored}
    children = [c for c in engine.made if c.operator == "best_shot"]
    assert children
    for child in children:
        # the sample it was read from, and the prompt of that sample (made_by: "ask-N")
        ask = engine.asked[int(child.meta["made_by"].removeprefix("ask-")) - 1]
        bodies = shown_bodies(ask.prompt)
        assert child.parents == tuple(by_body[b] for b in bodies)  # v0, v1, … in that order
    assert any(len(c.parents) == 2 for c in children)


async def test_programs_cluster_by_signature_not_by_text_or_mean() -> None:
    replies = ["\n    return bins  # scores 0.1 0.3\n",
               "\n    return bins + 0  # scores 0.1 0.3\n",  # same signature, other text
               "\n    return bins + 1  # scores 0.3 0.1\n"]  # same mean, other signature
    engine = engine_for(replies)
    params = FunSearchParams(generations=1, islands=1, prompts=1, samples_per_prompt=3)
    await FunSearch(params).run(engine)
    _, _, state = engine.checkpoints[-1]
    clusters = {tuple(c["signature"]): len(c["programs"]) for c in state["islands"][0]["clusters"]}
    assert clusters[(0.1, 0.3)] == 2 and clusters[(0.3, 0.1)] == 1


async def test_resets_happen_every_few_generations_and_keep_the_best() -> None:
    replies = [f"\n    return bins * {i}  # scores {i / 100} 0\n" for i in range(1, 40)]
    engine = engine_for(replies, seed=4)
    params = FunSearchParams(generations=4, islands=4, prompts=3, samples_per_prompt=2,
                             reset_every=2)
    await FunSearch(params).run(engine)
    states = {g: s for g, _, s in engine.checkpoints}
    founded = [i for i, isle in enumerate(states[2]["islands"]) if isle["registered"] == 1]
    assert len(founded) == 2  # the weaker half, each founded by one program
    best = max(s.value for s in engine.scored)
    held = {p for isle in states[4]["islands"] for c in isle["clusters"] for p in c["programs"]}
    assert any(s.value == best for s in engine.scored if s.candidate_id in held)


async def test_unusable_answers_are_rejected_with_their_reason() -> None:
    engine = engine_for(["\n    return (bins -\n", "  prose instead\n",
                         "\n    return -(bins - item)\n"])
    await FunSearch(FunSearchParams(generations=1, islands=1, prompts=1,
                                    samples_per_prompt=3)).run(engine)
    # the third is the best-fit seed's function again: not run a second time
    assert engine.rejections == Counter({"best_shot:syntax_error": 2, "best_shot:unchanged": 1})


# ---- whole jobs: the real driver and sandbox, a scripted proposer ------------------------------


def proposer(request: LLMRequest) -> str:
    """Mostly dull or broken variants; one sample in four is the planted Weibull priority."""
    assert request.prefill.startswith("def priority_v")
    return WEIBULL if request.sample % 4 == 3 else DULL[request.sample % 4 % 3]


async def test_funsearch_finds_keeps_and_returns_a_better_heuristic(store: Store) -> None:
    task = small_binpacking()
    spec = {"task": "binpacking",
            "algorithm": {"name": "funsearch", "generations": 3, "islands": 2, "prompts": 2,
                          "samples_per_prompt": 4, "reset_every": 2},
            "evaluation": {"top_k": 2}, "budget": {"calls": 500}}
    driver, client, states = scripted_job(spec, proposer, store, task=task)
    result = await driver.run()
    assert result.status == "completed", result.reason
    weibull, _ = program(task, WEIBULL)
    found = [c for c in store.candidates(driver.job_id) if c.text == weibull]
    assert len(found) == 1 and found[0].operator == "best_shot"
    # kept in the database to the end, and shown as the stronger version once there
    last = states[max(states)]["islands"]
    assert any(found[0].id in c["programs"] for isle in last for c in isle["clusters"])
    shown_best = [r for r in client.requests
                  if "def priority_v1(" in r.messages[-1].content
                  and WEIBULL.strip() in r.messages[-1].content.split("def priority_v1(")[1]]
    assert shown_best
    # the job's winner, better than best fit on dev and test
    assert result.best is not None and result.best.candidate.text == weibull
    assert result.stats["seed_dev"] < result.best.dev
    assert result.stats["seed_test"] < result.best.test
    assert any(k.endswith(":syntax_error") for k in result.stats["rejected"])


async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store) -> None:
    spec = {"task": "binpacking",
            "algorithm": {"name": "funsearch", "generations": 3, "islands": 2, "prompts": 2,
                          "samples_per_prompt": 2, "reset_every": 2},
            "evaluation": {"top_k": 1, "test": False}, "budget": {"calls": 500}}
    straight, resumed = await crash_and_resume(spec, proposer, store, None, crash_at=3,
                                               task=small_binpacking())
    assert job_record(store, resumed) == job_record(store, straight)
    assert store.get_job(resumed).status == "completed"


def test_the_benchmarks_proposer_writes_mostly_programs_for_both_problems() -> None:
    from bench.funsearch import propose, union_length
    from evo.problems.tsp import tsp_construction

    for task in (bin_packing(items=10), tsp_construction(n=5)):
        made = [program(task, propose(task.name, f"prompt {i}")) for i in range(200)]
        valid = sum(code is not None for code, _ in made)
        assert 0.75 * 200 <= valid < 200  # about one in eight does not parse
    assert union_length([(0, 2), (1, 3), (5, 6)], 0.5, 5.5) == pytest.approx(3.0)


def test_a_body_that_calls_a_shown_version_gets_its_definition_and_runs() -> None:
    from workers.sandbox import Limits, SubprocessSandbox

    task = bin_packing(items=10)
    bodies = ["    return -(bins - item)", "    return 2 * priority_v0(item, bins)"]
    code, _ = program(task, "\n    return priority_v1(item, bins) - 1\n")
    linked = link_versions(task, code, bodies)
    # v1 calls v0: both come along, as the prompt wrote them, before the function itself
    assert linked.index("def priority_v0(") < linked.index("def priority_v1(") < linked.index(
        "def priority(")
    assert function_body(linked, "priority") == "    return priority_v1(item, bins) - 1"
    args = {"instances": list(task.split("train")), **task.params}
    ran = SubprocessSandbox().run(task.program(linked), "evo_harness", args,
                                  limits=Limits(cpu_s=5, wall_s=10))
    plain, _ = program(task, "\n    return -(bins - item)\n")
    best_fit = SubprocessSandbox().run(task.program(plain), "evo_harness", args,
                                       limits=Limits(cpu_s=5, wall_s=10))
    # the same ranking of bins as best fit, so the same packing
    assert ran.ok and best_fit.ok and ran.value == best_fit.value
    # a body that calls its own version calls the function; no shown version, nothing added
    code, _ = program(task, "\n    return bins if item > 1 else priority_v2(item + 1, bins)\n")
    assert link_versions(task, code, bodies) == code.replace("priority_v2", "priority")
    code, _ = program(task, "\n    return -(bins - item)\n")
    assert link_versions(task, code, bodies) == code


async def test_a_child_that_calls_v0_is_stored_with_v0s_definition() -> None:
    engine = engine_for(["\n    return priority_v0(item, bins) * 2  # scores 0.2 0.2\n"])
    params = FunSearchParams(generations=1, islands=1, prompts=1, samples_per_prompt=1)
    await FunSearch(params).run(engine)
    (child,) = [c for c in engine.made if c.operator == "best_shot"]
    shown = engine.lookup(list(child.parents))  # v0 first
    assert child.text.index("def priority_v0(") < child.text.index("def priority(")
    assert function_body(child.text, "priority_v0") == function_body(shown[0].text, "priority")
    assert "def priority_v1(" not in child.text  # not called, not added


def test_a_tsp_rule_cannot_shorten_its_tour_by_editing_the_distances() -> None:
    from evo.problems.tsp import tsp_construction
    from workers.sandbox import Limits, SubprocessSandbox

    task = tsp_construction(n=12)
    cheat = ("import numpy as np\n\ndef select_next_node(current, start, unvisited, distances):\n"
             "    distances[:] = 0\n    return int(unvisited[0])\n")
    instances = list(task.split("train"))
    result = SubprocessSandbox().run(task.program(cheat), "evo_harness",
                                     {"instances": instances}, limits=Limits(cpu_s=5, wall_s=10))
    assert not result.ok and "read-only" in (result.reason or "")  # not a tour of length 0


async def test_the_prose_of_the_prompt_is_a_template_a_spec_may_replace() -> None:
    from evo.spec_io import SpecError, parse_spec

    engine = engine_for(["\n    return bins  # scores 0.1 0.1\n"])
    params = FunSearchParams(generations=1, islands=1, prompts=1, samples_per_prompt=1)
    await FunSearch(params, {"improved": "A better `{previous}`."}).run(engine)
    assert engine.asked[0].prefill.endswith('"""A better `priority_v1`."""')
    with pytest.raises(SpecError, match="available fields: previous"):
        parse_spec({"task": "binpacking", "algorithm": {
            "name": "funsearch", "templates": {"improved": "Better than {parent}."}}})
