"""Phrase-level edits of an instruction (GrIPS) and span masking (GPS cloze), as pure functions.

An instruction is split into phrases at punctuation and before conjunctions; pieces shorter than
``min_words`` join their neighbours, so a label list ("sports, business, science or politics")
stays one phrase instead of four fragments. Every edit takes the phrase list and an ``rng`` and
returns a new list with an ``Edit`` saying what changed where; nothing is mutated in place.

    delete(phrases, rng)       one phrase removed (never the last one)
    swap(phrases, rng)         two phrases exchange places
    add(phrases, pool, rng)    a phrase from the deleted pool inserted at a random place
    paraphrase(phrases, at, new)   phrase ``at`` replaced by a rewording (written by the meta-LLM)
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

EditOp = Literal["delete", "swap", "paraphrase", "add"]
EDIT_OPS: tuple[EditOp, ...] = ("delete", "swap", "paraphrase", "add")

_CONJUNCTIONS = ("and", "or", "but", "so", "then", "because", "while", "unless", "if", "whereas")
# Break after a punctuation mark followed by a space, or before a conjunction word.
_BREAK = re.compile(
    r"(?<=[,;:.!?])\s+|\s+(?=(?:" + "|".join(_CONJUNCTIONS) + r")\b)", re.IGNORECASE
)
_END_PUNCT = re.compile(r"[,;:.!?]+$")


@dataclass(frozen=True)
class Edit:
    """One edit: its kind, the phrase positions it touched, and the phrase it moved or dropped."""

    op: EditOp
    at: tuple[int, ...]
    phrase: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"op": self.op, "at": list(self.at), "phrase": self.phrase}


def chunk(text: str, min_words: int = 3) -> list[str]:
    """Phrases of ``text``; joined with single spaces they give the text back (spaces collapsed)."""
    pieces = [p for p in _BREAK.split(" ".join(text.split())) if p]
    phrases: list[str] = []
    held = ""
    for piece in pieces:
        held = f"{held} {piece}".strip()
        if len(held.split()) >= min_words:
            phrases.append(held)
            held = ""
    if held:  # a short tail belongs to the phrase before it
        if phrases:
            phrases[-1] = f"{phrases[-1]} {held}"
        else:
            phrases.append(held)
    return phrases


def join(phrases: Sequence[str]) -> str:
    """The instruction the phrases make; a new first phrase gets a capital, as a sentence would."""
    text = " ".join(p.strip() for p in phrases if p.strip())
    return text[:1].upper() + text[1:]


def addable(phrases: Sequence[str], pool: Sequence[str]) -> list[str]:
    """Deleted phrases not already in the instruction (adding a duplicate is no edit)."""
    present = set(phrases)
    return [p for p in dict.fromkeys(pool) if p not in present]


def applicable(ops: Sequence[EditOp], phrases: Sequence[str], pool: Sequence[str]) -> list[EditOp]:
    """The edits that can change ``phrases``: deleting or swapping needs two phrases, adding
    needs a deleted phrase to bring back."""
    ok: list[EditOp] = []
    for op in ops:
        if op in ("delete", "swap") and len(phrases) < 2:
            continue
        if op == "add" and not addable(phrases, pool):
            continue
        if op == "paraphrase" and not phrases:
            continue
        ok.append(op)
    return ok


def delete(phrases: Sequence[str], rng: random.Random) -> tuple[list[str], Edit]:
    if len(phrases) < 2:
        raise ValueError("deleting needs at least two phrases (an instruction must remain)")
    at = rng.randrange(len(phrases))
    out = list(phrases)
    gone = out.pop(at)
    return out, Edit("delete", (at,), gone)


def swap(phrases: Sequence[str], rng: random.Random) -> tuple[list[str], Edit]:
    if len(phrases) < 2:
        raise ValueError("swapping needs at least two phrases")
    i, j = sorted(rng.sample(range(len(phrases)), 2))
    out = list(phrases)
    out[i], out[j] = out[j], out[i]
    return out, Edit("swap", (i, j))


def add(
    phrases: Sequence[str], pool: Sequence[str], rng: random.Random
) -> tuple[list[str], Edit]:
    choices = addable(phrases, pool)
    if not choices:
        raise ValueError("no deleted phrase to add back")
    phrase = rng.choice(choices)
    at = rng.randrange(len(phrases) + 1)  # before any phrase, or at the end
    out = list(phrases)
    out.insert(at, phrase)
    return out, Edit("add", (at,), phrase)


def paraphrase(phrases: Sequence[str], at: int, new: str) -> tuple[list[str], Edit]:
    """Phrase ``at`` replaced by ``new``; the old phrase's closing mark is kept when the rewording
    drops it, so the phrase still ends where it ended (a colon before a list, a full stop)."""
    old = phrases[at]
    new = new.strip()
    mark = _END_PUNCT.search(old)
    if mark and not _END_PUNCT.search(new):
        new += mark.group(0)
    out = list(phrases)
    out[at] = new
    return out, Edit("paraphrase", (at,), old)


def mask_span(
    text: str, rng: random.Random, max_words: int = 3, blank: str = "___"
) -> tuple[str, int, int]:
    """``text`` with a run of 1..``max_words`` consecutive words replaced by ``blank``.

    Returns (masked text, index of the first masked word, number of words masked). At most a
    third of the words go, so enough of the instruction is left to say what the blank was.
    """
    words = text.split()
    if not words:
        raise ValueError("nothing to mask in an empty text")
    length = rng.randint(1, max(1, min(max_words, len(words) // 3)))
    start = rng.randrange(len(words) - length + 1)
    masked = [*words[:start], blank, *words[start + length :]]
    return " ".join(masked), start, length
