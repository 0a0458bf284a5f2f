"""What the dev inbox checks on a captured message: the DKIM signature delivery would give it, its links,
and releasing it to a real SMTP server.

Dev mode captures mail before the delivery engine would sign it, so the DKIM check does what the engine
does (mta/engine.py ``_signed``: the From domain's verified identity, its Easy DKIM or BYODKIM key) and
then verifies the result with dkimpy, an implementation independent of ours, answering its DNS query
with the identity's own public key record: a pass means a receiver that finds that record would pass it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from sesame.mail import dkim
from sesame.mta.routing import Hop
from sesame.mta.smtp_client import ConnectFailed, ConnectionCache, TlsUnavailable

SUCCESS = "SUCCESS"
MAX_LINKS = 50
LINK_TIMEOUT = 5.0
LINK_CONCURRENCY = 10


@dataclass(frozen=True)
class DkimResult:
    result: str  # "pass", "fail" or "not signed"
    reason: str
    selector: str = ""
    domain: str = ""


def dkim_check(raw: bytes, identity: Any, private_key_pem: str | None) -> DkimResult:
    """Sign ``raw`` as delivery would for ``identity`` (the From domain's Identity row, or None), then
    verify the signature against the identity's public key record. Blocking (RSA): run it on a thread."""
    if identity is None:
        return DkimResult(
            "not signed", "No verified identity for the From domain: delivery would not sign it."
        )
    if identity.verification_status != SUCCESS:
        return DkimResult("not signed", f"The identity {identity.identity} is not verified.")
    if not identity.dkim_signing_enabled:
        return DkimResult("not signed", f"DKIM signing is turned off for {identity.identity}.")
    if identity.dkim_status != SUCCESS or not identity.dkim_tokens or not private_key_pem:
        return DkimResult(
            "not signed", f"{identity.identity} has no DKIM key in use (status {identity.dkim_status})."
        )
    selector, domain = identity.dkim_tokens[0], identity.identity
    try:
        key = dkim.SigningKey(selector=selector, domain=domain, private_key_pem=private_key_pem)
        signed = dkim.sign(raw, key)
    except dkim.DkimError as exc:
        return DkimResult("not signed", f"Signing fails: {exc}", selector, domain)
    record = dkim.txt_record(private_key_pem).encode("ascii")
    wanted = f"{selector}._domainkey.{domain}.".lower().encode("ascii")

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name.lower().rstrip(b".") + b"." == wanted else None

    import dkim as dkimpy  # dkimpy: the independent verifier

    wire = signed.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    verifier = dkimpy.DKIM(wire)
    try:
        ok = verifier.verify(dnsfunc=dnsfunc)
    except dkimpy.DKIMException as exc:
        return DkimResult("fail", f"dkimpy: {exc}", selector, domain)
    if ok:
        return DkimResult(
            "pass", f"Signed with s={selector}, d={domain}; dkimpy verified it.", selector, domain
        )
    return DkimResult("fail", "dkimpy did not verify the signature.", selector, domain)


@dataclass(frozen=True)
class LinkStatus:
    url: str
    status: int | None  # None: no answer
    error: str = ""

    @property
    def broken(self) -> bool:
        return self.status is None or self.status >= 400


async def check_links(urls: list[str]) -> list[LinkStatus]:
    """HEAD each http(s) link (GET where HEAD is refused with 405), at most MAX_LINKS, a few at a time,
    each with a short timeout; redirects followed."""
    gate = asyncio.Semaphore(LINK_CONCURRENCY)

    async def one(client: httpx.AsyncClient, url: str) -> LinkStatus:
        async with gate:
            try:
                response = await client.head(url)
                if response.status_code in (405, 501):
                    response = await client.get(url)
                return LinkStatus(url, response.status_code)
            except (httpx.HTTPError, ValueError) as exc:
                return LinkStatus(url, None, str(exc) or type(exc).__name__)

    timeout = httpx.Timeout(LINK_TIMEOUT)
    async with httpx.AsyncClient(timeout=timeout, follow_redirects=True, verify=True) as client:
        return list(await asyncio.gather(*(one(client, u) for u in urls[:MAX_LINKS])))


def parse_hostport(text: str) -> tuple[str, int] | None:
    host, sep, port = text.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        return None
    return host, int(port)


async def release(raw: bytes, mail_from: str, recipients: list[str], host: str, port: int) -> list[str]:
    """Send the stored bytes, as they are, to ``host:port`` over SMTP (the delivery engine's client,
    STARTTLS when offered); the recipients that server refused, with its reply."""
    cache = ConnectionCache(helo="sesame.dev", connect_timeout=10.0, command_timeout=30.0, idle_seconds=0.0)
    try:
        tx = await cache.send(Hop(host, port, host), mail_from=mail_from, recipients=recipients, data=raw,
                              require_tls=False)  # fmt: skip
    except (ConnectFailed, TlsUnavailable, OSError) as exc:
        return [str(exc) or type(exc).__name__]
    finally:
        await cache.close()
    return [f"{rcpt}: {reply}" for rcpt, reply in tx.replies.items() if not 200 <= reply.code < 300]
