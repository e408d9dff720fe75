"""A vocabulary of label-indicative words and short n-grams, chosen from labelled examples by
pointwise mutual information (PMI) with each label: BDPL's candidate prompt tokens.

For an entry e (a word or an n-gram of the lower-cased input) and a label l, over the examples:

    PMI(e, l) = log( P(e, l) / (P(e) · P(l)) ) = log( n(e, l) · N / (n(e) · n(l)) )

where n(·) counts examples (an entry counts once per example it occurs in). Each label ranks the
entries that occur in at least ``min_count`` examples by their PMI with it; the vocabulary takes the
labels' lists in turn (the best entry of each label, then the second best of each, …), so that it
is balanced across labels and an entry with no positive PMI with any label never enters. Ties break
by the entry's count, then its text, so the same examples always give the same vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_WORD = re.compile(r"\w+(?:['’]\w+)*")


def entries(text: str, max_ngram: int) -> set[str]:
    """The distinct words and n-grams (up to ``max_ngram`` words, joined by a space) of ``text``."""
    words = _WORD.findall(text.lower())
    return {" ".join(words[i:i + n]) for n in range(1, max_ngram + 1)
            for i in range(len(words) - n + 1)}


def label_vocabulary(
    texts: Sequence[str],
    targets: Sequence[str],
    labels: Sequence[str],
    *,
    size: int,
    max_ngram: int = 2,
    min_count: int = 2,
) -> list[str]:
    """Up to ``size`` entries, balanced across ``labels`` (see the module docstring)."""
    if len(texts) != len(targets):
        raise ValueError("one target per text")
    per_text = [entries(t, max_ngram) for t in texts]
    vocab = sorted(set().union(*per_text)) if per_text else []
    column = {label: j for j, label in enumerate(labels)}
    index = {e: i for i, e in enumerate(vocab)}
    joint = np.zeros((len(vocab), len(labels)))  # examples of label l that contain entry e
    for found, target in zip(per_text, targets, strict=True):
        j = column.get(target)
        if j is None:
            continue  # an example whose target is no label says nothing about any label
        for e in found:
            joint[index[e], j] += 1
    n_entry = joint.sum(axis=1)
    n_label = joint.sum(axis=0)
    total = n_label.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(joint * total / np.outer(n_entry, n_label))
    pmi[~np.isfinite(pmi)] = -np.inf  # never together, or a label without examples
    pmi[n_entry < min_count] = -np.inf
    ranked = []
    for j in range(len(labels)):
        good = [i for i in range(len(vocab)) if pmi[i, j] > 0]
        good.sort(key=lambda i: (-pmi[i, j], -n_entry[i], vocab[i]))
        ranked.append(good)
    out: list[str] = []
    taken: set[int] = set()
    for depth in range(max((len(r) for r in ranked), default=0)):
        for r in ranked:
            if len(out) == size:
                return out
            if depth < len(r) and r[depth] not in taken:
                taken.add(r[depth])
                out.append(vocab[r[depth]])
    return out
