"""What the MX asks of receipt rules and IP filters, as pure functions: does a rule's recipient condition
match an address, does an account's set of IP filters let a client in, does an account receive for an
address at all.

Recipient conditions, as SES's developer guide describes them:

- ``user@example.com``: that address, and its labelled forms ``user+label@example.com``;
- ``example.com``: every address at exactly that domain (not its subdomains);
- ``.example.com``: every address at any subdomain of example.com (not example.com itself).

Domains compare case-insensitively (RFC 5321 §2.4). Local parts do too: SES documents no case rule for
conditions, and a rule for ``Sales@`` that misses ``sales@`` would lose mail no sender means to send
elsewhere.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The separator of a labelled address (``user+label@``), as SES's guide spells the labelled form.
LABEL = "+"


def split_address(address: str) -> tuple[str, str]:
    """(local part, domain) of an envelope address, lower-cased, without a trailing root dot."""
    local, _, domain = address.strip().rpartition("@")
    return local.lower(), domain.lower().rstrip(".")


def recipient_matches(condition: str, address: str) -> bool:
    """Whether one of a rule's ``Recipients`` entries covers the envelope ``address``."""
    condition = condition.strip().lower().rstrip(".")
    local, domain = split_address(address)
    if not local or not domain or not condition:
        return False
    if "@" in condition:
        want_local, want_domain = split_address(condition)
        if want_domain != domain:
            return False
        # A condition with its own label matches that labelled address only.
        return local == want_local or local.split(LABEL, 1)[0] == want_local
    if condition.startswith("."):
        return domain.endswith(condition) and len(domain) > len(condition)
    return domain == condition


def rule_matches(rule: Mapping[str, Any], address: str) -> bool:
    """Whether an *enabled* rule applies to ``address``: a rule without Recipients applies to every
    address the account receives for (the caller checks that: ``receives_for``)."""
    if not rule.get("Enabled"):
        return False
    recipients = rule.get("Recipients") or []
    return not recipients or any(recipient_matches(c, address) for c in recipients)


def receives_for(domains: Iterable[str], addresses: Iterable[str], address: str) -> bool:
    """Whether an account receives mail for ``address``: its domain is one of the account's verified
    domains or a subdomain of one (as a verified domain covers its subdomains for sending), or the
    address itself is a verified email address identity."""
    local, domain = split_address(address)
    if f"{local}@{domain}" in {a.lower() for a in addresses}:
        return True
    for verified in domains:
        verified = verified.lower().rstrip(".")
        if domain == verified or domain.endswith("." + verified):
            return True
    return False


@dataclass(frozen=True)
class IpFilter:
    """One receipt IP filter, parsed: ``policy`` is ``Block`` or ``Allow``."""

    name: str
    policy: str
    network: IpNetwork

    @staticmethod
    def of(stored: Mapping[str, Any]) -> IpFilter:
        """From a ReceiptFilter in the API's spelling (``{"Name", "IpFilter": {"Policy", "Cidr"}}``)."""
        ip = stored["IpFilter"]
        return IpFilter(str(stored["Name"]), str(ip["Policy"]), parse_cidr(str(ip["Cidr"])))


def parse_cidr(cidr: str) -> IpNetwork:
    """A single address or a CIDR range, IPv4 or IPv6. Host bits may be set (SES's own example is
    ``10.0.0.1/24``): the range is the network they belong to. ValueError if it is neither."""
    return ipaddress.ip_network(cidr.strip(), strict=False)


def client_address(ip: str) -> IpAddress:
    """The client's address as filters see it: an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``, what
    a dual-stack socket reports for an IPv4 client) is the IPv4 address it carries."""
    address = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def filter_allows(filters: Iterable[IpFilter | Mapping[str, Any]], ip: str) -> bool:
    """Whether one account's IP filters let mail from ``ip`` in: an Allow filter that covers it wins
    over any Block filter (SES's guide: block a whole range, then allow trusted addresses in it); a
    Block filter that covers it refuses; an address no filter covers is let in."""
    address = client_address(ip)
    blocked = False
    for f in filters:
        parsed = f if isinstance(f, IpFilter) else IpFilter.of(f)
        if address.version != parsed.network.version or address not in parsed.network:
            continue
        if parsed.policy == "Allow":
            return True
        blocked = True
    return not blocked
