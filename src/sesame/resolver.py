"""DNS lookups through the resolver the settings name (``dns.nameservers``), with dnspython.

Answers are reduced to what Sesame decides on: the TXT strings at a name, the MX hosts of a domain.
A missing name or record type is an empty answer; a server that fails or times out is a
``LookupTemporaryError``, so callers can tell "not published" from "could not ask"; a name the DNS cannot
hold is an ``InvalidName``.
"""

from __future__ import annotations

from typing import Any

import dns.asyncresolver
import dns.exception
import dns.name
import dns.resolver
import dns.reversename

from sesame.config import DnsSettings


class LookupTemporaryError(Exception):
    """The DNS could not answer now (timeout, SERVFAIL, no server reachable)."""


class InvalidName(ValueError):
    """Not a name the DNS can hold (RFC 1035 §2.3.4: labels of 1 to 63 octets, 255 octets in all): it
    never will be, so there is nothing to ask."""


def _name(text: str) -> dns.name.Name:
    try:
        return dns.name.from_text(text)
    except dns.exception.DNSException as exc:  # EmptyLabel, LabelTooLong, NameTooLong, BadEscape, IDNA
        raise InvalidName(f"{text} is not a valid domain name: {exc}") from None


def make_resolver(settings: DnsSettings, *, cache: bool = False) -> dns.asyncresolver.Resolver:
    if not settings.nameservers:
        resolver = dns.asyncresolver.Resolver()
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = []
        ports: set[int] = set()
        for entry in settings.nameservers:
            host, _, port = entry.rpartition(":") if entry.count(":") == 1 else (entry, "", "")
            resolver.nameservers.append(host or entry)
            ports.add(int(port) if port else 53)
        # dnspython has one port for all plain nameservers; mixed ports are a configuration error.
        if len(ports) > 1:
            raise ValueError("dns.nameservers must all use the same port")
        resolver.port = ports.pop()
    resolver.lifetime = settings.timeout
    # Verification must see a record the moment it is published: no cache, unless asked for (received
    # mail's SPF and DMARC look-ups, where the same senders come again and again, within records' TTLs).
    resolver.cache = dns.resolver.Cache() if cache else None
    return resolver


class Lookup:
    def __init__(self, settings: DnsSettings, *, cache: bool = False) -> None:
        self.resolver = make_resolver(settings, cache=cache)

    async def _answer(self, name: str, rdtype: str) -> list[Any]:
        try:
            answer = await self.resolver.resolve(_name(name), rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return []
        except (dns.exception.Timeout, dns.resolver.NoNameservers, dns.resolver.LifetimeTimeout) as exc:
            raise LookupTemporaryError(f"{rdtype} {name}: {exc}") from exc
        return list(answer)

    async def txt(self, name: str) -> list[str]:
        """Each TXT record's strings joined, as DKIM and SES read them (RFC 6376 §3.6.2.2)."""
        return [b"".join(r.strings).decode("utf-8", "replace") for r in await self._answer(name, "TXT")]

    async def has_address(self, name: str) -> bool:
        """Whether ``name`` has an A or AAAA record (for the implicit MX of RFC 5321 §5.1)."""
        return bool(await self._answer(name, "A")) or bool(await self._answer(name, "AAAA"))

    async def addresses(self, name: str) -> list[str]:
        found = [r.address for r in await self._answer(name, "A")]
        return found + [r.address for r in await self._answer(name, "AAAA")]

    async def ipv4(self, name: str) -> list[str]:
        """The A records alone: SPF asks for the client's own address family (RFC 7208 §5.3)."""
        return [r.address for r in await self._answer(name, "A")]

    async def ipv6(self, name: str) -> list[str]:
        return [r.address for r in await self._answer(name, "AAAA")]

    async def ptr(self, address: str) -> list[str]:
        """The names an address points back to (its in-addr.arpa / ip6.arpa PTR records)."""
        try:
            name = dns.reversename.from_address(address).to_text()
        except (dns.exception.SyntaxError, ValueError):
            raise InvalidName(f"{address} is not an IP address") from None
        return [r.target.to_text().rstrip(".") for r in await self._answer(name, "PTR")]

    async def mx(self, domain: str) -> list[tuple[int, str]]:
        return sorted(
            (r.preference, r.exchange.to_text().rstrip(".")) for r in await self._answer(domain, "MX")
        )
