"""Sesame's own SNS subset (issue 9, item 3): topics, subscriptions (http, https, email, email-json) with
SNS's confirmation flow, and Publish with signed, durable, retried deliveries.

    service.py   topics, subscriptions, publish (the interface other code calls: ``Sns``)
    delivery.py  the delivery loop: POST or mail each claimed delivery, retry per policy
    outbox.py    the delivery queue (sns_deliveries): leased claims, settling, pruning
    checks.py    what SNS refuses in attributes, subscriptions and messages
    policy.py    delivery (retry) policies
    messages.py  the JSON documents and email texts subscribers get
    signing.py   Sesame's signing key and certificate, SignatureVersion 1 and 2
    arns.py      topic and subscription ARNs, and who may act on them
    errors.py    the typed refusals (providers/sns.py maps them to SNS's error shapes)
"""

from sesame.integrations.sns.errors import (
    AuthorizationError,
    InvalidParameter,
    NotFound,
    SnsError,
    TopicNotFound,
)
from sesame.integrations.sns.service import Sns

__all__ = ["AuthorizationError", "InvalidParameter", "NotFound", "Sns", "SnsError", "TopicNotFound"]
