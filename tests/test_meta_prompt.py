"""Answers that echo the meta-prompt's own instructions, copy its worked example or borrow a word of
it that the task never uses are rejected."""

from __future__ import annotations

import itertools

import pytest

from evo.algorithms.evoprompt import CROSSOVER_MUTATION, PARAPHRASE
from evo.algorithms.evoprompt_de import DE
from evo.algorithms.gps import BACK_TRANSLATE, CLOZE, CONTINUATION, TRANSLATE
from evo.algorithms.grips import REWORD
from evo.algorithms.opro import META
from evo.llm import LLMRequest
from evo.meta_prompt import MetaPrompt, task_words
from evo.metrics import get_metric
from evo.problems.binpacking import bin_packing
from evo.task import Example, Task, load_task
from storage import Store
from tests.helpers import draw, meta_requests, scripted_job

# The crossover template as it was, with a geography example: the copy checks are pinned on it.
GEOGRAPHY = """Merge two instructions into one better instruction, then change a few \
words so it is new. Keep it one or two sentences.

Instruction A: Give the capital city of the country named below.
Instruction B: Name the capital. Answer with the city only.
Merged and changed: <prompt>Read the country below and reply with its capital city only.</prompt>

Task: {task}
Instruction A: {parent_a}
Instruction B: {parent_b}
Merged and changed:"""
TOPIC = "Classify a news text by its topic: world, sports, business or science."
PARENTS = {"parent_a": "What is the topic of this text?",
           "parent_b": "Classify the text by its topic."}
GEO = MetaPrompt(GEOGRAPHY, {"task": TOPIC, **PARENTS})
GA = MetaPrompt(CROSSOVER_MUTATION, {"task": TOPIC, **PARENTS})
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
    [(GEOGRAPHY, ["Read the country below and reply with its capital city only."]),
     (CROSSOVER_MUTATION, ["Read the zorb below and reply with wug or dax only."]),
     (PARAPHRASE, ["Is the zorb below a wug or a dax? Answer with one word."]),
     (DE, ["State whether the given zorb below is a wug or a dax, in one word."]),
     (TRANSLATE, ["Dites si le zorb ci-dessous est un wug ou un dax."]),
     (BACK_TRANSLATE, ["Read the zorb below and answer wug or dax."]),
     (CLOZE, ["Read the question below and reply with a single word."]),
     (CONTINUATION, ["Look at the zorb and answer wug or dax."]),
     (REWORD, ["tell if it is a wug or a dax."]),
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
        (GEO, "Read the country below, write its capital city.", "copied_example"),
        (GEO, "Give the capital city of the country named below.", "copied_example"),
        (GEO, "Name the capital. Answer with the city only.", "copied_example"),
        (GA, "Read the zorb and say if it is a wug.", "copied_example"),
        (GA, "Look at the zorb. Answer wug or dax.", "copied_example"),  # the example's input
        (GRIPS, "Yes. It is a wug, not a dax.", "copied_example"),
        (GRIPS, "Read the zorb below and say whether", "copied_example"),  # the example's input
        (MetaPrompt(CONTINUATION, {"task": TOPIC, "prompts": "Instruction: Name the topic."}),
         "Is the zorb below a wug or a dax?", "copied_example"),
        # real proposals, some in the worked example's form or sharing a phrase with the template
        (GRIPS, "Give the wug", ""),  # one word of the example's subject: only the task can tell
        (GEO, "Answer with your favorite movie's capital.", ""),  # (see the tests further down)
        (MetaPrompt(CLOZE, {"masked": "Answer the question with a single ___."}),
         "Read the question below and reply with a single number.", ""),
        (GRIPS, "Work out the answer to the question", ""),
        (GA, "Read the text below and reply with its topic.", ""),
        (GA, "Read the text below and reply with its topic only, in one word.", ""),
        (GEO, "Read the text below and reply with its topic only, in one word.", ""),
        (GEO, "Name the capital topic of this news: world, sports, business or science.", ""),
        (OPRO, "Which topic is this news text about? Reply with one word.", ""),
        (OPRO, "Write one word: the topic of the text.", ""),
        (OPRO, "Solve the task well: say the topic of the text in one word.", ""),
    ],
)
def test_echoes_and_copies_are_told_from_proposals(meta: MetaPrompt, proposal: str,
                                                    reason: str) -> None:
    assert meta.echo(proposal) == reason


@pytest.mark.parametrize("template", [PARAPHRASE, CROSSOVER_MUTATION, DE, BACK_TRANSLATE, CLOZE,
                                      CONTINUATION, REWORD])
@pytest.mark.parametrize("name", ["sentiment", "topic", "arithmetic", "summary", "contacts"])
def test_no_built_in_task_uses_a_word_of_a_worked_example(template: str, name: str) -> None:
    # An example on a task's own subject can neither be told from a proposal there nor kept out of
    # other tasks' answers (one read "the customer was happy with the item": sentiment words, and
    # an arithmetic search picked "Yes. The customer was happy with the product."; the geography
    # example gave a sentiment search "Answer with your favorite movie's capital").
    task = load_task(name)
    assert MetaPrompt(template, {}).example_words.isdisjoint(task_words(task))


def test_the_worked_examples_speak_of_a_made_up_subject() -> None:
    for template in (PARAPHRASE, CROSSOVER_MUTATION, DE, CONTINUATION, REWORD):
        assert MetaPrompt(template, {}).example_words == {"zorb", "wug", "dax"}
    assert MetaPrompt(CLOZE, {}).example_words == set()  # no subject at all
    assert MetaPrompt(META, {}).example_words == set()  # no worked example


def test_what_was_filled_in_is_never_an_echo() -> None:
    # a task about capitals may speak of them; a parent that echoed the template may be kept
    capitals = MetaPrompt(GEOGRAPHY, {
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
                1: "Read the zorb below and write wug or dax."}.get(
            i % 3, f"Fresh child {i}. q=0.6")

    spec = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 1,
                          "attempts": 1}}
    driver, client, _ = scripted_job(spec, meta, store)
    result = await driver.run()
    rejected = result.stats["rejected"]
    texts = [c.text for c in store.candidates(driver.job_id)]
    assert not any("Merge two" in t or "zorb" in t for t in texts)
    assert rejected.get("ga_crossover_mutation:echoed_meta_prompt", 0) >= 1
    assert rejected.get("ga_crossover_mutation:copied_example", 0) >= 1
    assert len(meta_requests(client)) >= 4


# --- a word of a worked example that the task never uses ---------------------------------------

MOVIE = "Read the movie below. Answer with your favorite movie's capital as your answer."


def reviews(seeds: tuple[str, ...] = ("Is this review positive or negative?",)) -> Task:
    """A small sentiment task on movie reviews; the test split alone speaks of a city."""
    def split(name: str, texts: tuple[str, ...]) -> tuple[Example, ...]:
        return tuple(Example(f"{name}{i}", text, "positive" if i % 2 else "negative")
                     for i, text in enumerate(texts))

    return Task(
        name="reviews",
        description="Is a movie review positive or negative?",
        template="{prompt}\n\nReview: {input}",
        splits={"train": split("train", ("A dull movie.", "The best film of the year!")),
                "dev": split("dev", ("Two hours I will never get back.", "I loved every scene.")),
                "test": split("test", ("The capital city deserved a better movie.",))},
        metric=get_metric("label_accuracy", verbalizers={"positive": "positive",
                                                         "negative": "negative"}),
        labels=("positive", "negative"),
        verbalizers={"positive": "positive", "negative": "negative"},
        seed_prompts=seeds,
        max_answer_tokens=2,
    )


def test_the_capital_of_a_movie_is_rejected_on_a_sentiment_task() -> None:
    task = reviews()
    meta = MetaPrompt(GEOGRAPHY, {"task": task.description, "parent_a": task.seed_prompts[0],
                                  "parent_b": "Say how the reviewer felt about the movie."})
    assert meta.echo(MOVIE) == ""  # one word of the example's subject: the old check let it pass
    assert meta.echo(MOVIE, task_words(task)) == "example_word"
    kept = ["Read the movie review below. Answer positive or negative.",
            "Did the reviewer love the film or find it dull? Say positive or negative.",
            "Read the reviews: which movies were loved?"]  # plurals are the task's words too
    assert [meta.echo(text, task_words(task)) for text in kept] == ["", "", ""]


def test_a_task_that_speaks_of_the_word_may_use_it() -> None:
    for task in (reviews(("Name the capital city the review is set in.",)), load_task("topic")):
        meta = MetaPrompt(GEOGRAPHY, {"task": task.description, "parent_a": "A", "parent_b": "B"})
        assert meta.echo("Say which capital the text is about.", task_words(task)) == ""
    # what was filled in is the task's too (a parent that says "capital")
    task = reviews()
    meta = MetaPrompt(GEOGRAPHY, {"task": task.description, "parent_a": "Name the movie's capital.",
                                  "parent_b": task.seed_prompts[0]})
    assert meta.echo(MOVIE, task_words(task)) == ""


def test_the_task_words_are_read_once_per_task_and_never_from_the_test_split() -> None:
    task = reviews()
    found = task_words(task)
    assert found is task_words(task)  # computed once, then looked up
    assert {"movie", "dull", "positive", "review", "film", "year", "scene"} <= found
    assert "capital" not in found and "city" not in found  # only the test split says them
    assert task_words(reviews()) == found  # an equal task, read afresh
    assert task_words(bin_packing(items=20)) is None  # a program task is not checked


async def test_a_job_counts_example_words_in_its_stats(store: Store) -> None:
    calls = itertools.count()

    def meta(request: LLMRequest) -> str:
        i = next(calls)
        if "Merge two instructions" not in request.messages[-1].content:
            return f"Paraphrase {i} of a seed. q=0.3"
        if i % 2:
            return "Read the item below. Answer with your favorite item's capital as your answer."
        return f"Say yes or no for the item. q=0.6 ({i})"

    # the crossover template of the run that picked the movie's capital, given by the spec
    spec = {"algorithm": {"name": "evoprompt-ga", "population": 4, "generations": 2,
                          "attempts": 1, "templates": {"crossover_mutation": GEOGRAPHY}}}
    driver, _, _ = scripted_job(spec, meta, store)
    result = await driver.run()
    texts = [c.text for c in store.candidates(driver.job_id)]
    assert not any("capital" in t for t in texts)
    assert any(t.startswith("Say yes or no for the item") for t in texts)  # task words: kept
    # 8 crossover calls (4 children in each of 2 generations), every other one borrowing
    assert result.stats["rejected"] == {"ga_crossover_mutation:example_word": 4}


async def test_gps_checks_the_way_back_from_a_translation_not_the_way_out(store: Store) -> None:
    # the way out is French, as the translation example's answer is: its words are no borrowing
    back = itertools.count()

    def meta(request: LLMRequest) -> str:
        text = request.messages[-1].content
        if "into English" not in text:
            return f"Dites si le item est un oui ou un non. {draw(request)}</prompt>"
        if next(back) % 2:  # French of the example (not of the translation) in an English answer
            return f"Lisez the item et say yes or no. q=0.7 {draw(request)}</prompt>"
        return f"Say yes or no for the item. q=0.6 {draw(request)}</prompt>"

    spec = {"algorithm": {"name": "gps", "keep": 2, "generations": 1, "children_per_generator": 4,
                          "generators": ["back_translation"], "languages": ["French"]}}
    driver, _, _ = scripted_job(spec, meta, store)
    result = await driver.run()
    children = [c for c in store.candidates(driver.job_id) if c.generation == 1]
    assert children and all(c.text.startswith("Say yes or no") for c in children)
    assert all(c.meta["via"].startswith("Dites si le item") for c in children)
    assert result.stats["rejected"] == {"back_translation(French):example_word": 2}
