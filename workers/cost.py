"""What a call costs in money, and the most it can cost before it is sent.

A model's price is given per million input and output tokens (``models.<role>.price``, USD). A
paid call costs ``prompt_tokens x input / 1e6 + completion_tokens x output / 1e6`` by the model
that served it; a cache hit costs nothing.

Token counts are known only once a call returns, so ``budget.usd`` admits a call by an upper
bound of its cost:

    input tokens  <= UTF-8 bytes of the messages, the prefill and the label words
                     + the soft prompt's vectors
                     + TEMPLATE_PER_MESSAGE per message + TEMPLATE_PER_REQUEST
    output tokens <= the request's max_tokens

The input bound holds for the byte-level BPE tokenizers of the models Evo talks to (SmolLM2,
Gemma, the GPT and Llama families): every token stands for at least one byte of the text, so a
text of b bytes is at most b tokens. What a chat template adds around the text is not in the
messages: role markers and separators per message (a handful of tokens, at most
TEMPLATE_PER_MESSAGE) and, for the whole request, the start of the answer and a default system
message some templates insert when there is none (at most TEMPLATE_PER_REQUEST).
"""

from __future__ import annotations

from collections.abc import Iterable

from evo.llm import LLMRequest, LLMResponse
from evo.spec import Price

TEMPLATE_PER_MESSAGE = 8
TEMPLATE_PER_REQUEST = 64
MILLION = 1_000_000


def cost(response: LLMResponse, price: Price | None) -> float:
    """What a paid response cost (0 without a price, or for a cache hit)."""
    if price is None or response.cached:
        return 0.0
    return (response.prompt_tokens * price.input + response.completion_tokens * price.output) \
        / MILLION


def input_bound(request: LLMRequest) -> int:
    """The most prompt tokens ``request`` can be billed for (see the module's docstring)."""
    text = sum(len(m.content.encode()) for m in request.messages)
    text += len(request.prefill.encode()) + sum(len(label.encode()) for label in request.labels)
    soft = 0
    if request.soft is not None:  # its vectors stand where a marker is, in the text
        soft = request.soft.n_tokens + len(request.soft.init_text.encode())
    return text + soft + TEMPLATE_PER_MESSAGE * len(request.messages) + TEMPLATE_PER_REQUEST


def cost_bound(request: LLMRequest, price: Price | None) -> float:
    """The most ``request`` can cost when it is paid for."""
    if price is None:
        return 0.0
    return (input_bound(request) * price.input + request.max_tokens * price.output) / MILLION


def costs_bound(requests: Iterable[LLMRequest], price: Price | None) -> float:
    return sum(cost_bound(r, price) for r in requests) if price is not None else 0.0
