"""Where a recipient domain's mail goes: the transport map, a smarthost, or its MX hosts in DNS.

MX records in preference order (equal preferences shuffled, RFC 5321 §5.1); no MX but an address record
means the domain itself is the host (implicit MX); a single ``MX 0 .`` is a null MX, a domain that
accepts no mail (RFC 7505), a permanent failure, and so is a domain that is no valid DNS name (too long,
an empty label). A domain that does not exist is a temporary failure, as SES retries it. Only this
module asks the DNS.
"""

from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass

from sesame.config import DeliverySettings
from sesame.resolver import InvalidName, Lookup, LookupTemporaryError


@dataclass(frozen=True)
class Hop:
    host: str  # an address: names are resolved here, through the configured resolver
    port: int
    name: str = ""  # the MX (or route) host name it came from


class NoRoute(Exception):
    """No host to deliver to. ``permanent``: null MX, invalid name; otherwise retry (NXDOMAIN, DNS
    failures)."""

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
        """The addresses to try, in order. Raises NoRoute."""
        domain = domain.lower().rstrip(".")
        try:
            if domain in self.settings.routes:
                return await self._resolve(
                    [_parse_target(self.settings.routes[domain], self.settings.mx_port)]
                )
            if self.settings.smarthost:
                return await self._resolve([_parse_target(self.settings.smarthost, 25)])
            try:
                records = await self.lookup.mx(domain)
                if not records and not await self.lookup.has_address(domain):
                    raise NoRoute(
                        f"{domain} has no MX and no address record", permanent=False, kind="no-route"
                    )
            except InvalidName as exc:
                raise NoRoute(str(exc), permanent=True, kind="invalid-domain") from None
            records = records or [(0, domain)]  # implicit MX (RFC 5321 §5.1)
            if len(records) == 1 and records[0][1] in ("", "."):
                raise NoRoute(f"{domain} accepts no mail (null MX)", permanent=True, kind="null-mx")
            names: list[Hop] = []
            for preference in sorted({p for p, _ in records}):
                same = [h for p, h in records if p == preference and h not in ("", ".")]
                random.shuffle(same)  # spread load across equal-preference hosts
                names += [Hop(h, self.settings.mx_port, h) for h in same]
            return await self._resolve(names)
        except LookupTemporaryError as exc:
            raise NoRoute(str(exc), permanent=False, kind="dns-failure") from None

    async def _resolve(self, hops: list[Hop]) -> list[Hop]:
        """Host names to addresses, through the configured resolver (never the system's)."""
        out: list[Hop] = []
        for hop in hops:
            if _is_address(hop.host):
                out.append(Hop(hop.host, hop.port, hop.name or hop.host))
            else:
                out += [Hop(a, hop.port, hop.host) for a in await self.lookup.addresses(hop.host)]
        if not out:
            names = ", ".join(h.host for h in hops)
            raise NoRoute(f"no address for {names}", permanent=False, kind="no-route")
        return out


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
