"""What the routes share: the store, the settings, the job service and the metrics of one app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request

from evo.app.settings import Settings
from storage import Store
from workers.service import JobService

if TYPE_CHECKING:
    from api.metrics import ApiMetrics


@dataclass
class ApiState:
    store: Store
    settings: Settings
    service: JobService
    metrics: ApiMetrics
    events_poll_s: float = 0.5
    events_keepalive_s: float = 15.0


def api_state(request: Request) -> ApiState:
    state: ApiState = request.app.state.evo
    return state
