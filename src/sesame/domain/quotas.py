"""Sending quotas as SES reports them (GetSendQuota, GetAccount.SendQuota).

``-1`` means unlimited, as SES reports Max24HourSend for unlimited accounts; dev mode uses it for both
figures. SentLast24Hours counts recipients of accepted messages; nothing is sent before the sending
operations exist, so it is 0 until then.
"""

from __future__ import annotations

from typing import Any

from sesame.storage.models import AccountRegion


def send_quota(row: AccountRegion, sent_last_24_hours: float = 0.0) -> dict[str, Any]:
    return {
        "Max24HourSend": float(row.max_24_hour_send),
        "MaxSendRate": float(row.max_send_rate),
        "SentLast24Hours": float(sent_last_24_hours),
    }
