"""Which mailbox provider (ISP, in VDM's word) hosts a recipient: from its domain, else its MX hosts.

VDM's ISP dimension and GetMessageInsights name the recipient's provider ("Gmail", "Yahoo", …) or
"Other". The consumer domains of the large providers are known by name; a company domain hosted by
one of them (Google Workspace, Microsoft 365) is known by its MX hosts, which the VDM background pass
looks up (domain/vdm.py keeps what it found). The names are Sesame's; SES documents only "Gmail" and
"Yahoo" as examples.
"""

from __future__ import annotations

OTHER = "Other"

#: Consumer mail domains of the providers VDM reports by name.
_DOMAINS: dict[str, tuple[str, ...]] = {
    "Gmail": ("gmail.com", "googlemail.com"),
    "Hotmail": (
        "hotmail.com", "hotmail.co.uk", "hotmail.fr", "hotmail.de", "hotmail.it", "hotmail.es",
        "outlook.com", "outlook.fr", "outlook.de", "live.com", "live.co.uk", "live.fr", "msn.com",
        "passport.com",
    ),
    "Yahoo": (
        "yahoo.com", "yahoo.co.uk", "yahoo.fr", "yahoo.de", "yahoo.it", "yahoo.es", "yahoo.co.jp",
        "yahoo.com.br", "yahoo.ca", "yahoo.in", "ymail.com", "rocketmail.com",
    ),
    "AOL": ("aol.com", "aim.com", "verizon.net"),
    "Apple": ("icloud.com", "me.com", "mac.com"),
    "Comcast": ("comcast.net",),
    "GMX": ("gmx.com", "gmx.net", "gmx.de", "web.de", "mail.com"),
    "Yandex": ("yandex.ru", "yandex.com", "ya.ru"),
    "Mail.ru": ("mail.ru", "bk.ru", "inbox.ru", "list.ru"),
    "Zoho": ("zoho.com", "zohomail.com"),
    "Proton": ("proton.me", "protonmail.com", "pm.me"),
    "Fastmail": ("fastmail.com", "fastmail.fm"),
    "Orange": ("orange.fr", "wanadoo.fr"),
    "T-Online": ("t-online.de",),
}  # fmt: skip

#: Suffixes of MX host names, most specific first: a domain whose first MX ends so is hosted there.
MX_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("google.com", "Gmail"),
    ("googlemail.com", "Gmail"),
    ("outlook.com", "Hotmail"),  # Microsoft 365 (*.mail.protection.outlook.com) and Outlook.com
    ("hotmail.com", "Hotmail"),
    ("yahoodns.net", "Yahoo"),
    ("aol.com", "AOL"),
    ("icloud.com", "Apple"),
    ("comcast.net", "Comcast"),
    ("gmx.net", "GMX"),
    ("web.de", "GMX"),
    ("yandex.net", "Yandex"),
    ("yandex.ru", "Yandex"),
    ("mail.ru", "Mail.ru"),
    ("zoho.com", "Zoho"),
    ("zoho.eu", "Zoho"),
    ("protonmail.ch", "Proton"),
    ("messagingengine.com", "Fastmail"),
    ("orange.fr", "Orange"),
    ("t-online.de", "T-Online"),
)

#: Providers that send complaints back to the sender (feedback loops). DELIVERY_COMPLAINT counts only
#: deliveries to these, as SES counts only those to ISPs it has a feedback loop with; Gmail gives
#: senders no per-message complaints.
FEEDBACK_LOOPS = frozenset({"Hotmail", "Yahoo", "AOL", "Comcast", "Mail.ru", "Yandex", "Fastmail", "GMX"})

ISPS = tuple(sorted({*_DOMAINS, OTHER}))
_BY_DOMAIN = {domain: isp for isp, domains in _DOMAINS.items() for domain in domains}
_CANONICAL = {isp.lower(): isp for isp in ISPS}


def by_domain(domain: str) -> str | None:
    """The provider a domain is known to belong to by its name alone, or None."""
    return _BY_DOMAIN.get(domain.lower().rstrip("."))


def by_mx(hosts: list[str]) -> str:
    """The provider the MX hosts (most preferred first) belong to; OTHER when none is known."""
    for host in hosts:
        host = host.lower().rstrip(".")
        for suffix, isp in MX_SUFFIXES:
            if host == suffix or host.endswith("." + suffix):
                return isp
    return OTHER


def canonical(name: str) -> str:
    """A provider name as a query may spell it ("gmail") in the spelling Sesame records ("Gmail")."""
    return _CANONICAL.get(name.lower(), name)
