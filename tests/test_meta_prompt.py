"""Answers that echo the meta-prompt's own instructions or copy its worked example are rejected."""

from __future__ import annotations

import itertools

import pytest

from evo.algorithms.evoprompt import CROSSOVER_MUTATION, PARAPHRASE
from evo.algorithms.evoprompt_de import DE
from evo.algorithms.gps import CLOZE, CONTINUATION
from evo.algorithms.grips import REWORD
from evo.algorithms.opro import META
from evo.llm import LLMRequest
from evo.meta_prompt import _GENERIC, MetaPrompt, words
from evo.tasks import BUILTINS
from storage import Store
from tests.helpers import meta_requests, scripted_job

TOPIC = "Classify a news text by its topic: world, sports, business or science."
GA = MetaPrompt(CROSSOVER_MUTATION, {"task": TOPIC, "parent_a": "What is the topic of this text?",
                                     "parent_b": "Classify the text by its topic."})
OPRO = MetaPrompt(META, {"task": TOPIC,
                         "exemplars": "Text: Rain in Spain.\n<INS>\ncorrect answer: world",
                         "trajectory": "<prompt>What is the topic?</prompt>\nscore: 50"})
GRIPS = MetaPrompt(REWORD, {"prompt": "Answer the question with a single number.",
                            "phrase": "Answer the question"})


def test_text_is_the_template_filled_in() -> None:
    assert GA.text == CROSSOVER_MUTATION.format(**GA.fields)
    [message] = GA.messages
    assert (message.role, message.content) == ("user", GA.text)


@pytest.mark.parametrize(
    ("template", "answers"),
    [(CROSSOVER_MUTATION, ["Read the country below and reply with its capital city only."]),
     (PARAPHRASE, ["Name three ways the item below can be used."]),
     (DE, ["Say which language the passage below is in, in one word."]),
     (REWORD, ["name each ingredient the recipe calls for."]),
     (META, [])],  # "<prompt> and </prompt>" describes the format: it is no worked example
)
def test_worked_example_answers_are_found(template: str, answers: list[str]) -> None:
    assert MetaPrompt(template, {}).example_answers == answers


@pytest.mark.parametrize(
    ("meta", "proposal", "reason"),
    [
        (OPRO, "Your job is to write an instruction that is different from all the previous ones",
         "echoed_meta_prompt"),
        (OPRO, "Write one new instruction that should score higher than all of them.",
         "echoed_meta_prompt"),
        (GA, "Merge two instructions into one better instruction.", "echoed_meta_prompt"),
        (GA, "Read the country below, write its capital city.", "copied_example"),
        (GA, "Give the capital city of the country named below.", "copied_example"),
        (GRIPS, "Yes. Each ingredient of the recipe is listed here.", "copied_example"),
        (GRIPS, "List every ingredient it needs.", "copied_example"),  # the example's input
        (GA, "Name the capital. Answer with the city only.", "copied_example"),
        (MetaPrompt(CONTINUATION, {"task": TOPIC, "prompts": "Instruction: Name the topic."}),
         "Is the number below even or odd?", "copied_example"),
        # real proposals, some in the worked example's form or sharing a phrase with the template
        (GRIPS, "Give the recipe", ""),  # one word of the example's subject is let through
        (MetaPrompt(CLOZE, {"masked": "Answer the question with a single ___."}),
         "Read the question below and reply with a single number.", ""),
        (GRIPS, "Work out the answer to the question", ""),
        (GA, "Read the text below and reply with its topic.", ""),
        (GA, "Read the text below and reply with its topic only, in one word.", ""),
        (GA, "Name the capital topic of this news: world, sports, business or science.", ""),
        (OPRO, "Which topic is this news text about? Reply with one word.", ""),
        (OPRO, "Write one word: the topic of the text.", ""),
        (OPRO, "Solve the task well: say the topic of the text in one word.", ""),
    ],
)
def test_echoes_and_copies_are_told_from_proposals(meta: MetaPrompt, proposal: str,
                                                    reason: str) -> None:
    assert meta.echo(proposal) == reason


def test_the_rewording_example_speaks_of_no_built_in_task() -> None:
    # An example on a task's own subject can neither be told from a proposal there nor kept out of
    # other tasks' answers (it once read "the customer was happy with the item": sentiment words,
    # and an arithmetic search picked "Yes. The customer was happy with the product.").
    subject = set(words(REWORD.split("\n\n")[1])) - _GENERIC - set(words(REWORD.split("\n\n")[0]))
    for task in BUILTINS.values():
        spoken = {w for text in (task["description"], *task["seed_prompts"]) for w in words(text)}
        assert not subject & spoken, task["description"]


def test_what_was_filled_in_is_never_an_echo() -> None:
    # a task about capitals may speak of them; a parent that echoed the template may be kept
    capitals = MetaPrompt(CROSSOVER_MUTATION, {
        "task": "Give the capital city of a country.", "parent_a": "Name the capital.",
        "parent_b": "Your job is to write an instruction that makes a model answer well."})
    assert capitals.echo("Read the country below, write its capital city.") == ""
    opro = MetaPrompt(META, {**OPRO.fields, "trajectory": "<prompt>Your job is to write an "
                             "instruction that is different</prompt>\nscore: 40"})
    assert opro.echo("Your job is to write an instruction that is different, and short.") == ""


async def test_a_ga_job_scores_no_echo_and_records_why(store: Store) -> None:
    calls = itertools.count()

    def meta(request: LLMRequest) -> str:
        i = next(calls)
        if "Merge two instructions" not in request.messages[-1].content:
            return f"Paraphrase {i} of a seed. q=0.3"
        return {0: "Merge two instructions into one better instruction, then change a few words.",
                1: "Read the country below and write its capital city."}.get(
            i % 3, f"Fresh child {i}. q=0.6")

    spec = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 1,
                          "attempts": 1}}
    driver, client, _ = scripted_job(spec, meta, store)
    result = await driver.run()
    rejected = result.stats["rejected"]
    texts = [c.text for c in store.candidates(driver.job_id)]
    assert not any("Merge two" in t or "capital" in t for t in texts)
    assert rejected.get("ga_crossover_mutation:echoed_meta_prompt", 0) >= 1
    assert rejected.get("ga_crossover_mutation:copied_example", 0) >= 1
    assert len(meta_requests(client)) >= 4
