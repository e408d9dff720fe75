"""A deterministic stand-in model for tests and demos (``provider: scripted``).

With no reply function it answers from a hash of the request, so results are reproducible and
different prompts get different (arbitrary) accuracies: enough to drive a search end to end fast.
Tests pass their own ``reply`` to script exact answers.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import re
from collections.abc import Callable

from evo import judge
from evo.llm import LLMRequest, LLMResponse

Reply = Callable[[LLMRequest], "str | dict[str, float]"]

_WORDS = re.compile(r"[A-Za-z][A-Za-z'-]+")


_SCALE = re.compile(r"from 1 to (\d+)")


def hashed_reply(request: LLMRequest) -> str | dict[str, float]:
    rng = random.Random(hashlib.sha256(request.cache_key("scripted").encode()).digest())
    if request.labels:
        return {label: -rng.random() * 5 for label in request.labels}
    if judge.is_judge_request(request):  # a verdict in the format asked for, after the pre-fill
        top = _SCALE.search(request.messages[-1].content)
        if top:
            return f" {rng.randint(1, int(top.group(1)))}\nReason: scored by hash."
        return f" {rng.choice(['A', 'B', 'tie'])}\nReason: picked by hash."
    # words of the meta-prompt's last paragraph: what was filled in (parents, the task), not
    # the worked example above it, whose words a real optimizer is told not to copy
    words = _WORDS.findall(request.messages[-1].content.rsplit("\n\n", 1)[-1])
    picked = [rng.choice(words) for _ in range(rng.randint(6, 12))] if words else ["answer"]
    return " ".join(picked).capitalize() + "." + (request.stop[0] if request.stop else "")


class ScriptedClient:
    supports_label_scoring = True

    def __init__(
        self, reply: Reply | None = None, *, model: str = "scripted", latency_s: float = 0.0
    ) -> None:
        self.reply = reply or hashed_reply
        self.model = model
        self.latency_s = latency_s
        self.requests: list[LLMRequest] = []

    async def call(self, request: LLMRequest) -> LLMResponse:
        self.requests.append(request)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        return self.call_sync(request)

    def call_sync(self, request: LLMRequest) -> LLMResponse:
        out = self.reply(request)
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        if isinstance(out, dict):
            best = max(out, key=out.__getitem__)
            return LLMResponse(best, self.model, prompt_tokens, 0, label_logprobs=out)
        text = out
        for stop in request.stop:  # a real endpoint stops before the stop sequence
            text = text.split(stop, 1)[0]
        return LLMResponse(text, self.model, prompt_tokens, len(text.split()))

    def close(self) -> None:
        pass
