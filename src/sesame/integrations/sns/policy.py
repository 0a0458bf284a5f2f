"""HTTP/S delivery policies: how often, and how far apart, a failed delivery is retried.

As SNS: a subscription's ``DeliveryPolicy`` (``healthyRetryPolicy``) applies unless the topic's
``DeliveryPolicy`` sets ``http.disableSubscriptionOverrides``; otherwise the topic's
``http.defaultHealthyRetryPolicy``; otherwise SNS's default, three retries 20 seconds apart. A policy's
retries run through four phases: immediate (``numNoDelayRetries``), pre-backoff (``numMinDelayRetries``,
``minDelayTarget`` apart), backoff (the rest, from ``minDelayTarget`` to ``maxDelayTarget`` by
``backoffFunction``) and post-backoff (``numMaxDelayRetries``, ``maxDelayTarget`` apart).

Email subscriptions are handed to Sesame's own mail queue, which retries on its own; their policy here
only covers a failure to enqueue (SNS's fixed policy for SMTP endpoints, simplified).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

from sesame.integrations.sns.errors import InvalidParameter

DEFAULT_CONTENT_TYPE = "text/plain; charset=UTF-8"
BACKOFF_FUNCTIONS = ("arithmetic", "exponential", "geometric", "linear")
#: SNS's bound on the whole retry schedule of an HTTP/S policy (seconds).
MAX_TOTAL_SECONDS = 3600
MAX_RETRIES = 100


@dataclass(frozen=True)
class RetryPolicy:
    min_delay: int = 20
    max_delay: int = 20
    num_retries: int = 3
    num_no_delay: int = 0
    num_min_delay: int = 0
    num_max_delay: int = 0
    backoff: str = "linear"

    def delay(self, retry: int) -> float | None:
        """Seconds before retry number ``retry`` (1 = the first retry), or None when none is left."""
        if retry > self.num_retries:
            return None
        if retry <= self.num_no_delay:
            return 0.0
        retry -= self.num_no_delay
        if retry <= self.num_min_delay:
            return float(self.min_delay)
        retry -= self.num_min_delay
        backoff = max(0, self.num_retries - self.num_no_delay - self.num_min_delay - self.num_max_delay)
        if retry > backoff:
            return float(self.max_delay)
        return _backoff(self.backoff, self.min_delay, self.max_delay, retry, backoff)

    def as_json(self) -> dict[str, Any]:
        return {
            "minDelayTarget": self.min_delay,
            "maxDelayTarget": self.max_delay,
            "numRetries": self.num_retries,
            "numMaxDelayRetries": self.num_max_delay,
            "numNoDelayRetries": self.num_no_delay,
            "numMinDelayRetries": self.num_min_delay,
            "backoffFunction": self.backoff,
        }


DEFAULT = RetryPolicy()
#: For email subscriptions: enqueueing mail fails only when the database does; retry for a day.
EMAIL = RetryPolicy(min_delay=10, max_delay=600, num_retries=200, num_min_delay=2, num_max_delay=190)


def _backoff(function: str, low: int, high: int, step: int, steps: int) -> float:
    """The delay at ``step`` of ``steps`` going from ``low`` to ``high`` seconds."""
    if steps <= 1 or high <= low:
        return float(high if step >= steps else low)
    x = (step - 1) / (steps - 1)
    if function == "exponential":
        return float(low * (high / low) ** x)
    if function == "geometric":
        return float(low + (high - low) * x**2)
    if function == "arithmetic":
        return float(low + (high - low) * math.sqrt(x))
    return float(low + (high - low) * x)


def effective(topic_policy: str | None, subscription_policy: str | None) -> tuple[RetryPolicy, str]:
    """The retry policy and Content-Type a subscription's deliveries use."""
    topic = _load(topic_policy).get("http", {}) if topic_policy else {}
    content_type = (topic.get("defaultRequestPolicy") or {}).get("headerContentType") or DEFAULT_CONTENT_TYPE
    retry = topic.get("defaultHealthyRetryPolicy")
    if subscription_policy and not topic.get("disableSubscriptionOverrides"):
        sub = _load(subscription_policy)
        retry = sub.get("healthyRetryPolicy") or retry
        content_type = (sub.get("requestPolicy") or {}).get("headerContentType") or content_type
    return (parse_retry(retry) if retry else DEFAULT), content_type


def check_topic_policy(text: str) -> None:
    """Refuse a topic DeliveryPolicy SNS would refuse."""
    http = _load(text).get("http")
    if http is not None:
        if not isinstance(http, dict):
            raise _invalid("http must be an object")
        if (retry := http.get("defaultHealthyRetryPolicy")) is not None:
            parse_retry(retry)


def check_subscription_policy(text: str) -> None:
    doc = _load(text)
    if (retry := doc.get("healthyRetryPolicy")) is not None:
        parse_retry(retry)


def parse_retry(doc: Any) -> RetryPolicy:
    if not isinstance(doc, dict):
        raise _invalid("healthyRetryPolicy must be an object")
    fields = {
        "min_delay": ("minDelayTarget", DEFAULT.min_delay),
        "max_delay": ("maxDelayTarget", DEFAULT.max_delay),
        "num_retries": ("numRetries", DEFAULT.num_retries),
        "num_no_delay": ("numNoDelayRetries", 0),
        "num_min_delay": ("numMinDelayRetries", 0),
        "num_max_delay": ("numMaxDelayRetries", 0),
    }
    values: dict[str, int] = {}
    for attr, (name, default) in fields.items():
        value = doc.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise _invalid(f"{name} must be a non-negative integer")
        values[attr] = value
    backoff = doc.get("backoffFunction", "linear")
    if backoff not in BACKOFF_FUNCTIONS:
        raise _invalid(f"backoffFunction must be one of {', '.join(BACKOFF_FUNCTIONS)}")
    policy = RetryPolicy(**values, backoff=backoff)
    if policy.min_delay < 1 or policy.min_delay > policy.max_delay:
        raise _invalid("minDelayTarget must be at least 1 and at most maxDelayTarget")
    if policy.num_retries > MAX_RETRIES:
        raise _invalid(f"numRetries must be at most {MAX_RETRIES}")
    if policy.num_no_delay + policy.num_min_delay + policy.num_max_delay > policy.num_retries:
        raise _invalid("the phases' retries must not add up to more than numRetries")
    total = sum(policy.delay(n) or 0.0 for n in range(1, policy.num_retries + 1))
    if total > MAX_TOTAL_SECONDS:
        raise _invalid(f"the retries must not take more than {MAX_TOTAL_SECONDS} seconds in all")
    return policy


def default_topic_policy() -> dict[str, Any]:
    """EffectiveDeliveryPolicy of a topic that sets none."""
    return {
        "http": {
            "defaultHealthyRetryPolicy": DEFAULT.as_json(),
            "disableSubscriptionOverrides": False,
            "defaultRequestPolicy": {"headerContentType": DEFAULT_CONTENT_TYPE},
        }
    }


def _load(text: str) -> dict[str, Any]:
    try:
        doc = json.loads(text)
    except ValueError:
        raise _invalid("it is not JSON") from None
    if not isinstance(doc, dict):
        raise _invalid("it is not a JSON object")
    return doc


def _invalid(why: str) -> InvalidParameter:
    return InvalidParameter(f"Invalid parameter: DeliveryPolicy: {why}")
