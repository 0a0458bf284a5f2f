"""One SMTP transaction to one host (RFC 5321), with aiosmtplib: the only module that speaks SMTP out.

STARTTLS is opportunistic (certificates are not verified, as MTAs do between themselves) unless the
configuration set requires TLS: then a host without STARTTLS gets no message. Every reply is kept, so
the caller can turn each recipient's into a Delivery, a deferral or a bounce.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field

import aiosmtplib

from sesame.mta.routing import Hop


class ConnectFailed(Exception):
    """The host could not be reached or greeted: try the next host, then defer."""


class TlsUnavailable(Exception):
    """TLS was required and the host offers no STARTTLS (or it failed)."""


@dataclass(frozen=True)
class Reply:
    code: int
    text: str

    def line(self) -> str:
        return f"{self.code} {self.text}".strip()


@dataclass
class Transaction:
    """What the host answered: per recipient (RCPT, then DATA for the accepted ones)."""

    hop: Hop
    remote_ip: str
    tls: bool
    replies: dict[str, Reply] = field(default_factory=dict)


def _tls_context() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # opportunistic TLS encrypts; it does not authenticate (RFC 7435)
    return ctx


_TLS = _tls_context()


async def send(
    hop: Hop,
    *,
    helo: str,
    mail_from: str,
    recipients: list[str],
    data: bytes,
    require_tls: bool,
    connect_timeout: float,
    command_timeout: float,
) -> Transaction:
    smtp = aiosmtplib.SMTP(
        hostname=hop.host,
        port=hop.port,
        local_hostname=helo,
        timeout=connect_timeout,
        start_tls=False,
        use_tls=False,
    )
    try:
        await smtp.connect()
        await smtp.ehlo()
    except (TimeoutError, aiosmtplib.SMTPException, OSError) as exc:
        smtp.close()
        raise ConnectFailed(f"{hop.name or hop.host} [{hop.host}]:{hop.port}: {exc}") from exc
    peer = smtp.transport.get_extra_info("peername") if smtp.transport else None
    result = Transaction(hop, peer[0] if peer else hop.host, tls=False)
    try:
        if smtp.supports_extension("starttls"):
            try:
                await smtp.starttls(tls_context=_TLS, timeout=command_timeout)
                result.tls = True
            except (aiosmtplib.SMTPException, ssl.SSLError, OSError) as exc:
                if require_tls:
                    raise TlsUnavailable(f"STARTTLS failed at {hop.host}: {exc}") from exc
                raise ConnectFailed(f"STARTTLS failed at {hop.host}: {exc}") from exc
        if require_tls and not result.tls:
            raise TlsUnavailable(f"{hop.host} does not offer STARTTLS")
        options = []
        if smtp.supports_extension("size"):
            options.append(f"SIZE={len(data)}")
        if smtp.supports_extension("8bitmime") and any(b > 127 for b in data):
            options.append("BODY=8BITMIME")
        try:
            await smtp.mail(mail_from, options=options, timeout=command_timeout)
        except aiosmtplib.SMTPResponseException as exc:
            for rcpt in recipients:  # refused sender: the same answer for every recipient
                result.replies[rcpt] = Reply(exc.code, exc.message)
            return result
        accepted = []
        for rcpt in recipients:
            try:
                await smtp.rcpt(rcpt, timeout=command_timeout)
                accepted.append(rcpt)
            except aiosmtplib.SMTPResponseException as exc:
                result.replies[rcpt] = Reply(exc.code, exc.message)
        if accepted:
            try:
                answer = await smtp.data(data, timeout=command_timeout)
                reply = Reply(answer.code, answer.message)
            except aiosmtplib.SMTPResponseException as exc:
                reply = Reply(exc.code, exc.message)
            for rcpt in accepted:
                result.replies[rcpt] = reply
        try:
            await smtp.quit(timeout=command_timeout)
        except (TimeoutError, aiosmtplib.SMTPException, OSError):
            pass  # the message is already accepted or refused; a rude goodbye changes nothing
        return result
    except (TimeoutError, aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        # Lost mid-transaction: recipients without a final answer are retried.
        raise ConnectFailed(f"{hop.host}:{hop.port}: {exc}") from exc
    finally:
        smtp.close()
