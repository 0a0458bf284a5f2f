"""What a provider method knows about the call it serves."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    account_id: str
    region: str
    request_id: str
    service: str
    operation: str
    access_key_id: str | None = None
    source_ip: str = ""

    def arn(self, resource: str) -> str:
        return f"arn:aws:ses:{self.region}:{self.account_id}:{resource}"
