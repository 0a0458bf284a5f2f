"""Where a recipient domain's mail goes: the transport map, a smarthost, or its MX hosts in DNS.

MX records in preference order (equal preferences shuffled, RFC 5321 §5.1); no MX but an address record
means the domain itself is the host (implicit MX); a single ``MX 0 .`` is a null MX, a domain that
accepts no mail (RFC 7505), a permanent failure. A domain that does not exist is a temporary failure,
as SES retries it. Only this module asks the DNS.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sesame.config import DeliverySettings
from sesame.resolver import Lookup, LookupTemporaryError


@dataclass(frozen=True)
class Hop:
    host: str
    port: int


class NoRoute(Exception):
    """No host to deliver to. ``permanent``: null MX; otherwise retry (NXDOMAIN, DNS failures)."""

    def __init__(self, reason: str, *, permanent: bool, kind: str) -> None:
        super().__init__(reason)
        self.permanent = permanent
        self.kind = kind


def _parse_target(target: str, default_port: int) -> Hop:
    """ "host:port", "[host]:port" or "smtp:[host]:port" (the transport-map spelling)."""
    target = target.removeprefix("smtp:")
    host, _, port = target.rpartition(":") if target.count(":") == 1 or "]" in target else (target, "", "")
    if not host:
        host, port = target, ""
    return Hop(host.strip("[]"), int(port) if port else default_port)


class Router:
    def __init__(self, settings: DeliverySettings, lookup: Lookup) -> None:
        self.settings = settings
        self.lookup = lookup

    async def hops(self, domain: str) -> list[Hop]:
        domain = domain.lower().rstrip(".")
        if domain in self.settings.routes:
            return [_parse_target(self.settings.routes[domain], self.settings.mx_port)]
        if self.settings.smarthost:
            return [_parse_target(self.settings.smarthost, 25)]
        try:
            records = await self.lookup.mx(domain)
            if not records:
                if not await self.lookup.has_address(domain):
                    raise NoRoute(
                        f"{domain} has no MX and no address record", permanent=False, kind="no-route"
                    )
                return [Hop(domain, self.settings.mx_port)]  # implicit MX (RFC 5321 §5.1)
        except LookupTemporaryError as exc:
            raise NoRoute(str(exc), permanent=False, kind="dns-failure") from None
        if len(records) == 1 and records[0][1] in ("", "."):
            raise NoRoute(f"{domain} accepts no mail (null MX)", permanent=True, kind="null-mx")
        ordered: list[Hop] = []
        for preference in sorted({p for p, _ in records}):
            same = [h for p, h in records if p == preference and h not in ("", ".")]
            random.shuffle(same)  # spread load across equal-preference hosts
            ordered += [Hop(h, self.settings.mx_port) for h in same]
        return ordered
