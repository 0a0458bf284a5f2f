"""Sender Policy Framework (RFC 7208): ``check_host()`` for a received message, through Sesame's resolver.

    result = await check_mail_from(lookup, client_ip="192.0.2.1", mail_from="a@example.com", helo="mx.test")
    result.result  # "pass" | "fail" | "softfail" | "neutral" | "none" | "permerror" | "temperror"
    result.domain  # the domain whose record decided (after any redirect=), as SES names it in its comment

Why our own evaluator: every query must go to the resolver the settings name (``dns.nameservers``; the
tests run their own DNS server), and no maintained SPF library takes one from outside: pyspf (last
release 2020) and spf-engine query DNS themselves, synchronously; emailsec is an alpha on aiodns.
So this is a compact, complete RFC 7208 evaluation on ``sesame.resolver.Lookup``: the mechanisms all,
include, a, mx, ptr, ip4, ip6 and exists, qualifiers, redirect=, macros (§7), the limit of 10
DNS-querying terms and of 2 void lookups (§4.6.4). ``exp=`` is parsed but not fetched: it only words
a rejection, and SES's own comment never quotes it.
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Literal

from sesame.resolver import InvalidName, Lookup, LookupTemporaryError

Result = Literal["pass", "fail", "softfail", "neutral", "none", "permerror", "temperror"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_DNS_TERMS = 10  # RFC 7208 §4.6.4: include, a, mx, ptr, exists and redirect together
MAX_VOID_LOOKUPS = 2  # RFC 7208 §4.6.4: answers with no records (NOERROR/0 or NXDOMAIN)
MAX_NAMES = 10  # RFC 7208 §4.6.4: MX hosts per "mx", PTR names per "ptr"
MAX_DOMAIN = 253  # RFC 7208 §7.3: longer expansions lose their leftmost labels

#: RFC 7208 §4.6.2: the qualifier's result when a mechanism matches ("+" when none is written).
QUALIFIERS: dict[str, Result] = {"+": "pass", "-": "fail", "~": "softfail", "?": "neutral"}

_MECHANISM = re.compile(r"([+\-~?]?)(all|include|a|mx|ptr|ip4|ip6|exists)(?=$|[:/])(.*)", re.I | re.S)
_MODIFIER = re.compile(r"([a-z][a-z0-9\-_.]*)=(.*)", re.I | re.S)  # RFC 7208 §12: name "=" macro-string
_CIDR = re.compile(r"(?:/(\d+))?(?://(\d+))?$")  # dual-cidr-length at a term's end (§5.6)
_MACRO = re.compile(r"%(?:\{([a-z])(\d*)(r?)([.\-+,/_=]*)\}|([%_\-]))", re.I)


@dataclass(frozen=True)
class SpfResult:
    result: Result
    #: The domain whose record gave the result: the MAIL FROM domain, or a redirect= target.
    domain: str
    #: Why a permerror or temperror, for the log.
    reason: str = ""


class _PermError(Exception):
    pass


class _TempError(Exception):
    pass


@dataclass(frozen=True)
class _Mechanism:
    qualifier: str
    name: str
    argument: str  # the domain-spec or address, without its ":" and CIDR lengths
    cidr4: int | None
    cidr6: int | None


async def check_mail_from(lookup: Lookup, *, client_ip: str, mail_from: str, helo: str) -> SpfResult:
    """The MAIL FROM identity (RFC 7208 §2.4), or postmaster@HELO when the reverse-path is null."""
    if mail_from:
        return await check_host(lookup, client_ip, mail_from.rpartition("@")[2], mail_from, helo=helo)
    return await check_host(lookup, client_ip, helo, f"postmaster@{helo}", helo=helo)


async def check_host(
    lookup: Lookup, client_ip: str, domain: str, sender: str, *, helo: str = ""
) -> SpfResult:
    """RFC 7208 §4: what ``domain``'s policy says of mail from ``client_ip`` with identity ``sender``."""
    ip = ipaddress.ip_address(client_ip)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # an IPv4 client on a dual-stack socket is checked as IPv4 (§5)
    domain = domain.rstrip(".").lower()
    if not _valid_domain(domain):
        return SpfResult("none", domain)  # §4.3: not a name that could have a record
    evaluation = _Evaluation(lookup, ip, sender, helo)
    try:
        result, decided = await evaluation.check(domain)
    except _PermError as exc:
        return SpfResult("permerror", domain, str(exc))
    except _TempError as exc:
        return SpfResult("temperror", domain, str(exc))
    return SpfResult(result, decided)


def _valid_domain(domain: str) -> bool:
    labels = domain.split(".")
    if len(labels) < 2 or any(not label or len(label) > 63 for label in labels):
        return False
    try:
        ipaddress.ip_address(domain)
    except ValueError:
        return True
    return False  # an address literal (a HELO of "[192.0.2.1]" or a bare address) names no policy


class _Evaluation:
    """One check_host() call with its nested include/redirect evaluations sharing the §4.6.4 limits."""

    def __init__(self, lookup: Lookup, ip: IpAddress, sender: str, helo: str) -> None:
        self.lookup = lookup
        self.ip = ip
        self.sender = sender
        self.helo = helo
        self.dns_terms = 0
        self.void_lookups = 0

    async def check(self, domain: str) -> tuple[Result, str]:
        terms = await self._record(domain)
        if terms is None:
            return "none", domain
        mechanisms, redirect = _parse(terms)
        for mechanism in mechanisms:
            if await self._matches(mechanism, domain):
                return QUALIFIERS[mechanism.qualifier or "+"], domain
        if redirect is not None:  # §6.1: only when no mechanism matched (a record with "all" never gets here)
            self._count()
            target = self._expand(redirect, domain)
            result, decided = await self.check(target)
            if result == "none":
                raise _PermError(f"redirect={target} has no SPF record (RFC 7208 §6.1)")
            return result, decided
        return "neutral", domain  # §4.7: nothing matched, no redirect

    async def _record(self, domain: str) -> list[str] | None:
        """§4.4-4.5: the one TXT record starting "v=spf1", split into its terms; None when there is none."""
        try:
            texts = await self.lookup.txt(domain)
        except LookupTemporaryError as exc:
            raise _TempError(str(exc)) from exc
        except InvalidName:
            return None
        records = [t for t in texts if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]
        if len(records) > 1:
            raise _PermError(f"{domain} publishes {len(records)} SPF records (RFC 7208 §4.5)")
        return records[0].split()[1:] if records else None

    def _count(self) -> None:
        self.dns_terms += 1
        if self.dns_terms > MAX_DNS_TERMS:
            raise _PermError(f"more than {MAX_DNS_TERMS} DNS-querying terms (RFC 7208 §4.6.4)")

    async def _query(self, answer: Awaitable[list[str]]) -> list[str]:
        try:
            found = await answer
        except LookupTemporaryError as exc:
            raise _TempError(str(exc)) from exc
        except InvalidName:
            found = []
        if not found:
            self.void_lookups += 1
            if self.void_lookups > MAX_VOID_LOOKUPS:
                raise _PermError(f"more than {MAX_VOID_LOOKUPS} void DNS lookups (RFC 7208 §4.6.4)")
        return found

    async def _addresses(self, name: str) -> list[str]:
        """The target's addresses of the client's family (§5.3): A for IPv4 clients, AAAA for IPv6."""
        return await self._query((self.lookup.ipv4 if self.ip.version == 4 else self.lookup.ipv6)(name))

    def _in(self, addresses: list[str], mechanism: _Mechanism) -> bool:
        bits = mechanism.cidr4 if self.ip.version == 4 else mechanism.cidr6
        for address in addresses:
            try:
                written = f"{address}/{bits}" if bits is not None else address
                network = ipaddress.ip_network(written, strict=False)
            except ValueError:
                continue
            if self.ip in network:
                return True
        return False

    async def _matches(self, m: _Mechanism, domain: str) -> bool:
        name = m.name
        if name == "all":
            return True
        if name in ("ip4", "ip6"):
            if (name == "ip4") != (self.ip.version == 4):
                return False
            return self.ip in ipaddress.ip_network(m.argument, strict=False)
        self._count()  # every other mechanism queries the DNS (§4.6.4)
        target = self._expand(m.argument, domain) if m.argument else domain
        if name == "include":  # §5.2
            result, _ = await self.check(target)
            if result == "none":
                raise _PermError(f"include:{target} has no SPF record (RFC 7208 §5.2)")
            return result == "pass"
        if name == "a":  # §5.3
            return self._in(await self._addresses(target), m)
        if name == "mx":  # §5.4
            hosts = [host for host in await self._query(self._mx_hosts(target)) if host]  # "" is a null MX
            if len(hosts) > MAX_NAMES:
                raise _PermError(f"{target} has more than {MAX_NAMES} MX hosts (RFC 7208 §4.6.4)")
            for host in hosts:
                try:
                    if self._in(await self._family(host), m):
                        return True
                except LookupTemporaryError as exc:
                    raise _TempError(str(exc)) from exc
            return False
        if name == "ptr":  # §5.5: a reverse name at or under the target that points back to the client
            for host in (await self._query(self.lookup.ptr(str(self.ip))))[:MAX_NAMES]:
                host = host.lower()
                if not (host == target or host.endswith("." + target)):
                    continue
                try:
                    if any(ipaddress.ip_address(a) == self.ip for a in await self._family(host)):
                        return True
                except LookupTemporaryError:
                    continue  # §5.5: a failing forward lookup only skips that name
            return False
        # exists (§5.7): an A record at the expanded name, whatever the client's family
        return bool(await self._query(self.lookup.ipv4(target)))

    async def _mx_hosts(self, target: str) -> list[str]:
        return [host for _, host in await self.lookup.mx(target)]

    async def _family(self, host: str) -> list[str]:
        """A host's addresses of the client's family, not counted as void lookups (only the mx/ptr
        query itself is: §4.6.4 limits those names to ten instead)."""
        try:
            return await (self.lookup.ipv4 if self.ip.version == 4 else self.lookup.ipv6)(host)
        except InvalidName:
            return []

    def _expand(self, spec: str, domain: str) -> str:
        """§7: a domain-spec's macros expanded for this message, then cut to at most 253 characters."""
        out: list[str] = []
        position = 0
        for match in _MACRO.finditer(spec):
            literal = spec[position : match.start()]
            if "%" in literal:
                raise _PermError(f"bad macro in {spec!r} (RFC 7208 §7.1)")
            out.append(literal)
            position = match.end()
            letter, digits, reverse, delimiters, escape = match.groups()
            if escape:
                out.append({"%": "%", "_": " ", "-": "%20"}[escape])
                continue
            value = self._macro_value(letter.lower(), domain, spec)
            parts = re.split("[" + re.escape(delimiters or ".") + "]", value)
            if reverse:
                parts.reverse()
            if digits:
                if int(digits) == 0:
                    raise _PermError(f"bad macro in {spec!r} (RFC 7208 §7.1)")
                parts = parts[-int(digits) :]
            value = ".".join(parts)
            out.append(urllib.parse.quote(value, safe="") if letter.isupper() else value)
        if "%" in spec[position:]:
            raise _PermError(f"bad macro in {spec!r} (RFC 7208 §7.1)")
        out.append(spec[position:])
        expanded = "".join(out).rstrip(".").lower()
        while len(expanded) > MAX_DOMAIN and "." in expanded:
            expanded = expanded.split(".", 1)[1]
        return expanded

    def _macro_value(self, letter: str, domain: str, spec: str) -> str:
        local, _, sender_domain = self.sender.rpartition("@")
        if letter == "s":
            return self.sender
        if letter == "l":
            return local or "postmaster"
        if letter == "o":
            return sender_domain
        if letter == "d":
            return domain
        if letter == "i":
            if self.ip.version == 4:
                return str(self.ip)
            return ".".join(self.ip.exploded.replace(":", ""))  # §7.3: dot-separated nibbles
        if letter == "p":
            return "unknown"  # §7.3: SHOULD NOT be used; "unknown" is the value when not validated
        if letter == "v":
            return "in-addr" if self.ip.version == 4 else "ip6"
        if letter == "h":
            return self.helo
        raise _PermError(f"macro %{{{letter}}} not allowed in {spec!r} (RFC 7208 §7.2)")


def _parse(terms: list[str]) -> tuple[list[_Mechanism], str | None]:
    """§4.6.1: a record's mechanisms in order, and its redirect= target; a syntax error is a permerror."""
    mechanisms: list[_Mechanism] = []
    modifiers: dict[str, str] = {}
    for term in terms:
        mechanism = _MECHANISM.fullmatch(term)
        if mechanism:
            mechanisms.append(_mechanism(term, *mechanism.groups()))
            continue
        modifier = _MODIFIER.fullmatch(term)
        if modifier is None:
            raise _PermError(f"unknown SPF term {term!r} (RFC 7208 §4.6.1)")
        name = modifier.group(1).lower()
        if name in modifiers and name in ("redirect", "exp"):
            raise _PermError(f"{name}= given twice (RFC 7208 §6)")
        modifiers[name] = modifier.group(2)
    redirect = modifiers.get("redirect")
    if redirect is not None and not redirect:
        raise _PermError("redirect= names no domain (RFC 7208 §6.1)")
    return mechanisms, redirect


def _mechanism(term: str, qualifier: str, name: str, rest: str) -> _Mechanism:
    name = name.lower()
    cidr = _CIDR.search(rest)
    assert cidr is not None  # the pattern matches at least the empty end
    argument = rest[: cidr.start()]
    cidr4 = int(cidr.group(1)) if cidr.group(1) is not None else None
    cidr6 = int(cidr.group(2)) if cidr.group(2) is not None else None
    if argument and not argument.startswith(":") or argument == ":":
        raise _PermError(f"bad SPF term {term!r} (RFC 7208 §5)")
    argument = argument[1:]
    if name == "all":
        ok = not argument and cidr4 is None and cidr6 is None
    elif name in ("include", "exists"):
        ok = bool(argument) and cidr4 is None and cidr6 is None
    elif name == "ptr":
        ok = cidr4 is None and cidr6 is None
    elif name in ("ip4", "ip6"):
        ok = _address_network(name, argument, cidr4, cidr6)
        if ok:  # ip6's single length is written "/n" too, so it was read as the first one
            argument = f"{argument}/{cidr4}" if cidr4 is not None else argument
            cidr4 = cidr6 = None
    else:  # a, mx
        ok = (cidr4 is None or cidr4 <= 32) and (cidr6 is None or cidr6 <= 128)
    if not ok:
        raise _PermError(f"bad SPF term {term!r} (RFC 7208 §5)")
    return _Mechanism(qualifier, name, argument, cidr4, cidr6)


def _address_network(name: str, address: str, cidr4: int | None, cidr6: int | None) -> bool:
    """ip4:ADDRESS[/0-32] or ip6:ADDRESS[/0-128] (§5.6); ip6's length is the single "/n" form."""
    if cidr6 is not None:
        return False
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    if name == "ip4":
        return parsed.version == 4 and (cidr4 is None or cidr4 <= 32)
    return parsed.version == 6 and (cidr4 is None or cidr4 <= 128)
