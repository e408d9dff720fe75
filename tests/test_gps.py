"""GPS: top-K kept, the three generators with their lineage, back-translation's two calls."""

from __future__ import annotations

import re
import zlib
from collections import Counter

from evo.llm import LLMRequest
from evo.selection import top_k
from storage import Store
from tests.helpers import crash_and_resume, draw, job_record, meta_requests, quality, scripted_job

SEEDS = ("Answer the item now. q=0.2", "Reply to the item. q=0.4", "Say it plainly. q=0.3")


def gps_meta():
    """Translate: tag the text with the language; back: that text's q + 0.05; cloze: the blank
    filled; continuation: the best shown q + 0.01. A tag from the request keeps answers apart."""

    def meta(request: LLMRequest) -> str:
        text = request.messages[-1].content
        n = f"{zlib.crc32(text.encode())}x{draw(request)}"
        last = text.rsplit("\n", 2)
        if "into English" in text:
            q = quality(last[-2])
            return f"Back in English, q={q + 0.05:.2f} b{n}</prompt>"
        if "Translate" in text:
            language = re.search(r"into (\w+)\.", text).group(1)
            return f"Version {language} q={quality(last[-2]):.2f} t{n}</prompt>"
        if "Filled in:" in text:
            masked = re.search(r"Instruction: (.*)\nFilled in:$", text).group(1)
            return masked.replace("___", f"word{n}") + "</prompt>"
        shown = re.findall(r"^Instruction: (.*)$", text.split("Task: ", 2)[2], re.M)
        return f"One more. q={max(quality(s) for s in shown) + 0.01:.2f} c{n}</prompt>"

    return meta


async def test_keeps_top_k_and_makes_children_with_each_generator(store: Store) -> None:
    spec = {"algorithm": {"name": "gps", "keep": 2, "generations": 2,
                          "children_per_generator": 3, "shown": 2}}
    driver, _, states = scripted_job(spec, gps_meta(), store, seeds=SEEDS)
    result = await driver.run()
    assert result.status == "completed"
    cands = {c.id: c for c in store.candidates(driver.job_id)}
    fitness = {e.candidate_id: e.value for e in store.evaluations(driver.job_id, split="dev")
               if e.generation is not None}
    population = states[0]["population"]
    assert [cands[i].operator for i in population] == ["seed"] * 3
    for t in (1, 2):
        kept = top_k(population, [fitness[i] for i in population], 2)
        children = [c for c in cands.values() if c.generation == t]
        assert states[t]["population"] == kept + [c.id for c in children]
        ops = Counter(re.sub(r"\(\w+\)", "", c.operator) for c in children)
        assert ops == {"back_translation": 3, "cloze": 3, "continuation": 3}
        for c in children:
            if c.operator == "continuation":
                assert len(c.parents) == 2 and set(c.parents) == set(kept)  # the prompts shown
            else:
                assert len(c.parents) == 1 and c.parents[0] in kept
        # kept prompts in turn: three children per generator over two kept prompts
        singles = [c.parents[0] for c in children if c.operator == "cloze"]
        assert Counter(singles) == {kept[0]: 2, kept[1]: 1}
        population = states[t]["population"]
    best = max(fitness, key=fitness.get)
    assert quality(cands[best].text) > 0.4  # children improved on the seeds


async def test_back_translation_is_two_calls_through_the_language(store: Store) -> None:
    spec = {"algorithm": {"name": "gps", "keep": 2, "generations": 1, "children_per_generator": 4,
                          "generators": ["back_translation"], "languages": ["French", "German"]}}
    driver, client, _ = scripted_job(spec, gps_meta(), store, seeds=SEEDS)
    await driver.run()
    requests = meta_requests(client)
    there = [r for r in requests if "into English" not in r.messages[-1].content]
    back = [r for r in requests if "into English" in r.messages[-1].content]
    assert len(there) == len(back) == 4  # two calls per child
    children = [c for c in store.candidates(driver.job_id) if c.generation == 1]
    texts = {c.id: c.text for c in store.candidates(driver.job_id)}
    assert len(children) == 4
    for c in children:
        language = re.fullmatch(r"back_translation\((French|German)\)", c.operator).group(1)
        # first call: the parent, in English, to be put into the language
        # (two children of one parent through one language ask the same, from two strands)
        firsts = [r for r in there if r.messages[-1].content.endswith(
            f"English: {texts[c.parents[0]]}\n{language}:")]
        assert firsts and all(f"into {language}." in r.messages[-1].content for r in firsts)
        assert all(r.prefill == "<prompt>" and r.stop == ("</prompt>",) for r in firsts)
        # second call: the first call's answer, labelled with its language, back to English
        [second] = [r for r in back if r.messages[-1].content.endswith(
            f"{language}: {c.meta['via']}\nEnglish:")]
        assert second.prefill == "<prompt>"
        assert c.meta["via"].startswith(f"Version {language}")
    purposes = Counter(call.purpose for call in store.llm_calls(driver.job_id))
    assert sum(v for k, v in purposes.items() if k.startswith("back_translation(")) == 8


async def test_cloze_shows_the_prompt_with_one_span_blanked(store: Store) -> None:
    spec = {"algorithm": {"name": "gps", "keep": 3, "generations": 1, "children_per_generator": 6,
                          "generators": ["cloze"], "cloze_span": 2}}
    driver, client, _ = scripted_job(spec, gps_meta(), store, seeds=SEEDS)
    await driver.run()
    texts = {c.id: c.text for c in store.candidates(driver.job_id)}
    children = [c for c in store.candidates(driver.job_id) if c.generation == 1]
    assert len(children) == 6 and len(meta_requests(client)) == 6
    for c in children:
        masked = c.meta["masked"]
        source = texts[c.parents[0]].split()
        words = masked.split()
        at = words.index("___")
        hidden = len(source) - len(words) + 1
        assert 1 <= hidden <= 2
        assert words[:at] + source[at : at + hidden] + words[at + 1 :] == source
        assert any(f"Instruction: {masked}\nFilled in:" in r.messages[-1].content
                   for r in meta_requests(client))
        assert "___" not in c.text


async def test_unfilled_blanks_and_repeats_are_rejected(store: Store) -> None:
    def meta(request: LLMRequest) -> str:
        text = request.messages[-1].content
        if "Filled in:" in text:  # keeps the blank, adds a word elsewhere
            return re.search(r"Instruction: (.*)\nFilled in:$", text).group(1) + " now</prompt>"
        return "The same answer every time, q=0.9</prompt>"

    spec = {"algorithm": {"name": "gps", "keep": 2, "generations": 1, "children_per_generator": 2,
                          "generators": ["cloze", "continuation"]}}
    driver, _, _ = scripted_job(spec, meta, store, seeds=SEEDS)
    result = await driver.run()
    rejected = result.stats["rejected"]
    assert rejected["cloze:unfilled"] == 2
    assert rejected["continuation:duplicate"] == 1  # the second identical proposal
    children = [c for c in store.candidates(driver.job_id) if c.generation == 1]
    assert [c.operator for c in children] == ["continuation"]


async def test_resumes_from_its_checkpoint_as_if_never_stopped(store: Store) -> None:
    spec = {"algorithm": {"name": "gps", "keep": 2, "generations": 3,
                          "children_per_generator": 2}}
    straight, resumed = await crash_and_resume(spec, gps_meta(), store, SEEDS, crash_at=3)
    assert job_record(store, resumed) == job_record(store, straight)
