"""The REST API served for real: uvicorn on a loopback port in a background thread, with its own
job service, and httpx clients that talk to it with a given key."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from api import create_app
from api.keys import create_key
from evo.app.settings import Settings
from storage import Store
from tests.servers import free_port
from workers.service import JobService

PREFIX = "/api/v1"


class LiveApi:
    """``with LiveApi(store, settings) as api:`` serves the app until the block ends."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.service = JobService(store, settings, poll_s=0.1)
        self.app = create_app(store, settings, self.service, events_poll_s=0.1)
        self.port = free_port()
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, name="api-test", daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LiveApi:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=30)

    def key(self, name: str, *, admin: bool = False) -> str:
        return create_key(self.store, name, admin=admin)[1]

    def client(self, key: str | None = None, **kw: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(
            base_url=self.base_url + PREFIX, headers=headers, timeout=kw.pop("timeout", 30), **kw
        )


def scripted_spec(generations: int = 2, seed: int = 1, **algorithm: Any) -> dict[str, Any]:
    """A job spec as JSON that runs in well under a second with the scripted model."""
    return {
        "name": f"scripted {seed}",
        "task": "sentiment",
        "models": {"task": {"provider": "scripted"}},
        "algorithm": {"name": "evoprompt-ga", "population": 3, "generations": generations,
                      "dev_subset": 6, **algorithm},
        "evaluation": {"top_k": 2},
        "budget": {"calls": 20_000},
        "seed": seed,
    }


def wait_status(client: httpx.Client, job_id: str, *statuses: str,
                timeout_s: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        job = client.get(f"/jobs/{job_id}").json()
        if job["status"] in statuses:
            return job
        assert time.monotonic() < deadline, (job["status"], job["reason"])
        time.sleep(0.05)


@dataclass(frozen=True)
class Sse:
    id: int
    event: str
    data: dict[str, Any]


def read_sse(lines: Iterator[str]) -> Iterator[Sse]:
    """Parse a server-sent event stream into its messages (comments skipped)."""
    fields: dict[str, str] = {}
    for line in lines:
        if line == "":
            if fields:
                yield Sse(int(fields["id"]), fields["event"], json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
