"""Reading an OpenAI-compatible model's answer: label scores from the log-probabilities of its
first token, the first label named in a text, and the prefill cut off the front."""

from __future__ import annotations

import math
import re

# Score of a label that never appeared (below every listed token, or this when nothing is listed).
LABEL_FLOOR = -100.0
# A prefill found later than this in an answer is taken as part of the content, not its start.
_MAX_PREAMBLE = 80


def _norm(text: str) -> str:
    return text.strip().strip(".,:;!?\"'`*()[]").lower()


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def labels_from_top_logprobs(
    labels: tuple[str, ...], top: list[tuple[str, float]]
) -> dict[str, float]:
    """Map the first generated token's alternatives onto labels.

    A token counts for a label when, stripped and lower-cased, it is the label or a start of it
    ("Pos" for "positive"); the label's score is the log of the summed probabilities of its tokens
    (" positive" and "Positive" are different tokens for the same answer). Labels with no token in
    the list get a floor just below the least likely token listed.
    """
    floor = min((lp for _, lp in top), default=LABEL_FLOOR + 1.0) - 1.0
    scores: dict[str, float] = {}
    for label in labels:
        want = _norm(label)
        hits = [lp for tok, lp in top if _norm(tok) and want.startswith(_norm(tok))]
        scores[label] = _logsumexp(hits) if hits else floor
    return scores


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
