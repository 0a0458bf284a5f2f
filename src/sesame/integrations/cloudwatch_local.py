"""CloudWatch event destinations with no AWS endpoint: SES's metrics as Prometheus counters.

SES publishes each event to CloudWatch as a count in namespace ``AWS/SES``, named for its type and
dimensioned as the destination's DimensionConfigurations say. Here the same counts are served at
``/metrics``, their dimensions in one label (``name=value,…``) since each destination chooses its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

from sesame.metrics import Figure

SES_EVENTS = Counter(
    "sesame_ses_event",
    "SES events published to CloudWatch destinations (namespace AWS/SES), by metric and dimensions",
    ["account", "region", "metric", "dimensions"],
)


def record(account_id: str, region: str, metric: str, dimensions: list[dict[str, str]]) -> None:
    labels = ",".join(f"{d['Name']}={d['Value']}" for d in dimensions)
    SES_EVENTS.labels(account_id, region, metric, labels).inc()


#: SES's Reputation.BounceRate and Reputation.ComplaintRate (fractions: 0.05 is 5%), per account and
#: region (configuration_set "") and per configuration set with ReputationMetricsEnabled.
BOUNCE_RATE = Figure(
    "sesame_reputation_bounce_rate",
    "Reputation.BounceRate (AWS/SES): hard bounces over recipients sent, in the reputation window",
    ["account", "region", "configuration_set"],
)
COMPLAINT_RATE = Figure(
    "sesame_reputation_complaint_rate",
    "Reputation.ComplaintRate (AWS/SES): complaints over recipients sent, in the reputation window",
    ["account", "region", "configuration_set"],
)


def reputation(rates: Iterable[dict[str, Any]]) -> None:
    """Set the gauges to ``rates`` (domain/reputation.py ``Reputation.current``), forgetting the label
    sets that are gone (a set deleted, or its metrics turned off)."""
    BOUNCE_RATE.clear()
    COMPLAINT_RATE.clear()
    for r in rates:
        labels = (r["AccountId"], r["Region"], r["ConfigurationSet"] or "")
        BOUNCE_RATE.labels(*labels).set(r["BounceRate"])
        COMPLAINT_RATE.labels(*labels).set(r["ComplaintRate"])
