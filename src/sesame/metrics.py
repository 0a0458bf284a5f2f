"""The process's Prometheus metrics, served at ``/metrics`` (prometheus-client's default registry).

Counters and histograms are updated where things happen (an API request answered, an outcome settled,
an SMTP session opened). What lives in the database (queue depth, publications waiting) is read every few
seconds by the runtime's background loop rather than at each scrape: a scrape never waits on the
database, and every node of a deployment reports the same shared figures. This module imports nothing
of Sesame's, so that any layer may count.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

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
SMTP_SESSIONS = Gauge("sesame_smtp_sessions", "SMTP sessions open now on this process")
QUEUE_ENTRIES = Gauge("sesame_queue_entries", "Delivery queue entries by state", ["state"])
PUBLICATIONS = Gauge(
    "sesame_event_publications", "Event publications waiting or failed, by state and destination kind",
    ["state", "kind"],
)  # fmt: skip
FEEDBACK = Counter(
    "sesame_feedback_reports",
    "Reports received at return paths, by what became of them (bounce, complaint, auto-reply, delayed, "
    "ignored, unmatched, malformed)",
    ["outcome"],
)
