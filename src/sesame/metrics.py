"""The process's Prometheus metrics, served at ``/metrics`` (prometheus-client's default registry).

Counters and histograms are updated where things happen (an API request answered, an outcome settled,
an SMTP session opened). What lives in the database (queue depth, publications waiting) is read every few
seconds by the runtime's background loop rather than at each scrape: a scrape never waits on the
database, and every node of a deployment reports the same shared figures. This module imports nothing
of Sesame's, so that any layer may count.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.core import GaugeMetricFamily, Metric

#: Set by ``sesame serve --workers`` before this module is imported: every worker then keeps its
#: counters in a file of that directory, and a scrape of any one of them reports the sum of all.
MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"


class Figure:
    """A gauge whose value comes from the database, the same on every process (queue depth, reputation
    rates): kept in this process's memory and reported by a collector of its own, never in the
    per-process files of multiprocess mode, so that N workers report it once rather than N times."""

    def __init__(self, name: str, documentation: str, labelnames: list[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, labelnames
        self._values: dict[tuple[str, ...], float] = {}
        FIGURES.append(self)
        REGISTRY.register(self)

    def labels(self, *values: str) -> _Setter:
        return _Setter(self._values, values)

    def clear(self) -> None:
        self._values = {}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in list(self._values.items()):
            family.add_metric(list(labels), value)
        yield family


class _Setter:
    def __init__(self, values: dict[tuple[str, ...], float], labels: tuple[str, ...]) -> None:
        self.values, self.key = values, labels

    def set(self, value: float) -> None:
        self.values[self.key] = value


FIGURES: list[Figure] = []


def registry() -> CollectorRegistry:
    """What a scrape reports: this process's metrics, or with workers every worker's, and the figures."""
    if not os.environ.get(MULTIPROCESS):
        return REGISTRY
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged)
    for figure in FIGURES:
        merged.register(figure)
    return merged


API_REQUESTS = Counter(
    "sesame_api_requests", "AWS API requests answered, by service, operation and error code ('' when none)",
    ["service", "operation", "error"],
)  # fmt: skip
DELIVERIES = Counter(
    "sesame_delivery_outcomes", "Recipients' delivery outcomes (delivered, deferred, bounced)", ["outcome"]
)
DELIVERY_LATENCY = Histogram(
    "sesame_delivery_latency_seconds",
    "From acceptance to the remote server's 250, per delivered recipient",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 14 * 3600),
)
SMTP_SESSIONS = Gauge(
    "sesame_smtp_sessions", "SMTP sessions open now on this node", multiprocess_mode="livesum"
)
QUEUE_ENTRIES = Figure("sesame_queue_entries", "Delivery queue entries by state", ["state"])
PUBLICATIONS = Figure(
    "sesame_event_publications", "Event publications waiting or failed, by state and destination kind",
    ["state", "kind"],
)  # fmt: skip
FEEDBACK = Counter(
    "sesame_feedback_reports",
    "Reports received at return paths, by what became of them (bounce, complaint, auto-reply, delayed, "
    "ignored, unmatched, malformed)",
    ["outcome"],
)
