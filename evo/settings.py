"""Process-wide configuration from ``EVO_*`` environment variables (specs may override models)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVO_", extra="ignore")

    database_url: str = Field("sqlite:///./evo.db", description="SQLAlchemy URL of the store")
    redis_url: str | None = Field(None, description="Redis for events, cache and rate limits")
    redis_prefix: str = Field("evo:", description="namespace of every key Evo writes to Redis")
    ray_address: str | None = Field(None, description="an existing Ray cluster; unset: start one")
    llm_base_url: str | None = Field(None, description="default OpenAI-compatible base URL")
    executor: Literal["ray", "inprocess"] = Field(
        "ray", description="where LLM workers run: Ray actors, or clients inside this process"
    )
    cache_entries: int = Field(200_000, ge=0, description="in-memory response cache size")
    max_jobs: int = Field(2, ge=1, le=1000, description="jobs one service runs at the same time")
