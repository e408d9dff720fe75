"""Defensive parsing of meta-LLM proposals."""

from __future__ import annotations

import pytest

from evo.operators import clean_proposal


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Read the news and name its topic.</prompt>", "Read the news and name its topic."),
        ("Merge and changed: Read the story and answer with the topic.",
         "Read the story and answer with the topic."),
        ("The item is on this topic. Instruction A: The item is on this topic. Merged and "
         "changed: The item.", "The item is on this topic."),
        (": Rereview: Classify the sentiment of this review with one word.",
         "Classify the sentiment of this review with one word."),
        ("\nclassify sentiment\n<prompt>\n\nDecide whether the review is positive or negative.",
         "Decide whether the review is positive or negative."),
        ('"Answer with the category only."', "Answer with the category only."),
        # the answer ended inside its closing tag, which the stop sequence never saw whole
        ("Is this news item about sports, business, science or politics?</prompt",
         "Is this news item about sports, business, science or politics?"),
        ("Name the topic in one word. </", "Name the topic in one word."),
        ("Is this news item about sports, business, science or politics?</prompt\n\n"
         "This instruction asks for the topic.",
         "Is this news item about sports, business, science or politics?"),
        ("Say which topic it is.\n\nThis instruction is designed to give a detailed answer.",
         "Say which topic it is."),
    ],
)
def test_cleans_common_chatter(raw: str, expected: str) -> None:
    assert clean_proposal(raw, "prompt", 1500) == (expected, "")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [("", "empty"), ("   </prompt>", "empty"), ("<prompt></prompt>", "empty"),
     ("1 2 3 !!", "no_words"), ("word " * 400, "too_long")],
)
def test_rejects_with_a_reason(raw: str, reason: str) -> None:
    assert clean_proposal(raw, "prompt", 1500) == (None, reason)


async def test_words_are_checked_against_the_task_unless_another_language_is_asked() -> None:
    from evo.algorithms.gps import TRANSLATE
    from evo.meta_prompt import MetaPrompt
    from evo.operators import propose
    from evo.testing import FakeEngine
    from tests.helpers import toy_task

    # a translation into French shares the example's French words ("le", "est", "un", "ou")
    french = "Dites si le item est un oui ou un non."
    engine = FakeEngine(toy_task(), reply=lambda ask: french + "</prompt>")
    meta = MetaPrompt(TRANSLATE, {"language": "French", "prompt": "Say yes or no."})
    assert await propose(engine, meta, operator="translate") == []
    assert engine.rejections == {"translate:example_word": 1}
    [kept] = await propose(engine, meta, operator="translate", in_task_language=False)
    assert kept.text == french
