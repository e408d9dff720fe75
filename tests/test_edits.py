"""Phrase chunking and the GrIPS edits, with a seeded generator so positions are known."""

from __future__ import annotations

import random

import pytest

from evo.edits import (
    Edit,
    add,
    addable,
    applicable,
    chunk,
    delete,
    join,
    mask_span,
    paraphrase,
    swap,
)

SENTIMENT = "Classify the sentiment of this review. Answer with one word: positive or negative."
PHRASES = ["Classify the sentiment of this review.", "Answer with one word:",
           "positive or negative."]


@pytest.mark.parametrize(
    ("text", "phrases"),
    [
        (SENTIMENT, PHRASES),
        # a label list stays one phrase: its short pieces gather until they are long enough
        ("Which topic is this news item about: sports, business, science or politics?",
         ["Which topic is this news item about:", "sports, business, science or politics?"]),
        ("Is the following review positive or negative?",
         ["Is the following review positive or negative?"]),
        ("Think step by step, then write the final answer as a number.",
         ["Think step by step,", "then write the final answer as a number."]),
        ("Read it  carefully and\nreply because it matters", ["Read it carefully",
                                                              "and reply", "because it matters"]),
    ],
)
def test_chunk_splits_at_punctuation_and_conjunctions(text: str, phrases: list[str]) -> None:
    assert chunk(text, min_words=2 if "matters" in text else 3) == phrases
    assert join(chunk(text)) == " ".join(text.split())  # nothing lost, nothing added


def test_chunk_of_short_text_is_one_phrase() -> None:
    assert chunk("Answer.") == ["Answer."]
    assert chunk("") == []


def test_delete_removes_the_drawn_phrase() -> None:
    out, edit = delete(PHRASES, random.Random(0))
    at = random.Random(0).randrange(3)
    assert edit == Edit("delete", (at,), PHRASES[at])
    assert out == PHRASES[:at] + PHRASES[at + 1 :]
    with pytest.raises(ValueError):
        delete(["Only one phrase here."], random.Random(0))


def test_swap_exchanges_two_distinct_positions() -> None:
    for seed in range(20):
        out, edit = swap(PHRASES, random.Random(seed))
        i, j = edit.at
        assert i < j and edit.op == "swap"
        assert out[i] == PHRASES[j] and out[j] == PHRASES[i]
        assert sorted(out) == sorted(PHRASES)
    expected = sorted(random.Random(3).sample(range(3), 2))
    assert swap(PHRASES, random.Random(3))[1].at == tuple(expected)


def test_add_brings_back_a_deleted_phrase_at_a_drawn_place() -> None:
    pool = ["Think first.", PHRASES[0]]  # the second is present already: never re-added
    assert addable(PHRASES, pool) == ["Think first."]
    seen_positions = set()
    for seed in range(30):
        out, edit = add(PHRASES, pool, random.Random(seed))
        assert edit.op == "add" and edit.phrase == "Think first."
        assert out[edit.at[0]] == "Think first." and len(out) == 4
        assert [p for p in out if p != "Think first."] == PHRASES
        seen_positions.add(edit.at[0])
    assert seen_positions == {0, 1, 2, 3}  # before any phrase or at the end
    with pytest.raises(ValueError):
        add(PHRASES, [PHRASES[1]], random.Random(0))


def test_paraphrase_replaces_one_phrase_and_keeps_its_closing_mark() -> None:
    out, edit = paraphrase(PHRASES, 1, "Reply using a single word")
    assert out == [PHRASES[0], "Reply using a single word:", PHRASES[2]]
    assert edit == Edit("paraphrase", (1,), "Answer with one word:")
    out, _ = paraphrase(PHRASES, 0, "Judge this review's tone!")
    assert out[0] == "Judge this review's tone!"  # its own mark wins


def test_applicable_edits_depend_on_phrases_and_pool() -> None:
    ops = ["delete", "swap", "paraphrase", "add"]
    assert applicable(ops, PHRASES, []) == ["delete", "swap", "paraphrase"]
    assert applicable(ops, ["Only one."], ["Gone."]) == ["paraphrase", "add"]
    assert applicable(["delete"], ["Only one."], []) == []


def test_join_capitalizes_a_new_first_phrase() -> None:
    assert join(["positive or negative.", "Classify it."]) == "Positive or negative. Classify it."


def test_mask_span_hides_a_short_run_of_words() -> None:
    words = SENTIMENT.split()
    for seed in range(30):
        masked, start, length = mask_span(SENTIMENT, random.Random(seed), max_words=3)
        assert 1 <= length <= 3 and masked.count("___") == 1
        assert masked.split() == [*words[:start], "___", *words[start + length :]]
    assert mask_span("Answer.", random.Random(0)) == ("___", 0, 1)
