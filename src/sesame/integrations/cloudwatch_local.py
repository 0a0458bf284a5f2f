"""CloudWatch event destinations with no AWS endpoint: SES's metrics as Prometheus counters.

SES publishes each event to CloudWatch as a count in namespace ``AWS/SES``, named for its type and
dimensioned as the destination's DimensionConfigurations say. Here the same counts are served at
``/metrics``, their dimensions in one label (``name=value,…``) since each destination chooses its own.
"""

from __future__ import annotations

from prometheus_client import Counter

SES_EVENTS = Counter(
    "sesame_ses_event",
    "SES events published to CloudWatch destinations (namespace AWS/SES), by metric and dimensions",
    ["account", "region", "metric", "dimensions"],
)


def record(account_id: str, region: str, metric: str, dimensions: list[dict[str, str]]) -> None:
    labels = ",".join(f"{d['Name']}={d['Value']}" for d in dimensions)
    SES_EVENTS.labels(account_id, region, metric, labels).inc()
