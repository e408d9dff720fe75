"""Shared variation pieces: asking the meta-LLM for a prompt between tags, parsing it defensively.

Small models follow output formats poorly, so every proposal is asked for with the opening tag
pre-filled and the closing tag as a stop sequence, then cleaned. An answer that is empty, that only
repeats a parent or a worked example, that echoes the meta-prompt's own instructions, or that is
too long to be an instruction is rejected with a recorded reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from evo.candidate import Candidate
from evo.engine import Engine
from evo.meta_prompt import MetaPrompt

_WS = re.compile(r"\s+")
_TAG = re.compile(r"</?\s*[a-zA-Z_]+\s*>")
# A short label before a colon ("New instruction:", "Merged and changed:") is format chatter.
_LEADER = re.compile(r"^[A-Za-z][\w ]{0,30}?:\s+")
# Small models echo the meta-prompt's own field names mid-answer; text after one is not ours.
_ECHO = re.compile(r"\s(?:Instruction [A-Z]|Instruction|Merged and changed|Rewritten|Task)\s*:")


def normalize(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


def clean_proposal(raw: str, tag: str, max_chars: int) -> tuple[str | None, str]:
    """(prompt, "") or (None, reason); ``raw`` is what followed the pre-filled opening tag."""
    text = raw.split(f"</{tag}>", 1)[0]
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
    max_tokens: int = 120,
    max_chars: int = 1500,
) -> list[str]:
    """Sample ``n`` proposals and keep the usable ones (in order, duplicates dropped)."""
    answers = await engine.generate(
        meta.messages,
        n=n,
        temperature=temperature,
        max_tokens=max_tokens,
        prefill=f"<{tag}>",
        stop=(f"</{tag}>",),
        purpose=operator,
    )
    seen = {normalize(o) for o in (*originals, *meta.example_answers)}
    kept: list[str] = []
    for raw in answers:
        if raw is None:
            engine.reject(operator, "call_failed")
            continue
        text, reason = clean_proposal(raw, tag, max_chars)
        if text is None:
            engine.reject(operator, reason)
        elif normalize(text) in seen:
            engine.reject(operator, "unchanged")
        elif echo := meta.echo(text):
            engine.reject(operator, echo)
        else:
            seen.add(normalize(text))
            kept.append(text)
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
