"""Process-wide configuration from ``EVO_*`` environment variables (specs may override models)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from evo.paths import default_database_url, default_store_path, evo_home  # noqa: F401


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "local"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EVO_", extra="ignore")

    database_url: str = Field(
        default_factory=default_database_url,
        description="SQLAlchemy URL of the store (default: evo.db in EVO_HOME, else in the "
        "user's data folder)",
    )
    owner: str = Field(
        default_factory=lambda: _login_name(),
        description="owner of jobs run or submitted from the command line: an API key of this "
        "name sees them (default: your login name)",
    )
    redis_url: str | None = Field(None, description="Redis for events, cache and rate limits")
    redis_prefix: str = Field("evo:", description="namespace of every key Evo writes to Redis")
    ray_address: str | None = Field(None, description="an existing Ray cluster; unset: start one")
    llm_base_url: str | None = Field(None, description="default OpenAI-compatible base URL")
    executor: Literal["ray", "inprocess"] = Field(
        "ray", description="where LLM workers run: Ray actors, or clients inside this process"
    )
    cache_entries: int = Field(200_000, ge=0, description="in-memory response cache size")
    max_jobs: int = Field(2, ge=1, le=1000, description="jobs one service runs at the same time")
    lease_s: float = Field(
        30.0, ge=1.0, le=3600.0,
        description="a job's lease: renewed every third of this; another service takes over a "
        "job whose lease was not renewed for this long",
    )
    start_timeout_s: float = Field(
        120.0, gt=0, description="how long a job waits for model workers the cluster cannot "
        "hold before it fails",
    )
    cancel_grace_s: float = Field(
        10.0, gt=0, description="how long a running job's driver has to act on a cancel before "
        "a service enforces it",
    )
    # --- the REST API (`evo serve`) ---
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="largest request body the API reads (413 beyond)"
    )
    max_budget_calls: int = Field(
        100_000, ge=1, description="most LLM calls a job submitted over the API may spend"
    )
    max_budget_tokens: int | None = Field(
        100_000_000, ge=1, description="most tokens an API job may spend (unset: no server cap)"
    )
    max_budget_seconds: float | None = Field(
        86_400.0, gt=0, description="longest search of an API job, s (unset: no server cap)"
    )
    api_data_dir: str | None = Field(
        None, description="folder API specs may read task data and local model files from "
        "(unset: API specs use built-in tasks and the bundled model only)",
    )
    api_key_envs: list[str] = Field(
        default_factory=lambda: ["OPENAI_API_KEY"],
        description="environment variables whose keys API specs may name with api_key_env",
    )
    api_custom_metrics: bool = Field(
        False, description="let API specs name a metric as module:function (imports code)"
    )
    metrics_public: bool = Field(
        False, description="serve /api/v1/metrics without a key (else an admin key is needed)"
    )
