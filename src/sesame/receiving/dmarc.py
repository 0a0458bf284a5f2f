"""DMARC (RFC 7489) for received mail: the From domain's policy, and whether SPF or DKIM aligns with it.

    policy = await discover(lookup, "news.example.com")   # _dmarc.news.example.com, else _dmarc.example.com
    aligned(policy.aspf, "bounces.example.com", "news.example.com")   # relaxed: same organizational domain

Organizational domains come from the Public Suffix List that the ``publicsuffixlist`` package ships
(offline, no download at run time; RFC 7489 §3.2); a name under no listed suffix (``example.test``)
falls to the list's default rule "*", so its organizational domain is its last two labels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

from publicsuffixlist import PublicSuffixList

from sesame.resolver import InvalidName, Lookup, LookupTemporaryError

Disposition = Literal["none", "quarantine", "reject"]
DISPOSITIONS: tuple[Disposition, ...] = ("none", "quarantine", "reject")  # RFC 7489 §6.3 "p"


@functools.cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # parses the bundled list once (a few tens of milliseconds)


def organizational_domain(domain: str) -> str:
    """RFC 7489 §3.2: the registered domain (one label below the public suffix)."""
    domain = domain.rstrip(".").lower()
    return _suffixes().privatesuffix(domain) or domain


def aligned(mode: str, identifier: str, from_domain: str) -> bool:
    """§3.1: strict ("s") wants the same name; relaxed ("r") the same organizational domain."""
    identifier, from_domain = identifier.rstrip(".").lower(), from_domain.rstrip(".").lower()
    if not identifier or not from_domain:
        return False
    if mode == "s":
        return identifier == from_domain
    return organizational_domain(identifier) == organizational_domain(from_domain)


@dataclass(frozen=True)
class Policy:
    """A DMARC record as it applies to one From domain."""

    #: The disposition for this From domain: "sp" when the record is the organizational domain's and
    #: the From domain is below it (§6.3), "p" otherwise.
    disposition: Disposition
    adkim: str = "r"
    aspf: str = "r"
    #: Where the record was found (``_dmarc.`` + this).
    domain: str = ""


class DmarcTemporaryError(Exception):
    """The policy could not be looked up now."""


async def discover(lookup: Lookup, from_domain: str) -> Policy | None:
    """§6.6.3: the From domain's record, else its organizational domain's; None when there is none."""
    from_domain = from_domain.rstrip(".").lower()
    tags = await _record(lookup, from_domain)
    where = from_domain
    if tags is None:
        org = organizational_domain(from_domain)
        if org != from_domain:
            tags = await _record(lookup, org)
            where = org
    if tags is None:
        return None
    p = tags.get("p", "").lower()
    sp = tags.get("sp", "").lower()
    if p not in DISPOSITIONS or (sp and sp not in DISPOSITIONS):
        # §6.6.3 step 6: act as p=none when the record names somewhere to report to, else apply nothing.
        if "rua" not in tags:
            return None
        p, sp = "none", ""
    disposition = sp if (where != from_domain and sp) else p
    return Policy(
        disposition=disposition,  # type: ignore[arg-type]  # checked against DISPOSITIONS above
        adkim="s" if tags.get("adkim", "r").lower() == "s" else "r",
        aspf="s" if tags.get("aspf", "r").lower() == "s" else "r",
        domain=where,
    )


async def _record(lookup: Lookup, domain: str) -> dict[str, str] | None:
    try:
        texts = await lookup.txt(f"_dmarc.{domain}")
    except LookupTemporaryError as exc:
        raise DmarcTemporaryError(str(exc)) from exc
    except InvalidName:
        return None
    # §6.6.3 step 5: records that start with "v=DMARC1"; none, or more than one, is no policy.
    records = [t for t in texts if t.replace(" ", "").startswith("v=DMARC1")]
    if len(records) != 1:
        return None
    tags: dict[str, str] = {}
    for part in records[0].split(";"):  # §6.4: tag-value pairs separated by ";"
        name, equals, value = part.partition("=")
        if equals:
            tags.setdefault(name.strip().lower(), value.strip())
    return tags
