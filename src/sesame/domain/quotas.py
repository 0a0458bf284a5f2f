"""Sending quotas as SES reports them (GetSendQuota, GetAccount.SendQuota).

``-1`` means unlimited, as SES reports Max24HourSend for unlimited accounts; dev mode stores it for both
figures. SES documents -1 for Max24HourSend only: MaxSendRate is always a positive rate, and clients
that pace themselves by it (django-ses's auto-throttle, any ``1 / rate``) break on -1. An unlimited rate
is therefore answered as ``UNLIMITED_SEND_RATE``, more than any one process can accept.
SentLast24Hours counts recipients of accepted messages.
"""

from __future__ import annotations

from typing import Any

from sesame.storage.models import AccountRegion

UNLIMITED_SEND_RATE = 1_000_000.0


def send_quota(row: AccountRegion, sent_last_24_hours: float = 0.0) -> dict[str, Any]:
    return {
        "Max24HourSend": float(row.max_24_hour_send),
        "MaxSendRate": float(row.max_send_rate) if row.max_send_rate >= 0 else UNLIMITED_SEND_RATE,
        "SentLast24Hours": float(sent_last_24_hours),
    }
