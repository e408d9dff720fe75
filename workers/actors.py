"""The Ray actor that serves LLM calls: one model client per actor, loaded once and reused."""

from __future__ import annotations

from typing import Any

import ray
from pydantic import SecretStr

from evo.gather import fan_out
from evo.llm import LLMRequest, LLMResponse
from evo.spec import ModelSpec


@ray.remote
class LLMWorker:
    def __init__(self, spec: dict[str, Any], api_key: str | None, redis_url: str | None) -> None:
        from evo.app.settings import Settings
        from workers.llm import make_client

        model = ModelSpec.model_validate(spec)
        if api_key is not None:
            # model_copy does not validate: the key must be made a SecretStr here
            model = model.model_copy(update={"api_key": SecretStr(api_key)})
        # the URL travels with the actor: a remote node does not see the driver's environment
        self.client = make_client(model, Settings(redis_url=redis_url))

    async def call_batch(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        together = getattr(self.client, "call_batch", None)
        if together is not None:  # a local model decodes a batch side by side
            return list(await together(requests))
        return list(await fan_out(*(self.client.call(r) for r in requests)))

    def describe(self) -> tuple[str, str]:
        """(model name, the node this actor runs on)."""
        return self.client.model, ray.get_runtime_context().get_node_id()


class ActorWorker:
    """Adapts an actor handle to the pool's ``Worker`` shape."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle

    async def call_batch(self, requests: list[LLMRequest]) -> list[LLMResponse]:
        return await self.handle.call_batch.remote(requests)
