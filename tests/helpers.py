"""A tiny task whose fitness is written into the prompt, so algorithm logic can be checked exactly.

A prompt containing ``q=0.7`` answers correctly exactly the first 70% of the dev examples (the
scripted model reads the example's position from its input). Meta-LLM replies are scripted per test.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from evo.llm import LLMRequest
from evo.metrics import get_metric
from evo.task import Example, Task

N_DEV = 10
_Q = re.compile(r"q=([0-9.]+)")


def quality(text: str) -> float:
    m = _Q.search(text)
    return float(m.group(1)) if m else 0.0


def toy_task(seeds: tuple[str, ...] = ("Answer. q=0.2", "Reply. q=0.4")) -> Task:
    def split(name: str, n: int) -> tuple[Example, ...]:
        return tuple(Example(f"{name}{i}", f"item {i} of {n}", "yes" if i % 2 else "no")
                     for i in range(n))

    return Task(
        name="toy",
        description="say yes or no",
        template="{prompt}\n\nInput: {input}\nAnswer:",
        splits={"train": split("train", N_DEV), "dev": split("dev", N_DEV),
                "test": split("test", N_DEV)},
        metric=get_metric("label_accuracy", verbalizers={"yes": "yes", "no": "no"}),
        labels=("yes", "no"),
        verbalizers={"yes": "yes", "no": "no"},
        seed_prompts=seeds,
        max_answer_tokens=2,
    )


def label_reply(request: LLMRequest) -> dict[str, float]:
    """Correct on the first q·n examples of a split, wrong on the rest."""
    text = request.messages[-1].content
    q = quality(text)
    i, n = map(int, re.search(r"item (\d+) of (\d+)", text).groups())
    gold = "yes" if i % 2 else "no"
    right = i < round(q * n)
    answer = gold if right else ("no" if gold == "yes" else "yes")
    return {w: (0.0 if w == answer else -3.0) for w in request.labels}


def scripted(meta: Callable[[LLMRequest], str]) -> Callable[[LLMRequest], str | dict]:
    """Label requests are answered by ``label_reply``, generation requests by ``meta``."""

    def reply(request: LLMRequest) -> str | dict:
        return label_reply(request) if request.labels else meta(request)

    return reply
