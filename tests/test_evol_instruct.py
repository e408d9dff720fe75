"""Evol-Instruct: its meta-prompts, the draw of evolutions, each elimination reason, per-round
counts and lineage, seeds from a file, the job's data set (JSONL, Hugging Face folder, API),
and resuming."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from typer.testing import CliRunner

from api import create_app
from api.keys import create_key
from evo.algorithms.evol_instruct import (
    BREADTH,
    DEPTH_OPERATORS,
    ELIMINATIONS,
    EvolInstruct,
    EvolInstructParams,
    eliminate_instruction,
    unanswerable,
)
from evo.app.cli_common import UserError
from evo.app.dataset import HFMissing, NotADataSet, job_dataset, save_hf, to_jsonl
from evo.app.export import DataSetJob, render_export
from evo.app.settings import Settings
from evo.engine import REJECTIONS, EngineMisuse
from evo.llm import LLMRequest
from evo.meta_prompt import words
from evo.spec_io import SpecError, load_spec, parse_spec
from evo.task import Example
from evo.testing import Ask, FakeEngine
from storage import Store
from tests.helpers import crash_and_resume, job_record, scripted_job, toy_task

INSTRUCTION = re.compile(r"<instruction>(.*?)</instruction>", re.S)


def evolved(request: LLMRequest | Ask) -> str:
    """An evolution adds a new word to its parent (numbered by the parent's length); a response
    restates its instruction. Seeds whose text says "fail" evolve into nothing."""
    prompt = request.messages[-1].content
    if not request.prefill:  # the task model, answering
        return f"Here is an answer to {prompt}"
    parent = INSTRUCTION.search(prompt).group(1)
    if "fail" in parent:
        return "</instruction>"
    return f"{parent} Mention fact{len(words(parent))}.</instruction>"


def engine_for(reply=evolved, seeds=("item one", "item two fail", "item three"), **kw):
    task = toy_task()
    train = tuple(Example(f"train{i}", text, "yes") for i, text in enumerate(seeds))
    task = dataclasses.replace(task, splits={**task.splits, "train": train})
    return FakeEngine(task, reply=reply, **kw)


def algorithm(**params) -> EvolInstruct:
    return EvolInstruct(EvolInstructParams(**params))


# ---- the meta-prompts and the draw ---------------------------------------------------------


def test_each_in_depth_operator_and_breadth_build_their_own_meta_prompt() -> None:
    algo = algorithm(added_words=12)
    sentences = {op: algo.prompts[op] for op in DEPTH_OPERATORS}
    for op in DEPTH_OPERATORS:
        text = algo.meta_prompt(op, "Name three rivers.").text
        assert "<instruction>Name three rivers.</instruction>" in text
        assert sentences[op] in text and "at most 12 words" in text
        assert [o for o, s in sentences.items() if s in text] == [op]
    breadth = algo.meta_prompt(BREADTH, "Name three rivers.").text
    assert "<instruction>Name three rivers.</instruction>" in breadth
    assert "same field" in breadth and not any(s in breadth for s in sentences.values())


@pytest.mark.parametrize("op", DEPTH_OPERATORS)
async def test_a_run_asks_each_operator_by_its_meta_prompt(op: str) -> None:
    engine = engine_for()
    await algorithm(rounds=1, depth_operators=[op], breadth=0.0).run(engine)
    evolving = [a for a in engine.asked if a.prefill]
    assert len(evolving) == 3 and {a.purpose for a in evolving} == {op}
    assert all(EvolInstruct.templates[op] in a.prompt for a in evolving)
    assert all(a.stop == ("</instruction>",) and a.model == "meta" for a in evolving)
    answering = [a for a in engine.asked if not a.prefill]
    assert {a.purpose for a in answering} == {"respond"} and {a.model for a in answering} == {
        "task"}


def test_breadth_is_drawn_at_its_rate_and_more_rarely_than_depth() -> None:
    engine = engine_for()
    draws = Counter(algorithm(breadth=0.15).draw(engine) for _ in range(6000))
    assert 0.13 < draws[BREADTH] / 6000 < 0.17
    assert draws[BREADTH] < min(draws[op] for op in DEPTH_OPERATORS)
    assert set(draws) == {BREADTH, *DEPTH_OPERATORS}
    never = Counter(algorithm(breadth=0.0).draw(engine) for _ in range(500))
    assert BREADTH not in never
    with pytest.raises(ValidationError, match="breadth"):
        EvolInstructParams(breadth=0.5)  # as often as depth is not "rarer"


# ---- the eliminations ----------------------------------------------------------------------


def test_every_elimination_reason_is_a_rejection_reason() -> None:
    assert set(ELIMINATIONS) <= REJECTIONS


PARENT = "Name three rivers in Peru."


@pytest.mark.parametrize(("reason", "fails", "passes"), [
    ("empty", "", "Name three rivers in Peru and give their lengths."),
    ("too_long", "Name three rivers in Peru and give " + "a " * 30 + "length.",
     "Name three rivers in Peru and give their lengths."),
    ("echoed_meta_prompt", "Rewrite the original instruction: name rivers in Chile.",
     "Name three rivers in Chile."),
    ("echoed_meta_prompt", "The harder instruction must still make sense and be answerable",
     "Name three rivers in Chile and say which is longest."),
    ("too_short", "Chilean rivers?", "Chilean rivers, longest first?"),
    ("no_gain", "Please name three rivers in Peru.", "Name three rivers in Peru by length."),
    ("duplicate", "Name the longest river in Peru.", "Name the shortest river in Peru."),
])
def test_each_elimination_reason_has_a_case_that_triggers_it_and_one_that_does_not(
    reason: str, fails: str, passes: str
) -> None:
    params = EvolInstructParams(max_chars=80, min_words=3)
    meta = algorithm().meta_prompt("deepen", PARENT)
    seen = {"name the longest river in peru."}
    assert eliminate_instruction(fails, PARENT, meta, seen, params) == reason
    assert eliminate_instruction(passes, PARENT, meta, seen, params) is None


def test_a_response_that_refuses_or_says_nothing_is_no_answer() -> None:
    assert unanswerable("Sorry, I cannot help with that request.", 80)
    assert unanswerable("I’m unable to do this.", 80)
    assert unanswerable("... ?!", 80)  # only punctuation
    assert unanswerable("It is what it is.", 80)  # only stop words
    assert not unanswerable("The Amazon, the Ucayali and the Marañón.", 80)
    long_apology = "Sorry for the wait: " + "the Amazon river flows east " * 20
    assert not unanswerable(long_apology, 80)  # a full answer that apologises is an answer


async def test_failed_calls_and_unanswerable_responses_eliminate_at_the_right_step() -> None:
    def reply(ask: Ask) -> str | None:
        if ask.prefill and "item one" in ask.prompt:
            return None  # the evolving call fails
        if not ask.prefill and "fact" in ask.prompt and "item three" in ask.prompt:
            return "Sorry, I can't."
        if not ask.prefill and "item two" in ask.prompt and "fact" in ask.prompt:
            return None  # the response call fails
        return evolved(ask)

    engine = engine_for(reply, seeds=("item one", "item two", "item three"))
    await algorithm(rounds=1).run(engine)
    reasons = {c.parents[0]: c.meta.get("eliminated") for c in engine.recorded if c.parents}
    seeds = {c.text: c.id for c in engine.recorded if not c.parents}
    assert reasons == {seeds["item one"]: "call_failed", seeds["item two"]: "call_failed",
                       seeds["item three"]: "unanswerable"}
    refused = next(c for c in engine.recorded if c.meta.get("eliminated") == "unanswerable")
    assert refused.meta["response"] == "Sorry, I can't."
    assert sum(engine.rejections.values()) == 3


async def test_the_optional_judge_eliminates_what_it_calls_the_same() -> None:
    def reply(ask: Ask) -> str | None:
        if ask.purpose == "judge":
            return {"item one": "Yes, the same.", "item three": "No."}.get(
                next((k for k in ("item one", "item three") if k in ask.prompt), ""))
        return evolved(ask)

    engine = engine_for(reply)
    await algorithm(rounds=1, judge=True).run(engine)
    judged = [a for a in engine.asked if a.purpose == "judge"]
    # the evolution that came back empty is eliminated before it could be judged
    assert len(judged) == 2 and all("Second: <instruction>" in a.prompt for a in judged)
    reasons = {c.text.split(" Mention")[0]: c.meta.get("eliminated")
               for c in engine.recorded if c.generation == 1}
    assert reasons == {"item one": "no_gain", "": "empty", "item three": None}
    answered = [a.prompt for a in engine.asked if a.purpose == "respond"]
    assert answered[3:] == ["item three Mention fact2."]
    plain = engine_for(reply)
    await algorithm(rounds=1).run(plain)
    assert not any(a.purpose == "judge" for a in plain.asked)


# ---- rounds, pool and lineage --------------------------------------------------------------


async def test_per_round_counts_pool_and_lineage() -> None:
    engine = engine_for()
    await algorithm(rounds=2).run(engine)
    rounds = engine.checkpoints[-1][2]["rounds"]
    assert rounds == [{"round": 0, "kept": 3, "eliminated": {}},
                      {"round": 1, "kept": 2, "eliminated": {"empty": 1}},
                      {"round": 2, "kept": 2, "eliminated": {"empty": 1}}]
    assert sum(n for k, n in engine.rejections.items() if k.endswith(":empty")) == 2
    by_id = {c.id: c for c in engine.recorded}
    seeds = {c.text: c for c in engine.recorded if c.operator == "seed"}
    assert all(c.kind == "instruction" for c in engine.recorded)
    for c in engine.recorded:
        if c.generation == 0:
            assert c.parents == () and "made_by" not in c.meta and c.meta["response"]
            continue
        (parent,) = c.parents
        assert c.operator in (*DEPTH_OPERATORS, BREADTH) and c.meta["made_by"]
        if "eliminated" not in c.meta:
            assert c.text.startswith(by_id[parent].text) and c.meta["response"].endswith(c.text)
    # a failed evolution leaves its parent in the pool: round 2 evolves the seed again
    failing = seeds["item two fail"].id
    assert [c.generation for c in engine.recorded if c.parents == (failing,)] == [1, 2]
    # a kept one takes its parent's place: round 2 evolves the round-1 item
    first = next(c for c in engine.recorded if c.generation == 1 and "eliminated" not in c.meta)
    assert [c.generation for c in engine.recorded if c.parents == (first.id,)] == [2]
    assert len(engine.checkpoints[-1][2]["kept"]) == 3 + 2 + 2


# ---- seeds ---------------------------------------------------------------------------------


async def test_seeds_are_the_train_inputs_or_a_random_sample_of_them() -> None:
    engine = engine_for(seeds=("a b c", "d e f", "a b c", "g h i"))
    assert algorithm().seed_texts(engine) == ["a b c", "d e f", "g h i"]
    two = algorithm(seeds=2).seed_texts(engine)
    assert len(two) == 2 and set(two) < {"a b c", "d e f", "g h i"}


@pytest.mark.parametrize(("name", "content"), [
    ("seeds.jsonl", '{"instruction": "Sum 2 and 3."}\n{"instruction": "Name a bird."}\n'),
    ("seeds.csv", "instruction,other\nSum 2 and 3.,x\nName a bird.,y\n"),
    ("seeds.txt", "Sum 2 and 3.\n\nName a bird.\n"),
])
async def test_seeds_from_a_file(tmp_path: Path, name: str, content: str) -> None:
    (tmp_path / name).write_text(content)
    engine = engine_for()
    algo = algorithm(seed_file=str(tmp_path / name), rounds=1)
    await algo.run(engine)
    assert [c.text for c in engine.recorded if c.generation == 0] == ["Sum 2 and 3.",
                                                                      "Name a bird."]


def test_a_bad_seed_file_is_refused_when_the_spec_is_read(tmp_path: Path) -> None:
    (tmp_path / "seeds.jsonl").write_text('{"prompt": "Sum 2 and 3."}\n')
    cases = {str(tmp_path / "missing.jsonl"): "no such file",
             str(tmp_path / "seeds.jsonl"): "no text in column 'instruction' (columns: prompt)"}
    for path, message in cases.items():
        with pytest.raises(SpecError) as err:
            parse_spec({"task": "sentiment",
                        "algorithm": {"name": "evol-instruct", "seed_file": path}})
        assert "algorithm.seed_file" in str(err.value) and message in str(err.value)


def test_a_relative_seed_file_is_read_from_the_spec_files_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "seeds.txt").write_text("Sum 2 and 3.\n")
    (tmp_path / "job.yaml").write_text(
        "task: arithmetic\nalgorithm:\n  name: evol-instruct\n  seed_file: seeds.txt\n")
    monkeypatch.chdir(Path(__file__).parent)
    spec = load_spec(tmp_path / "job.yaml")
    assert spec.algorithm.params["seed_file"] == str(tmp_path / "seeds.txt")


# ---- the job: no final scoring, a data set, resume -----------------------------------------

SPEC = {"algorithm": {"name": "evol-instruct", "rounds": 2, "seeds": 4}}


def job_meta(request: LLMRequest) -> str:
    text = evolved(request)
    return text if request.prefill or "item 3 " not in text else "Sorry, I cannot."


async def test_a_job_records_its_data_set_and_scores_nothing(store: Store) -> None:
    driver, client, _ = scripted_job(SPEC, job_meta, store)
    result = await driver.run()
    assert result.status == "completed" and result.leaderboard == [] and result.seed is None
    assert driver.search.budget.reserve == 0
    assert store.evaluations(driver.job_id) == [] and not any(r.labels for r in client.requests)
    cands = store.candidates(driver.job_id)
    assert {c.kind for c in cands} == {"instruction"}
    data = job_dataset(store, store.get_job(driver.job_id))
    assert [r.round for r in data.rounds] == [0, 1, 2]
    assert sum(r.kept for r in data.rounds) == len(data.items)
    assert sum(r.eliminated for r in data.rounds) == len(data.eliminated)
    eliminated = Counter(e.reason for e in data.eliminated)
    assert eliminated == Counter({r: n for rd in data.rounds for r, n in rd.reasons.items()})
    rejected = Counter()
    for key, n in result.stats["rejected"].items():
        rejected[key.split(":")[1]] += n
    assert rejected == eliminated
    # the lineage the family tree draws: each item's parent is the instruction it evolved from
    edges = {(e.parent_id, e.child_id, e.operator) for e in store.lineage(driver.job_id)}
    assert edges == {(c.parents[0], c.id, c.operator) for c in cands if c.parents}
    by_id = {c.id: c for c in cands}
    for item in data.items:
        seed = by_id[item.id]
        while seed.parents:
            seed = by_id[seed.parents[0]]
        assert item.seed_id == seed.id and seed.operator == "seed"
        if item.round:
            assert item.parent_id and item.evolution in (*DEPTH_OPERATORS, BREADTH)


# 4 answers (round 0), then per round 4 evolutions and up to 4 answers: the crash comes among
# round 1's answers (resumed from round 0's checkpoint) or round 2's (from round 1's)
@pytest.mark.parametrize("crash_at", [10, 17])
async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store, crash_at: int) -> None:
    straight, resumed = await crash_and_resume(SPEC, job_meta, store, None, crash_at=crash_at,
                                               crash_in="generate")
    assert job_record(store, resumed) == job_record(store, straight)
    assert len(job_record(store, straight)["candidates"]) > 4


# ---- exports and the API -------------------------------------------------------------------


@pytest.fixture
async def dataset_job(store: Store) -> str:
    driver, _, _ = scripted_job(SPEC, job_meta, store)
    await driver.run()
    return driver.job_id


async def test_jsonl_and_hugging_face_exports_hold_every_item(
    store: Store, dataset_job: str, tmp_path: Path
) -> None:
    datasets = pytest.importorskip("datasets")
    job = store.get_job(dataset_job)
    data = job_dataset(store, job)
    rows = [json.loads(line) for line in to_jsonl(data).splitlines()]
    assert rows == data.rows() and len(rows) == len(data.items) > 4
    assert set(rows[0]) == {"id", "instruction", "response", "round", "evolution", "parent_id",
                            "seed_id"}
    save_hf(data, tmp_path / "hf")
    loaded = datasets.load_from_disk(str(tmp_path / "hf"))
    assert loaded.to_list() == rows


async def test_the_cli_exports_jsonl_and_hf_and_refuses_prompt_formats(
    store: Store, dataset_job: str, tmp_path: Path, sqlite_url: str
) -> None:
    from evo.app.cli import app

    runner = CliRunner()
    out = runner.invoke(app, ["export", dataset_job[:8], "--format", "jsonl", "--db", sqlite_url])
    assert out.exit_code == 0, out.output
    items = job_dataset(store, store.get_job(dataset_job)).items
    assert [json.loads(line)["id"] for line in out.stdout.splitlines()] == [i.id for i in items]
    no_folder = runner.invoke(app, ["export", dataset_job, "--format", "hf", "--db", sqlite_url])
    assert isinstance(no_folder.exception, UserError) and "-o" in str(no_folder.exception)
    md = runner.invoke(app, ["export", dataset_job, "--format", "md", "--db", sqlite_url])
    assert isinstance(md.exception, UserError)
    assert "--format jsonl or hf" in str(md.exception)
    if importlib.util.find_spec("datasets") is not None:
        folder = tmp_path / "out"
        hf = runner.invoke(app, ["export", dataset_job, "-f", "hf", "-o", str(folder),
                                 "--db", sqlite_url])
        assert hf.exit_code == 0, hf.output
        import datasets

        assert len(datasets.load_from_disk(str(folder))) == len(out.stdout.splitlines())
    with pytest.raises(DataSetJob):
        render_export(store, store.get_job(dataset_job), "json")


def test_without_datasets_the_hf_export_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from evo.app.dataset import DataSet

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(HFMissing, match=r"pip install 'evo-opt\[hf\]'"):
        save_hf(DataSet([], [], []), tmp_path / "hf")


async def test_a_prompt_job_has_no_data_set(store: Store) -> None:
    driver, _, _ = scripted_job({"algorithm": {"name": "opro", "steps": 1,
                                               "samples_per_step": 1}},
                                lambda r: "Say yes. q=0.5</prompt>", store)
    await driver.run()
    with pytest.raises(NotADataSet, match="not a data set"):
        job_dataset(store, store.get_job(driver.job_id))


async def test_the_api_serves_the_data_set_to_its_owner_only(
    store: Store, dataset_job: str, sqlite_url: str
) -> None:
    settings = Settings(database_url=sqlite_url, executor="inprocess")
    client = TestClient(create_app(store, settings))  # no `with`: no job service
    owner = store.get_job(dataset_job).owner
    mine = {"Authorization": f"Bearer {create_key(store, owner or 'admin', admin=not owner)[1]}"}
    theirs = {"Authorization": f"Bearer {create_key(store, 'someone-else')[1]}"}
    r = client.get(f"/api/v1/jobs/{dataset_job}/dataset", headers=mine, params={"limit": 3})
    assert r.status_code == 200, r.text
    body = r.json()
    data = job_dataset(store, store.get_job(dataset_job))
    assert body["total"] == len(data.items) and len(body["items"]) == 3
    assert body["items"][0]["instruction"] == data.items[0].instruction
    assert [x["round"] for x in body["rounds"]] == [0, 1, 2]
    assert len(body["eliminated"]) == len(data.eliminated)
    hidden = client.get(f"/api/v1/jobs/{dataset_job}/dataset", headers=theirs)
    assert hidden.status_code == 404
    algos = client.get("/api/v1/algorithms", headers=mine).json()
    assert next(a for a in algos if a["name"] == "evol-instruct")["result"] == "dataset"


async def test_evo_show_prints_the_counts_per_round(store: Store, dataset_job: str) -> None:
    from rich.console import Console

    from evo.app.show import show_job

    console = Console(record=True, width=120)
    show_job(console, store, store.get_job(dataset_job))
    text = console.export_text()
    data = job_dataset(store, store.get_job(dataset_job))
    assert "Data set per round" in text and "0 (seeds)" in text
    assert f"{len(data.items)} items; export them with evo export {dataset_job[:8]}" in text
    assert "no prompt scored" not in text


async def test_a_job_seeded_from_a_file_evolves_the_files_instructions(
    store: Store, tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"instruction": "Sum 2 and 3."}\n{"instruction": "Name a bird."}\n')
    spec = {"algorithm": {"name": "evol-instruct", "rounds": 1, "seed_file": str(seeds)}}
    driver, _, _ = scripted_job(spec, job_meta, store)
    await driver.run()
    data = job_dataset(store, store.get_job(driver.job_id))
    assert [i.instruction for i in data.items if i.round == 0] == ["Sum 2 and 3.", "Name a bird."]
    assert [i.instruction for i in data.items if i.round == 1] == [
        "Sum 2 and 3. Mention fact4.", "Name a bird. Mention fact3."]


def test_evo_algorithms_lists_it_with_its_parameters() -> None:
    from evo.app.cli import app

    out = CliRunner().invoke(app, ["algorithms"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    line = next(x for x in out.stdout.splitlines() if "evol-instruct" in x)
    assert "rounds=4" in out.stdout and "breadth=0.15" in out.stdout and "Evol-Instruct" in line


def test_recording_a_candidate_before_its_parent_is_refused_by_every_engine(
    store: Store,
) -> None:
    driver, _, _ = scripted_job(SPEC, job_meta, store)
    for engine in (engine_for(), driver.search):
        seed = engine.candidate("Name a bird.", operator="seed", generation=0)
        child = engine.candidate("Name a red bird.", operator="deepen", generation=1,
                                 parents=[seed])
        with pytest.raises(EngineMisuse, match="before its parents"):
            engine.record([child])
        engine.record([seed, child])  # parents first, in the same list: fine
        engine.record([child])  # its parent stored before: fine
