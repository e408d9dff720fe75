"""Reading an OpenAI-compatible model's answer: label scores from the log-probabilities of its
first token (the core's rule, ``evo.llm.label_scores``, the same for every runtime), the first
label named in a text, and the prefill cut off the front."""

from __future__ import annotations

import re

from evo.llm import LABEL_FLOOR, label_scores

__all__ = ["LABEL_FLOOR", "first_label_in", "labels_from_top_logprobs", "strip_prefill"]

# A prefill found later than this in an answer is taken as part of the content, not its start.
_MAX_PREAMBLE = 80

# The name importers (bench/baselines.py) know; the rule itself lives in the core.
labels_from_top_logprobs = label_scores


def first_label_in(text: str, labels: tuple[str, ...]) -> str | None:
    """The label whose first whole-word occurrence comes earliest in ``text`` (case-insensitive)."""
    best: tuple[int, int, str] | None = None
    for label in labels:
        match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, flags=re.IGNORECASE)
        if match:
            key = (match.start(), -len(label), label)  # earliest, then longest ("New York City")
            best = key if best is None or key < best else best
    return best[2] if best else None


def strip_prefill(text: str, prefill: str) -> tuple[str, bool]:
    """Drop the prefill and anything before it (a preamble) if the model wrote it."""
    at = text.find(prefill) if prefill else -1
    if at != -1 and len(text[:at].strip()) <= _MAX_PREAMBLE:
        return text[at + len(prefill) :], True
    return text, False
