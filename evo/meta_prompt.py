"""A rendered meta-prompt that knows which of its words are the template's own.

Small optimizer models often answer with the meta-prompt itself ("Your job is to write an
instruction that ...") or with its worked example (a prompt about capital cities on a topic task).
Neither is a proposal, and scoring one spends a full evaluation. Since the template's text is
known apart from what was filled into it (the task, the parents, the trajectory), such answers
can be told from real proposals and rejected before they are scored.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from evo.llm import Message

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# An answer shown in a worked example: a tagged span of three words or more.
_ANSWER = re.compile(r"<(\w+)>\s*((?:\S+\s+){2,}?\S+?)\s*</\1>", re.S)
_N = 3  # echoes are counted in word trigrams: long enough to be phrasing, short enough to match

# Words any instruction may use, whatever its task: sharing them with a worked example is no sign
# of copying it. Function words, and the everyday vocabulary of instructions.
_GENERIC_WORDS = """
    a about above after all also an and answer any are as at be below between but by can could
    decide did do does each either for from give given has have how i if in input into is it its
    just label look may me more most must my name no not of on one only or other our out output
    read reply respond say should single so some state such tell text than that the their them
    then there these this those to under up use used using was what when where whether which
    while who why will with word words would write yes you your passage sentence question
    following short clear
"""
_GENERIC = frozenset(_GENERIC_WORDS.split())


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def _ngrams(ws: list[str]) -> set[tuple[str, ...]]:
    return {tuple(ws[i : i + _N]) for i in range(len(ws) - _N + 1)}


def _literal_lines(template: str) -> list[str]:
    """The template's own text, line by line, with the fields cut out (each cut ends a line, so
    no trigram spans a field)."""
    parts = [lit for lit, *_ in string.Formatter().parse(template)]
    return [line for part in parts for line in part.splitlines() if line.strip()]


@dataclass(frozen=True)
class MetaPrompt:
    """``template`` filled with ``fields``; ``text`` is what the optimizer reads."""

    template: str
    fields: Mapping[str, Any] = field(default_factory=dict)

    @cached_property
    def text(self) -> str:
        return self.template.format(**self.fields)

    @property
    def messages(self) -> list[Message]:
        return [Message("user", self.text)]

    @cached_property
    def example_answers(self) -> list[str]:
        """The answers of the template's worked examples: a copy of one is no new proposal."""
        lines = _literal_lines(self.template)
        return [m.group(2) for line in lines for m in _ANSWER.finditer(line)]

    @cached_property
    def _parts(self) -> tuple[set[tuple[str, ...]], set[tuple[str, ...]], frozenset[str]]:
        """(trigrams of the template's instructions, trigrams of its worked examples, both less
        what is filled in; words that only its worked examples use)."""
        paragraphs = re.split(r"\n\s*\n", self.template)
        examples = [p for p in paragraphs if any(_ANSWER.finditer(p))]
        instructions = [p for p in paragraphs if p not in examples]
        values = [words(str(value)) for value in self.fields.values()]
        filled = {w for ws in values for w in ws}
        filled_grams = {g for ws in values for g in _ngrams(ws)}
        lines = [words(line) for p in instructions for line in _literal_lines(p)]
        grams = {g for ws in lines for g in _ngrams(ws)}
        own = {w for ws in lines for w in ws}
        topical: set[str] = set()
        shown: set[tuple[str, ...]] = set()
        for p in examples:
            answers = {w for m in _ANSWER.finditer(p) for w in words(m.group(2))}
            rest = set(words(_ANSWER.sub(" ", p)))
            # the example's subject: what both its input and its answer speak of
            topical |= (answers & rest) - _GENERIC - own - filled
            for line in _literal_lines(p):  # its input and its answer, each a run of its own
                pieces = [_ANSWER.sub("\n", line), *(m.group(2) for m in _ANSWER.finditer(line))]
                shown |= {g for piece in pieces for part in piece.splitlines()
                          for g in _ngrams(words(part))}
        return grams - filled_grams, shown - filled_grams, frozenset(topical)

    def echo(self, proposal: str) -> Literal["", "echoed_meta_prompt", "copied_example"]:
        """Why ``proposal`` is the meta-prompt's own text rather than a proposal ("" if it is not):

        - ``echoed_meta_prompt``: at least half its trigrams (three or more) are the template's
          instruction text and appear in nothing filled into it;
        - ``copied_example``: it speaks of two or more things only a worked example speaks of, or
          every trigram of it (two or more) is a worked example's text, such as the input of a
          rewording example ("list every ingredient it needs").
        """
        grams, shown, topical = self._parts
        mine = _ngrams(words(proposal))
        echoed = mine & grams
        if len(echoed) >= 3 and 2 * len(echoed) >= len(mine):
            return "echoed_meta_prompt"
        if len(set(words(proposal)) & topical) >= 2 or (len(mine) >= 2 and mine <= shown):
            return "copied_example"
        return ""
