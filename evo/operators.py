"""Shared variation pieces: asking the meta-LLM for a prompt between tags, parsing it defensively.

Small models follow output formats poorly, so every proposal is asked for with the opening tag
pre-filled and the closing tag as a stop sequence, then cleaned. An answer that is empty, that only
repeats a parent or a worked example, that echoes the meta-prompt's own instructions, that uses a
word of a worked example its task never uses, or that is too long to be an instruction is rejected
with a recorded reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from evo.candidate import Candidate
from evo.engine import Engine, Rejection, Sample
from evo.meta_prompt import MetaPrompt, task_words
from evo.programs import extract_program, signature_arity

MAX_TOKENS = 120  # room for one instruction, not for an essay around it
MAX_CHARS = 1500  # longer than this is no instruction

_WS = re.compile(r"\s+")
_TAG = re.compile(r"</?\s*[a-zA-Z_]+\s*>")
# A tag the model left unclosed at the end of a line or of its answer ("...politics?</prompt"):
# no stop sequence matched it.
_CUT_TAG = re.compile(r"<\s*/?\s*[a-zA-Z_]*[ \t]*(?=\n|$)")
# A short label before a colon ("New instruction:", "Merged and changed:") is format chatter.
_LEADER = re.compile(r"^[A-Za-z][\w ]{0,30}?:\s+")
# Small models echo the meta-prompt's own field names mid-answer; text after one is not ours.
_ECHO = re.compile(r"\s(?:Instruction [A-Z]|Instruction|Merged and changed|Rewritten|Task)\s*:")


def normalize(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


@dataclass(frozen=True)
class Proposal:
    """A usable proposal and the sample it was cleaned from (for the candidate's lineage)."""

    text: str
    source: Sample


def clean_proposal(
    raw: str, tag: str, max_chars: int
) -> tuple[str | None, Rejection | Literal[""]]:
    """(prompt, "") or (None, why); ``raw`` is what followed the pre-filled opening tag."""
    text = _CUT_TAG.sub("", raw.split(f"</{tag}>", 1)[0])
    text = _TAG.sub("\n", text)  # a reopened tag starts a new paragraph
    # small models pad with chatter after the instruction: keep its first real paragraph
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n|\n(?=\S+:)", text) if p.strip()]
    text = next((p for p in paragraphs if len(p.split()) >= 4), paragraphs[0] if paragraphs else "")
    text = text.lstrip(":-*> \t")
    leader = _LEADER.match(text)
    if leader and len(leader.group(0).split()) <= 4:
        text = text[leader.end() :]
    text = _ECHO.split(" " + text, maxsplit=1)[0]
    text = _WS.sub(" ", text).strip().strip("\"'`").strip()
    if not text:
        return None, "empty"
    if len(text) > max_chars:
        return None, "too_long"
    if len(re.findall(r"[A-Za-z]", text)) < 3:
        return None, "no_words"
    return text, ""


async def propose(
    engine: Engine,
    meta: MetaPrompt,
    *,
    operator: str,
    originals: Sequence[str] = (),
    tag: str = "prompt",
    n: int = 1,
    temperature: float = 1.0,
    max_tokens: int = MAX_TOKENS,
    max_chars: int = MAX_CHARS,
    prefill: str | None = None,
    run_on: re.Pattern[str] | None = None,
    in_task_language: bool = True,
) -> list[Proposal]:
    """Sample ``n`` proposals and keep the usable ones (in order, duplicates dropped).

    By default the answer starts inside the opening tag. With a ``prefill`` that does not open
    it, the model writes something first (its steps) and the proposal is what follows the last
    opening tag. ``run_on`` marks where a model that runs on into the meta-prompt's next field
    has left the proposal. A proposal is checked against the words of ``engine.task``
    (``MetaPrompt.echo``) unless ``in_task_language`` is off: a translation's words are another
    language's.
    """
    opening = f"<{tag}>"
    answers = await engine.generate(
        meta.messages,
        n=n,
        temperature=temperature,
        max_tokens=max_tokens,
        prefill=opening if prefill is None else prefill,
        stop=(f"</{tag}>",),
        purpose=operator,
    )
    inside = prefill is None or prefill.endswith(opening)
    seen = {normalize(o) for o in (*originals, *meta.example_answers)}
    vocabulary = task_words(engine.task) if in_task_language else None
    kept: list[Proposal] = []
    for sample in answers:
        if sample is None:
            engine.reject(operator, "call_failed")
            continue
        raw = sample.text
        if not inside:
            if opening not in raw:
                engine.reject(operator, "no_final_prompt")
                continue
            raw = raw.rsplit(opening, 1)[1]
        text, reason = clean_proposal(raw, tag, max_chars)
        if text is not None and run_on is not None:
            text, reason = run_on.split(" " + text, maxsplit=1)[0].strip() or None, "empty"
        if text is None:
            engine.reject(operator, reason or "empty")
        elif normalize(text) in seen:
            engine.reject(operator, "unchanged")
        elif echo := meta.echo(text, vocabulary):
            engine.reject(operator, echo)
        else:
            seen.add(normalize(text))
            kept.append(Proposal(text, sample))
    return kept


def distinct_new(
    engine: Engine, existing: Sequence[str], made: Sequence[Candidate | None]
) -> list[Candidate]:
    """The candidates of ``made`` whose text (normalized) is neither in ``existing`` nor an
    earlier sibling's: scoring a repeat would only spend evaluation calls."""
    seen = {normalize(t) for t in existing}
    out = []
    for c in made:
        if c is None:
            continue
        if normalize(c.text) in seen:
            engine.reject(c.operator, "duplicate")
            continue
        seen.add(normalize(c.text))
        out.append(c)
    return out


def program_from_sample(
    engine: Engine, sample: Sample | None, operator: str, existing: Sequence[str],
    prefix: str = "",
) -> tuple[str, str] | None:
    """(thought, code) of a meta-LLM answer on a program task, or None with the reason recorded:
    the call failed, the code does not parse or lacks the function, or it repeats ``existing``.
    ``prefix`` is code the answer continues (pre-filled lines of the program)."""
    if sample is None:
        engine.reject(operator, "call_failed")
        return None
    task = engine.task
    entry, signature = task.entry, task.signature  # type: ignore[union-attr]  # a program task
    thought, code = extract_program(sample.text, entry, signature_arity(signature, entry))
    if thought is None:
        engine.reject(operator, code)  # type: ignore[arg-type]  # the reason, when no thought
        return None
    # the pre-filled lines, less those the model wrote again (an endpoint that cannot continue
    # a partial answer may have written the prefill itself)
    written = set(code.splitlines())
    head = "".join(f"{line}\n" for line in prefix.splitlines() if line not in written)
    code = f"{head}\n{code}" if head else code
    if any(normalize(code) == normalize(e) for e in existing):  # blank lines aside
        engine.reject(operator, "unchanged")
        return None
    return thought, code
