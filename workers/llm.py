"""LLM clients and the factory that builds one from a ``ModelSpec``.

``LocalLlamaClient`` (llama.cpp, in-process) lives in ``workers.llm_local`` and ``OpenAIClient``
(any OpenAI-compatible endpoint) in ``workers.llm_openai``. The local one is imported only when
asked for, so a deployment that talks to remote endpoints needs no compiled llama.cpp.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from evo.app.settings import Settings
from evo.llm import LLMClient, LLMUnavailable
from workers.llm_openai import DEFAULT_BASE_URL, OpenAIClient
from workers.ratelimit import endpoint_key, make_rate_limiter

if TYPE_CHECKING:
    from evo.spec import ModelSpec
    from workers.llm_local import LocalLlamaClient, bundled_model_path

__all__ = ["LocalLlamaClient", "OpenAIClient", "bundled_model_path", "make_client"]

BASE_URL_ENV = "EVO_LLM_BASE_URL"


def make_client(spec: ModelSpec, settings: Settings | None = None) -> LLMClient:
    """The client a spec describes. Raises ``LLMUnavailable`` when it cannot work at all (no model
    file, no model name, no key for OpenAI itself)."""
    if spec.provider == "scripted":
        from workers.scripted import ScriptedClient

        return ScriptedClient()
    if spec.provider == "local":
        from workers.llm_local import LocalLlamaClient

        return LocalLlamaClient(spec.model, n_ctx=spec.n_ctx, threads=spec.threads,
                                parallel=spec.parallel)

    if not spec.model:
        raise LLMUnavailable("provider 'openai' needs a model name (models[].model)")
    base_url = spec.base_url or os.environ.get(BASE_URL_ENV) or None
    if spec.api_key is not None:
        key: str | None = spec.api_key.get_secret_value()
    else:
        key = os.environ.get(spec.api_key_env) or None
    if key is None and base_url is None:
        raise LLMUnavailable(
            f"no API key for {DEFAULT_BASE_URL}: set the environment variable {spec.api_key_env}"
        )
    limiter = make_rate_limiter(
        settings or Settings(),
        endpoint_key(base_url or DEFAULT_BASE_URL, spec.model, key),
        spec.rpm,
        spec.tpm,
    )
    return OpenAIClient(
        spec.model,
        rate_limiter=limiter,
        base_url=base_url,
        api_key=key,  # None for a keyless local server: the client sends a placeholder
        timeout_s=spec.timeout_s,
        max_retries=spec.max_retries,
        concurrency=spec.concurrency,
    )


def __getattr__(name: str) -> Any:
    # Lazy re-export: importing workers.llm must not load llama.cpp.
    if name in ("LocalLlamaClient", "bundled_model_path"):
        from workers import llm_local

        return getattr(llm_local, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
