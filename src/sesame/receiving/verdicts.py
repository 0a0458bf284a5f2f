"""The verdicts SES gives every received message (reference §10.4), and the header fields it adds.

    verdicts = await evaluate(lookup, client_ip=ip, helo=helo, mail_from=sender, message=raw, scan=scanners)
    verdicts.receipt()        # {"spamVerdict": {"status": "PASS"}, …, "dmarcVerdict": …, "dmarcPolicy": …}
    received_headers(verdicts, hostname=…, message_id=…, recipient=…, authserv_id=…) + raw  # the stored copy

How each verdict is reached, and how SES's recorded notifications and headers read (they decide where
the reference's table is silent or differs; "observed" below means real SES notifications):

- SPF (RFC 7208, ``spf.py``) of the MAIL FROM domain, or of the HELO name for a null reverse-path:
  pass → PASS, fail → FAIL, softfail, neutral and none → GRAY (softfail and neutral observed GRAY),
  permerror (observed) and temperror → PROCESSING_FAILED.
- DKIM (RFC 6376, verified by dkimpy with keys fetched through Sesame's resolver): the verdict is
  about signatures by the From domain (same organizational domain): one verifies → PASS, one fails →
  FAIL, only DNS failures or malformed ones (or a malformed header section) → PROCESSING_FAILED;
  unsigned, or signed only by other domains → GRAY (observed: a valid third-party signature alone
  gave GRAY). Every signature is listed in Authentication-Results.
- DMARC (RFC 7489, ``dmarc.py``): aligned SPF or DKIM pass → PASS; otherwise FAIL with ``dmarcPolicy``
  set to the domain's policy (none, quarantine or reject); no DMARC record → GRAY. The reference
  transcribes GRAY for "p=none", but SES's own notifications show FAIL with ``"dmarcPolicy": "none"``
  (and SES documents ``none`` as a value of dmarcPolicy, which appears only when DMARC fails).
- Spam and virus (``scanners.py``) only for receipt rules with ScanEnabled: otherwise SES reports
  ``{"status": "DISABLED"}`` (observed in real notifications; the API docs list no such value) and adds
  no X-SES-Spam-Verdict / X-SES-Virus-Verdict fields.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import email.utils
import ipaddress
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import dkim
import dkim.util

from sesame.receiving import dmarc
from sesame.receiving.dmarc import Disposition
from sesame.receiving.scanners import Scanners, ScanResult, Status
from sesame.receiving.spf import Result as SpfResultName
from sesame.receiving.spf import SpfResult, check_mail_from
from sesame.resolver import InvalidName, Lookup, LookupTemporaryError

log = logging.getLogger(__name__)

DISABLED = "DISABLED"  # the spam and virus status SES reports when the rule does not scan (observed)
MAX_LINE = 78  # RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, CRLF excluded

#: RFC 7208 result → SES spfVerdict status (see the module docstring for the evidence).
SPF_STATUS: dict[SpfResultName, Status] = {
    "pass": "PASS",
    "fail": "FAIL",
    "softfail": "GRAY",
    "neutral": "GRAY",
    "none": "GRAY",
    "permerror": "PROCESSING_FAILED",
    "temperror": "PROCESSING_FAILED",
}

DkimResultName = Literal["pass", "fail", "temperror", "permerror"]  # RFC 8601 §2.7.1
DmarcResultName = Literal["pass", "fail", "none", "temperror", "permerror"]  # RFC 7489 §11.2


@dataclass(frozen=True)
class DkimSignature:
    """One DKIM-Signature field's outcome."""

    domain: str  # d=
    identity: str  # i=, or "@" + d= when the signature has none (RFC 6376 §3.5)
    result: DkimResultName


@dataclass(frozen=True)
class Verdicts:
    spf: Status
    dkim: Status
    dmarc: Status
    #: None when the receipt rule does not scan (SES then reports "DISABLED").
    spam: Status | None = None
    virus: Status | None = None
    #: The From domain's DMARC policy, only when DMARC fails.
    dmarc_policy: Disposition | None = None
    # What the header fields say besides the statuses: the SMTP session, and each check's detail.
    client_ip: str = ""
    helo: str = ""
    mail_from: str = ""
    spf_result: SpfResultName = "none"
    #: The domain whose SPF record decided (the MAIL FROM domain, or a redirect= target).
    spf_domain: str = ""
    dkim_signatures: tuple[DkimSignature, ...] = ()
    dmarc_result: DmarcResultName = "none"
    #: The RFC 5322 From domain DMARC was evaluated for ("" when the message has none usable).
    from_domain: str = ""
    spam_detail: str = ""
    virus_detail: str = ""

    def receipt(self) -> dict[str, Any]:
        """The verdict members of a notification's ``receipt`` object, spelled as SES spells them."""
        members: dict[str, Any] = {
            "spamVerdict": {"status": self.spam or DISABLED},
            "virusVerdict": {"status": self.virus or DISABLED},
            "spfVerdict": {"status": self.spf},
            "dkimVerdict": {"status": self.dkim},
            "dmarcVerdict": {"status": self.dmarc},
        }
        if self.dmarc == "FAIL" and self.dmarc_policy is not None:
            members["dmarcPolicy"] = self.dmarc_policy
        return members


async def evaluate(
    lookup: Lookup, *, client_ip: str, helo: str, mail_from: str, message: bytes, scan: Scanners | None
) -> Verdicts:
    """Every verdict for one received message; ``scan`` is None when its receipt rule does not scan."""
    spam: ScanResult | None = None
    virus: ScanResult | None = None
    spf_task = check_mail_from(lookup, client_ip=client_ip, mail_from=mail_from, helo=helo)
    if scan is not None:
        spf, signatures, spam, virus = await asyncio.gather(
            spf_task,
            verify_dkim(lookup, message),
            scan.spam(lookup, client_ip, message),
            scan.virus(message),
        )
    else:
        spf, signatures = await asyncio.gather(spf_task, verify_dkim(lookup, message))
    if spf.result in ("permerror", "temperror"):
        log.info("SPF %s for %s from %s: %s", spf.result, spf.domain, client_ip, spf.reason)
    from_domain = author_domain(message)
    spf_identity = mail_from.rpartition("@")[2] if mail_from else helo  # RFC 7489 §3.1.2
    dmarc_status, policy, dmarc_result = await _dmarc(lookup, from_domain, spf, spf_identity, signatures)
    return Verdicts(
        spf=SPF_STATUS[spf.result],
        dkim=_dkim_status(signatures, from_domain),
        dmarc=dmarc_status,
        spam=spam.status if spam else None,
        virus=virus.status if virus else None,
        dmarc_policy=policy,
        client_ip=client_ip,
        helo=helo,
        mail_from=mail_from,
        spf_result=spf.result,
        spf_domain=spf.domain,
        dkim_signatures=signatures,
        dmarc_result=dmarc_result,
        from_domain=from_domain,
        spam_detail=_detail(spam),
        virus_detail=_detail(virus),
    )


def _detail(result: ScanResult | None) -> str:
    return result.detail if result else ""


def author_domain(message: bytes) -> str:
    """The RFC 5322 From domain DMARC is about (RFC 7489 §6.6.1); "" without exactly one domain."""
    head = message.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    parsed = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(head)
    fields = [str(value) for value in parsed.get_all("From", [])]
    domains = {address.rpartition("@")[2].lower() for _, address in email.utils.getaddresses(fields)}
    domains.discard("")
    return domains.pop() if len(fields) == 1 and len(domains) == 1 else ""


async def verify_dkim(lookup: Lookup, message: bytes) -> tuple[DkimSignature, ...]:
    """Each DKIM-Signature's outcome. dkimpy verifies synchronously, so the keys are fetched first through
    Sesame's resolver and handed to it from memory, and the verification runs on a thread."""
    try:
        headers = dkim.DKIM(message).headers
    except dkim.MessageFormatError as exc:  # a header section that is not RFC 5322
        log.info("DKIM not checked, the message is malformed: %s", exc)
        return (DkimSignature("", "", "permerror"),)
    fields = [value for name, value in headers if name.lower() == b"dkim-signature"]
    if not fields:
        return ()
    parsed: list[tuple[str, str, str] | None] = []  # (d, identity, key name) per signature
    for value in fields:
        try:
            tags = dkim.util.parse_tag_value(value)
            domain = tags[b"d"].decode("ascii").strip().lower()
            selector = tags[b"s"].decode("ascii").strip()
            identity = tags.get(b"i", b"@" + domain.encode()).decode("ascii", "replace").strip()
        except (dkim.util.InvalidTagValueList, KeyError, UnicodeDecodeError):
            parsed.append(None)
            continue
        parsed.append((domain, identity, f"{selector}._domainkey.{domain}".lower()))
    names = sorted({entry[2] for entry in parsed if entry is not None})
    keys: dict[str, str | None] = {}
    temporary: set[str] = set()
    for name, found in zip(
        names, await asyncio.gather(*(_key_record(lookup, n) for n in names)), strict=True
    ):
        if isinstance(found, LookupTemporaryError):
            temporary.add(name)
        else:
            keys[name] = found

    def answer(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        found = keys.get(text.rstrip(".").lower())
        return found.encode() if isinstance(found, str) else None

    def verify_all() -> tuple[DkimSignature, ...]:
        outcomes: list[DkimSignature] = []
        for index, entry in enumerate(parsed):
            if entry is None:
                outcomes.append(DkimSignature("", "", "permerror"))
                continue
            domain, identity, name = entry
            if name in temporary:
                outcomes.append(DkimSignature(domain, identity, "temperror"))
                continue
            verifier = dkim.DKIM(message, logger=log)
            try:  # the signature's own tags: required ones present, sane values (RFC 6376 §6.1.1)
                prepared = verifier.verify_headerprep(index)
            except dkim.DKIMException as exc:
                log.info("DKIM signature by %s malformed: %s", domain, exc)
                outcomes.append(DkimSignature(domain, identity, "permerror"))
                continue
            try:  # the key, the body hash and the signature (RFC 6376 §6.1.2-6.1.3)
                ok = bool(prepared) and verifier.verify_sig(*prepared[:2], prepared[2][index], answer)
            except dkim.ValidationError as exc:  # e.g. the body hash does not match: the signature fails
                log.info("DKIM signature by %s does not verify: %s", domain, exc)
                ok = False
            except dkim.DKIMException as exc:  # an unusable key or algorithm
                log.info("DKIM signature by %s not verifiable: %s", domain, exc)
                outcomes.append(DkimSignature(domain, identity, "permerror"))
                continue
            outcomes.append(DkimSignature(domain, identity, "pass" if ok else "fail"))
        return tuple(outcomes)

    return await asyncio.to_thread(verify_all)


async def _key_record(lookup: Lookup, name: str) -> str | LookupTemporaryError | None:
    try:
        records = await lookup.txt(name)
    except LookupTemporaryError as exc:
        return exc
    except InvalidName:
        return None
    return records[0] if records else None


def _dkim_status(signatures: tuple[DkimSignature, ...], from_domain: str) -> Status:
    own = [s for s in signatures if from_domain and s.domain and dmarc.aligned("r", s.domain, from_domain)]
    if not own:  # a signature too malformed to name its domain might have been the From domain's
        return "PROCESSING_FAILED" if any(not s.domain for s in signatures) else "GRAY"
    if any(s.result == "pass" for s in own):
        return "PASS"
    if any(s.result == "fail" for s in own):
        return "FAIL"
    return "PROCESSING_FAILED"


async def _dmarc(
    lookup: Lookup,
    from_domain: str,
    spf: SpfResult,
    spf_identity: str,
    signatures: tuple[DkimSignature, ...],
) -> tuple[Status, Disposition | None, DmarcResultName]:
    if not from_domain:
        return "PROCESSING_FAILED", None, "permerror"  # no single From domain to hold to a policy
    try:
        policy = await dmarc.discover(lookup, from_domain)
    except dmarc.DmarcTemporaryError as exc:
        log.info("DMARC policy of %s not available: %s", from_domain, exc)
        return "PROCESSING_FAILED", None, "temperror"
    if policy is None:
        return "GRAY", None, "none"
    spf_aligned = spf.result == "pass" and dmarc.aligned(policy.aspf, spf_identity, from_domain)
    dkim_aligned = any(
        s.result == "pass" and dmarc.aligned(policy.adkim, s.domain, from_domain) for s in signatures
    )
    if spf_aligned or dkim_aligned:
        return "PASS", None, "pass"
    return "FAIL", policy.disposition, "fail"


# --- the header fields of the stored copy ---------------------------------------------------------


def spf_comment(v: Verdicts) -> str:
    """SES's words for an SPF result (observed in its Received-SPF fields; temperror's are Sesame's)."""
    ip, domain = v.client_ip, v.spf_domain
    return {
        "pass": f"domain of {domain} designates {ip} as permitted sender",
        "fail": f"domain of {domain} does not designate {ip} as permitted sender",
        "softfail": f"transitioning domain of {domain} does not designate {ip} as permitted sender",
        "neutral": f"{ip} is neither permitted nor denied by domain of {domain}",
        "none": f"{ip} is neither permitted nor denied by domain of {domain}",
        "permerror": "Error in processing SPF Record",
        "temperror": f"Temporary error looking up the SPF record of {domain}",
    }[v.spf_result]


_TOKEN = re.compile(r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]+")  # atext plus "." and "@" (RFC 5322 §3.2.3)


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)  # no CR or LF ends a field early


def _value(text: str) -> str:
    """A session value (HELO name, sender) as a token, or quoted: the client chose it, and a ";" or "("
    in it must not read as another result to whoever parses the field (RFC 8601 §2.2 pvalue)."""
    text = _printable(text)
    if _TOKEN.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _session(v: Verdicts) -> str:
    return f"client-ip={v.client_ip}; envelope-from={_value(v.mail_from)}; helo={_value(v.helo)};"


def received_spf(v: Verdicts) -> str:
    """The Received-SPF field's value (RFC 7208 §9.1) as SES writes it."""
    return f"{v.spf_result} (spfCheck: {spf_comment(v)}) {_session(v)}"


def authentication_results(authserv_id: str, v: Verdicts) -> str:
    """The Authentication-Results field's value (RFC 8601) in SES's shape: ``amazonses.com; spf=pass
    (spfCheck: …) client-ip=…; envelope-from=…; helo=…; dkim=pass header.i=@example.com;
    dmarc=pass header.from=example.com;``. One dkim= per signature (none when unsigned)."""
    parts = [f"{authserv_id};", f"spf={v.spf_result} (spfCheck: {spf_comment(v)}) {_session(v)}"]
    parts += [f"dkim={s.result} header.i={_value(s.identity)};" for s in v.dkim_signatures if s.domain]
    if v.from_domain:
        parts.append(f"dmarc={v.dmarc_result} header.from={v.from_domain};")
    return " ".join(parts)


def received_headers(
    v: Verdicts,
    *,
    hostname: str,
    message_id: str,
    recipient: str | None,
    authserv_id: str,
    rdns: str | None = None,
    when: datetime | None = None,
) -> bytes:
    """The header fields SES puts in front of a received message, in its order: Return-Path, Received,
    X-SES-Spam-Verdict and X-SES-Virus-Verdict (only when scanned), Received-SPF, Authentication-Results.
    CRLF line ends, folded at whitespace to 78 columns (RFC 5322 §2.2.3)."""
    when = (when or datetime.now(UTC)).astimezone(UTC)
    address = ipaddress.ip_address(v.client_ip)
    literal = f"[{address}]" if address.version == 4 else f"[IPv6:{address}]"  # RFC 5321 §4.1.3
    tcp_info = f"{rdns} {literal}" if rdns else literal
    received = f"from {_value(v.helo or 'unknown')} ({tcp_info}) by {hostname} with SMTP id {message_id}"
    if recipient:
        received += f" for {_value(recipient)}"  # RFC 5321 §4.4: only ever one recipient named
    received += f"; {email.utils.format_datetime(when)} (UTC)"
    fields = [("Return-Path", f"<{_printable(v.mail_from)}>"), ("Received", received)]
    if v.spam is not None:
        fields.append(("X-SES-Spam-Verdict", v.spam))
    if v.virus is not None:
        fields.append(("X-SES-Virus-Verdict", v.virus))
    fields.append(("Received-SPF", received_spf(v)))
    fields.append(("Authentication-Results", authentication_results(authserv_id, v)))
    return b"".join(fold(name, value) for name, value in fields)


def fold(name: str, value: str) -> bytes:
    """``Name: value`` CRLF, folded before a space wherever a line would pass 78 characters."""
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > MAX_LINE and line.strip() and line != f"{name}:":
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")
