"""Prometheus metrics: the engine's own counters (read from `Model.stats()` at every scrape) and the
HTTP requests the server answered, in a registry private to one app (never the global one, so two
apps in one process do not mix)."""
from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .._core import OhaiError

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["CONTENT_TYPE_LATEST", "Metrics", "route_label"]

# Model.stats() keys: (metric name without the ohai_ prefix, is a counter, help).
_ENGINE_METRICS: dict[str, tuple[str, bool, str]] = {
    "parallel": ("parallel_sequences", False, "Requests the engine decodes together (continuous batching)"),
    "running": ("requests_running", False, "Requests being decoded now"),
    "queued": ("requests_queued", False, "Requests waiting for a free sequence"),
    "kv_block_size": ("kv_block_size_tokens", False, "Tokens per KV cache block"),
    "kv_blocks_total": ("kv_blocks_capacity", False, "KV cache blocks in the context"),
    "kv_blocks_used": ("kv_blocks_used", False, "KV cache blocks held by running requests"),
    "kv_blocks_cached": ("kv_blocks_cached", False, "KV cache blocks kept as prefix cache"),
    "requests_completed": ("requests_completed", True, "Requests that finished (stop or length)"),
    "requests_cancelled": ("requests_cancelled", True, "Requests cancelled (client gone, stream closed, shutdown)"),
    "requests_failed": ("requests_failed", True, "Requests that failed in the engine"),
    "requests_rejected": ("requests_rejected", True, "Requests refused because the queue was full"),
    "preemptions": ("preemptions", True, "Requests preempted to free KV cache blocks"),
    "tokens_generated": ("tokens_generated", True, "Tokens generated"),
    "prompt_tokens_decoded": ("prompt_tokens_decoded", True, "Prompt tokens decoded"),
    "prompt_tokens_cached": ("prompt_tokens_cached", True, "Prompt tokens served from the prefix cache"),
}

# Paths are labels only when they are routes: anything a client makes up would grow the series without bound.
_ROUTES = frozenset({
    "/health", "/metrics", "/v1/models", "/v1/completions", "/v1/chat/completions", "/v1/embeddings",
})
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def route_label(path: str) -> str:
    if path in _ROUTES:
        return path
    if path.startswith("/v1/models/"):
        return "/v1/models/{model}"
    return "other"


class _EngineCollector(Collector):
    def __init__(self, model: Model, model_name: str) -> None:
        self._model = model
        self._model_name = model_name

    def collect(self) -> Iterator[Metric]:
        info = self._model.info
        family = GaugeMetricFamily("ohai_model_info", "The model being served", labels=["model", "arch", "file_type"])
        family.add_metric([self._model_name, info.arch, info.file_type], 1)
        yield family
        try:
            stats = self._model.stats()
        except OhaiError:  # closed: the server is stopping
            return
        nnrt = stats.pop("nnrt", None)
        if isinstance(nnrt, dict):
            yield CounterMetricFamily("ohai_nnrt_ops_offloaded", "Matrix multiplications run on the NNRt device",
                                      value=nnrt["ops_offloaded"])
            yield CounterMetricFamily("ohai_nnrt_ops_fallback", "Matrix multiplications the CPU ran after an NNRt failure",
                                      value=nnrt["ops_fallback"])
            yield CounterMetricFamily("ohai_nnrt_device_seconds", "Time spent in NNRt runs",
                                      value=nnrt["device_ms"] / 1000.0)
        for key, value in stats.items():
            name, counter, help_text = _ENGINE_METRICS.get(key, (key, False, f"Engine statistic {key}"))
            metric: Metric
            if counter:
                metric = CounterMetricFamily(f"ohai_{name}", help_text, value=value)
            else:
                metric = GaugeMetricFamily(f"ohai_{name}", help_text, value=value)
            yield metric


class Metrics:
    """One app's metrics; `render` gives the Prometheus text exposition."""

    def __init__(self, model: Model, model_name: str) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(_EngineCollector(model, model_name))
        self.http_requests = Counter(
            "ohai_http_requests", "HTTP requests answered, by method, route and status",
            ["method", "path", "status"], registry=self.registry)
        self.http_duration = Histogram(
            "ohai_http_request_duration_seconds", "Time from request to the end of the response (streams included)",
            ["method", "path"], buckets=_LATENCY_BUCKETS, registry=self.registry)
        self.http_in_progress = Gauge(
            "ohai_http_requests_in_progress", "HTTP requests being answered", registry=self.registry)
        self.client_disconnects = Counter(
            "ohai_http_client_disconnects", "Requests whose client went away before the response ended",
            registry=self.registry)

    def observe(self, method: str, path: str, status: int, seconds: float, *, disconnected: bool = False) -> None:
        method = method if method in _METHODS else "other"
        route = route_label(path)
        self.http_requests.labels(method, route, str(status)).inc()
        self.http_duration.labels(method, route).observe(seconds)
        if disconnected:
            self.client_disconnects.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
