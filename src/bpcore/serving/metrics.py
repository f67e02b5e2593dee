"""The server's Prometheus metrics (``GET /metrics``), as text-embeddings-inference exports them.

Per task and model: requests by status, items per model call (the batch sizes), request and
model-call latency, and the requests waiting. Each app has its own registry, so two servers in
one process (tests) count apart.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    """Counters and histograms of one server."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        labels = ("task", "model")
        self.requests = Counter(
            "bpcore_requests", "Requests answered, by status", (*labels, "status"), registry=self.registry
        )
        self.latency = Histogram(
            "bpcore_request_seconds",
            "Time from request to answer",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_items = Histogram(
            "bpcore_batch_items",
            "Items per model call",
            labels,
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self.model_seconds = Histogram(
            "bpcore_model_call_seconds",
            "Time of one model call",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queue = Gauge(
            "bpcore_queue_depth", "Requests waiting for a batch", labels, registry=self.registry
        )

    def observer(self, task: str, model: str) -> Any:
        """What a batcher calls after each model call."""
        items, seconds = self.batch_items.labels(task, model), self.model_seconds.labels(task, model)

        def observe(count: int, took: float) -> None:
            items.observe(count)
            seconds.observe(took)

        return observe

    def text(self) -> bytes:
        return generate_latest(self.registry)
