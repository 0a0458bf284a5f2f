"""The HTTP request and response as the protocol layer sees them, free of any web framework."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class AwsRequest:
    method: str
    path: str  # percent-decoded path, e.g. "/v2/email/identities/a%40b" arrives as "/v2/email/identities/a@b"
    raw_path: str  # the path exactly as sent (still percent-encoded), needed for SigV4 and greedy labels
    query_string: str  # raw query string, without "?"
    headers: dict[str, str]  # lower-cased names
    body: bytes = b""
    client_ip: str = ""  # the caller's address (SES's ses:source-ip tag)


@dataclass(slots=True)
class AwsResponse:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
