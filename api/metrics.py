"""Prometheus metrics of one app: HTTP requests by route and status, their latency, and the
store's jobs by status (counted when scraped, so every process serving one store agrees)."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from storage import JOB_STATUSES
from storage.protocols import ReadModels
from workers.service import JobService

log = logging.getLogger(__name__)

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ApiMetrics:
    """Each app has its own registry, so several apps in one process do not share counts."""

    def __init__(self, store: ReadModels, service: JobService) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "evo_http_requests",
            "HTTP requests answered, by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "evo_http_request_duration_seconds",
            "Time to answer an HTTP request (to the end of its body), by method and route",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_JobsCollector(store, service))

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _JobsCollector(Collector):
    def __init__(self, store: ReadModels, service: JobService) -> None:
        self.store = store
        self.service = service

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("evo_store_up", "1 when the store answered this scrape")
        try:
            counts = self.store.jobs_by_status()
        except Exception as exc:  # a scrape must still answer when the store does not
            log.warning("metrics: store unreachable: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily("evo_jobs", "Jobs in the store by status", labels=["status"])
        for status in sorted(JOB_STATUSES | set(counts)):
            jobs.add_metric([status], counts.get(status, 0))
        yield jobs
        running = GaugeMetricFamily(
            "evo_service_running_jobs", "Jobs this server's job service is running now"
        )
        running.add_metric([], len(self.service.running))
        yield running


class MetricsMiddleware:
    """Counts every request by its route template (not its path, which would make a series per
    id); requests that match no route are counted as ``unmatched``."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics, prefix: str = "") -> None:
        self.app = app
        self.metrics = metrics
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            if (route != "unmatched" and not route.startswith(self.prefix)
                    and str(scope.get("path", "")).startswith(self.prefix)):
                # some FastAPI versions keep an included router's paths without its prefix
                # (the dashboard's own routes, outside the prefix, keep theirs)
                route = self.prefix + route
            self.metrics.observe(
                scope.get("method", "OTHER"), route, status, time.perf_counter() - started
            )
