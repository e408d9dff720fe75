"""A rendered meta-prompt that knows which of its words are the template's own.

Small optimizer models often answer with the meta-prompt itself ("Your job is to write an
instruction that ...") or with its worked example, whole or in part (a sentiment search once
picked "Answer with your favorite movie's capital", "capital" from a geography example). Neither
is a proposal, and scoring one spends a full evaluation. Since the template's text is known apart
from what was filled into it (the task, the parents, the trajectory), such answers can be told
from real proposals and rejected before they are scored; a word of the worked example is told
from the task's own by the task's text and data (``task_words``).
"""

from __future__ import annotations

import re
import string
import weakref
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from evo.llm import Message
from evo.task import Task

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# An answer shown in a worked example: a tagged span of three words or more.
_ANSWER = re.compile(r"<(\w+)>\s*((?:\S+\s+){2,}?\S+?)\s*</\1>", re.S)
# A field label at the start of a line of a worked example ("Instruction A:", "4. Final:"): format,
# not the example's subject.
_LABEL = re.compile(r"^[^\S\n]*[\w. ]{1,30}:", re.M)
_TAG_OR_FIELD = re.compile(r"</?\w+>|\{\w*\}")
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


def _base(word: str) -> str:
    """A word's form for comparing vocabularies: no possessive or plural ending ("movie's",
    "movies" and "movie" are one word)."""
    word = word.split("'", 1)[0]
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def _bases(texts: Iterable[str]) -> set[str]:
    return {_base(w) for text in texts for w in words(text)}


_GENERIC_BASES = frozenset(_bases([_GENERIC_WORDS]))

# The words of each task, computed once per task object (a ``Task`` is not hashable: its splits
# are a dict). An entry leaves with its task.
_TASK_WORDS: dict[int, tuple[weakref.ref[Task], frozenset[str]]] = {}


def task_words(task: object) -> frozenset[str] | None:
    """Every word the task's own text uses, in ``_base`` form: its description, seed prompts,
    template, labels and verbalizers, and the inputs and targets of its examples (the test split
    left out: the search never reads it). None for a task that is no ``Task`` (a program task),
    whose proposals are not checked against it. Computed once per task."""
    if not isinstance(task, Task):
        return None
    key = id(task)
    hit = _TASK_WORDS.get(key)
    if hit is not None and hit[0]() is task:
        return hit[1]
    texts = [task.description, *task.seed_prompts, *_literal_lines(task.template),
             *task.labels, *task.verbalizers.values()]
    texts += [text for split, examples in task.splits.items() if split != "test"
              for ex in examples for text in (ex.input, ex.target)]
    found = frozenset(_bases(texts))
    _TASK_WORDS[key] = (weakref.ref(task, lambda _, k=key: _TASK_WORDS.pop(k, None)), found)
    return found


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
    def example_words(self) -> frozenset[str]:
        """The content words of the template's worked examples, in ``_base`` form: all their
        words less field labels, single letters, words any instruction may use, the template's
        own instruction text and what is filled in. A proposal's word from here that its task
        never uses came from the example, not from the task."""
        paragraphs = re.split(r"\n\s*\n", self.template)
        examples = [p for p in paragraphs if any(_ANSWER.finditer(p))]
        own = _bases(line for p in paragraphs if p not in examples for line in _literal_lines(p))
        shown = _bases(_TAG_OR_FIELD.sub(" ", _LABEL.sub(" ", p)) for p in examples)
        filled = _bases(str(value) for value in self.fields.values())
        return frozenset(w for w in shown - _GENERIC_BASES - own - filled if len(w) > 1)

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

    def echo(
        self, proposal: str, task_words: frozenset[str] | None = None
    ) -> Literal["", "echoed_meta_prompt", "copied_example", "example_word"]:
        """Why ``proposal`` is the meta-prompt's own text rather than a proposal ("" if it is not):

        - ``echoed_meta_prompt``: at least half its trigrams (three or more) are the template's
          instruction text and appear in nothing filled into it;
        - ``copied_example``: it speaks of two or more things only a worked example speaks of, or
          every trigram of it (two or more) is a worked example's text, such as the input of a
          rewording example ("list every ingredient it needs");
        - ``example_word``: given the task's words (``task_words``), it uses a content word of a
          worked example that the task never uses ("capital", from a geography example, in an
          instruction for movie reviews).
        """
        grams, shown, topical = self._parts
        mine = _ngrams(words(proposal))
        echoed = mine & grams
        if len(echoed) >= 3 and 2 * len(echoed) >= len(mine):
            return "echoed_meta_prompt"
        if len(set(words(proposal)) & topical) >= 2 or (len(mine) >= 2 and mine <= shown):
            return "copied_example"
        if task_words is not None and _bases([proposal]) & (self.example_words - task_words):
            return "example_word"
        return ""
