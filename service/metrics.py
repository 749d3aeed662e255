"""Prometheus metrics, in a registry of the app's own (several apps can live in one process)."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "heichan_requests_total",
            "HTTP requests by route and status",
            ["method", "path", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "heichan_request_seconds",
            "Request latency in seconds",
            ["path"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.paragraphs = Counter("heichan_paragraphs_tagged_total", "Paragraphs tagged", registry=self.registry)
        self.model = Gauge(
            "heichan_model_info",
            "The model being served (value 1)",
            ["name", "version", "taxonomy_version"],
            registry=self.registry,
        )

    def observe(self, method: str, path: str, status: int, seconds: float) -> None:
        # label values stay a small fixed set: any other method name is "other", unrouted
        # paths are "unmatched" (the caller's job), so no request can add a time series
        method = method if method in METHODS else "other"
        self.requests.labels(method, path, str(status)).inc()
        self.latency.labels(path).observe(seconds)

    def set_model(self, name: str, version: str, taxonomy_version: int) -> None:
        self.model.clear()
        self.model.labels(name, version, str(taxonomy_version)).set(1)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
