"""GetEmailAddressInsights (reference §7.5): how likely an address is to take mail, without sending any.

Each evaluation is a confidence that its statement holds (HIGH: it surely does, LOW: it surely does
not). Sesame checks the syntax as sending does, the domain's MX records (or, with none, an address
record: RFC 5321 §5.1's implicit MX) through the configured resolver, a bundled list of disposable
mail domains and of role local parts, and whether the local part looks like random typing. It never
connects to the recipient's server: ``MailboxExists`` is LOW only when Sesame itself saw the address
hard-bounce (it is on the account's suppression list for BOUNCE), else MEDIUM (not known).
"""

from __future__ import annotations

import re

from sesame.domain.addresses import IllegalAddress, bare_address
from sesame.domain.suppression import Suppression
from sesame.resolver import InvalidName, Lookup, LookupTemporaryError

LOW, MEDIUM, HIGH = "LOW", "MEDIUM", "HIGH"

#: Local parts that name a function, not a person (RFC 2142's mailbox names and common ones).
ROLES = frozenset(
    """abuse admin administrator billing compliance contact customerservice devnull dns enquiries
    ftp help helpdesk hostmaster info inquiries jobs list list-request mail mailer-daemon marketing
    media news newsletter no-reply noc noreply null office orders postmaster press privacy root
    sales security service spam support sysadmin team usenet uucp webmaster www""".split()
)

#: Well-known disposable (temporary) mailbox services. A small list: a deployment that needs more
#: screens addresses before they reach Sesame.
DISPOSABLE = frozenset(
    """10minutemail.com 10minutemail.net 20minutemail.com 33mail.com anonbox.net burnermail.io
    discard.email dispostable.com emailondeck.com fakeinbox.com fakemail.net getairmail.com
    getnada.com guerrillamail.biz guerrillamail.com guerrillamail.de guerrillamail.info
    guerrillamail.net guerrillamail.org guerrillamailblock.com harakirimail.com incognitomail.org
    inboxbear.com jetable.org mailcatch.com maildrop.cc mailinator.com mailinator.net mailnesia.com
    mailsac.com mintemail.com moakt.com mohmal.com mytemp.email nada.email sharklasers.com
    spam4.me spambox.us spamgourmet.com temp-mail.io temp-mail.org tempail.com tempmail.com
    tempmail.net tempmailo.com tempr.email throwawaymail.com trashmail.com trashmail.de
    trashmail.net yopmail.com yopmail.fr yopmail.net""".split()
)

_VOWELS = set("aeiouy")
_CONSONANT_RUN = re.compile(r"[bcdfghjklmnpqrstvwxz]{6,}")


def is_random(local: str) -> bool:
    """Whether a local part looks like keys struck at random ("xkqzvbnw", "a8f3k2j9x7"): six consonants
    in a row, six or more letters without a vowel, or digits and letters alternating again and again.
    Names with long consonant clusters ("schwartz", "strengths") are not."""
    text = local.lower().split("+", 1)[0]
    letters = [c for c in text if c.isalpha()]
    if _CONSONANT_RUN.search(text):
        return True
    if len(letters) >= 6 and not any(c in _VOWELS for c in letters):
        return True
    digits = sum(1 for c in text if c.isdigit())
    switches = sum(1 for a, b in zip(text, text[1:], strict=False) if a.isdigit() != b.isdigit())
    return digits >= 3 and switches >= 4


class AddressInsights:
    def __init__(self, lookup: Lookup, suppression: Suppression) -> None:
        self.lookup = lookup
        self.suppression = suppression

    async def evaluate(self, account_id: str, region: str, address: str) -> dict[str, object]:
        evaluations = {
            "HasValidSyntax": LOW,
            "HasValidDnsRecords": LOW,
            "MailboxExists": LOW,
            "IsRoleAddress": LOW,
            "IsDisposable": LOW,
            "IsRandomInput": LOW,
        }
        try:
            mailbox = bare_address(address.strip())
        except IllegalAddress:
            return _verdict(LOW, evaluations)
        if mailbox != address.strip():  # a display name or angle brackets: not an address alone
            return _verdict(LOW, evaluations)
        local, _, domain = mailbox.rpartition("@")
        domain = domain.lower()
        evaluations["HasValidSyntax"] = HIGH if "." in domain else MEDIUM
        evaluations["HasValidDnsRecords"] = await self._dns(domain)
        evaluations["IsRoleAddress"] = HIGH if local.lower().split("+", 1)[0] in ROLES else LOW
        evaluations["IsDisposable"] = HIGH if _disposable(domain) else LOW
        evaluations["IsRandomInput"] = HIGH if is_random(local) else LOW
        entry = await self.suppression.get(account_id, region, mailbox)
        bounced = entry is not None and entry.reason == "BOUNCE"
        evaluations["MailboxExists"] = LOW if bounced or evaluations["HasValidDnsRecords"] == LOW else MEDIUM
        if LOW in (
            evaluations["HasValidSyntax"],
            evaluations["HasValidDnsRecords"],
            evaluations["MailboxExists"],
        ):
            overall = LOW
        elif evaluations["IsDisposable"] == HIGH:
            overall = LOW
        elif MEDIUM in (evaluations["HasValidSyntax"], evaluations["HasValidDnsRecords"]) or HIGH in (
            evaluations["IsRoleAddress"],
            evaluations["IsRandomInput"],
        ):
            overall = MEDIUM
        else:
            overall = HIGH
        return _verdict(overall, evaluations)

    async def _dns(self, domain: str) -> str:
        """HIGH: MX hosts; MEDIUM: no MX but an address (implicit MX), or the DNS could not answer now;
        LOW: nothing, or a null MX (RFC 7505: the domain takes no mail)."""
        try:
            hosts = await self.lookup.mx(domain)
            if hosts:
                return LOW if all(h in ("", ".") for _, h in hosts) else HIGH
            return MEDIUM if await self.lookup.has_address(domain) else LOW
        except LookupTemporaryError:
            return MEDIUM
        except InvalidName:
            return LOW


def _disposable(domain: str) -> bool:
    labels = domain.split(".")
    return any(".".join(labels[i:]) in DISPOSABLE for i in range(len(labels) - 1))


def _verdict(overall: str, evaluations: dict[str, str]) -> dict[str, object]:
    return {
        "MailboxValidation": {
            "IsValid": {"ConfidenceVerdict": overall},
            "Evaluations": {name: {"ConfidenceVerdict": v} for name, v in evaluations.items()},
        }
    }
