"""Spam and virus scanning of received mail, for receipt rules with ScanEnabled (reference §10.4).

Sesame does not judge spam or viruses itself: it asks the scanners the settings name, over their own
wire protocols, and turns their answers into SES's verdicts (PASS, FAIL, GRAY, PROCESSING_FAILED):

- SpamAssassin's spamd (``receiving.spamd``), SPAMC/1.5: ``CHECK`` with the message, answered
  ``Spam: True ; 15.0 / 5.0``;
- ClamAV's clamd (``receiving.clamd``): ``zINSTREAM`` with the message in length-prefixed chunks,
  answered ``stream: OK`` or ``stream: <signature> FOUND``;
- DNS blocklists (``receiving.dnsbl``) through Sesame's resolver: a client listed in one is spam.

No scanner configured for a kind: GRAY (undetermined), logged once per process. A configured scanner
that is down, slow (``receiving.scan_timeout``) or answers nonsense: PROCESSING_FAILED, which SES uses
when it could not complete a check; the message is still received, and the log says why.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import re
import struct
from dataclasses import dataclass
from typing import Literal

from sesame.config import ReceivingSettings
from sesame.resolver import InvalidName, Lookup, LookupTemporaryError

log = logging.getLogger(__name__)

Status = Literal["PASS", "FAIL", "GRAY", "PROCESSING_FAILED"]

SPAMC_VERSION = "SPAMC/1.5"  # spamd's protocol version with Content-length (SpamAssassin's spamd docs)
EX_OK = 0  # spamd's status code for success (sysexits.h)
CLAMD_CHUNK = 64 * 1024  # below clamd's default StreamMaxLength chunking; each chunk is length-prefixed
_SPAM_LINE = re.compile(r"^Spam:\s*(True|False|Yes|No)\s*;\s*(-?[\d.]+)\s*/\s*(-?[\d.]+)", re.I | re.M)


class ScannerError(Exception):
    """A scanner could not be asked or gave no usable answer."""


@dataclass(frozen=True)
class ScanResult:
    status: Status
    #: What the scanner said, for the log and the console ("score 15.0 / 5.0", "Eicar-Test-Signature").
    detail: str = ""


@dataclass(frozen=True)
class SpamReport:
    is_spam: bool
    score: float
    threshold: float


def _address(setting: str) -> tuple[str, int]:
    host, _, port = setting.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"a scanner address must be HOST:PORT, not {setting!r}")
    return host.strip("[]"), int(port)


async def spamd_check(host: str, port: int, message: bytes, *, timeout: float = 10.0) -> SpamReport:
    """Ask spamd whether ``message`` is spam (the CHECK command: a verdict, no rewritten message)."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(f"CHECK {SPAMC_VERSION}\r\nContent-length: {len(message)}\r\n\r\n".encode())
                writer.write(message)
                await writer.drain()
                writer.write_eof()  # spamd reads Content-length bytes; EOF tells a stricter peer too
                answer = await reader.read()
            finally:
                writer.close()
    except (OSError, TimeoutError) as exc:
        raise ScannerError(f"spamd at {host}:{port}: {exc or 'timed out'}") from exc
    head, _, _ = answer.partition(b"\r\n\r\n")
    status_line, _, fields = head.decode("latin-1").partition("\r\n")
    parts = status_line.split(None, 2)
    if len(parts) < 2 or not parts[0].startswith("SPAMD/") or parts[1] != str(EX_OK):
        raise ScannerError(f"spamd at {host}:{port} answered {status_line!r}")
    found = _SPAM_LINE.search(fields)
    if found is None:
        raise ScannerError(f"spamd at {host}:{port} gave no Spam: line")
    return SpamReport(found.group(1).lower() in ("true", "yes"), float(found.group(2)), float(found.group(3)))


async def clamd_instream(host: str, port: int, message: bytes, *, timeout: float = 10.0) -> str | None:
    """Stream ``message`` to clamd; the name of the signature it found, or None when clean."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(b"zINSTREAM\0")  # "z": commands and answers end in NUL (clamd(8))
                for start in range(0, len(message), CLAMD_CHUNK):
                    chunk = message[start : start + CLAMD_CHUNK]
                    writer.write(struct.pack(">I", len(chunk)) + chunk)  # length in network byte order
                    await writer.drain()
                writer.write(struct.pack(">I", 0))  # a zero-length chunk ends the stream
                await writer.drain()
                answer = await reader.readuntil(b"\0")
            finally:
                writer.close()
    except (OSError, TimeoutError, asyncio.IncompleteReadError, asyncio.LimitOverrunError) as exc:
        raise ScannerError(f"clamd at {host}:{port}: {exc or 'timed out'}") from exc
    text = answer.rstrip(b"\0").decode("utf-8", "replace").strip()
    if text.endswith(" FOUND"):
        return text.removeprefix("stream:").removesuffix(" FOUND").strip()
    if text.endswith("OK"):
        return None
    raise ScannerError(f"clamd at {host}:{port} answered {text!r}")  # "... ERROR", e.g. size limit


async def dnsbl_listed(lookup: Lookup, client_ip: str, zone: str) -> bool:
    """Whether the zone lists the client: an A record at its reversed address under the zone (RFC 5782 §2)."""
    ip = ipaddress.ip_address(client_ip)
    if ip.version == 4:
        reversed_ip = ".".join(reversed(str(ip).split(".")))
    else:
        reversed_ip = ".".join(reversed(ip.exploded.replace(":", "")))  # RFC 5782 §2.4: nibbles
    try:
        return bool(await lookup.ipv4(f"{reversed_ip}.{zone}"))
    except InvalidName:
        return False


@dataclass(frozen=True)
class Scanners:
    """The scanners a ScanEnabled rule's messages go through, from ``receiving`` settings."""

    spamd: tuple[str, int] | None = None
    clamd: tuple[str, int] | None = None
    dnsbl: tuple[str, ...] = ()
    timeout: float = 10.0

    @classmethod
    def from_settings(cls, settings: ReceivingSettings) -> Scanners:
        return cls(
            spamd=_address(settings.spamd) if settings.spamd else None,
            clamd=_address(settings.clamd) if settings.clamd else None,
            dnsbl=tuple(settings.dnsbl),
            timeout=settings.scan_timeout,
        )

    async def spam(self, lookup: Lookup, client_ip: str, message: bytes) -> ScanResult:
        if not self.spamd and not self.dnsbl:
            _once("spam", "no spam scanner configured (receiving.spamd, receiving.dnsbl): spam verdict GRAY")
            return ScanResult("GRAY", "no spam scanner configured")
        for zone in self.dnsbl:
            try:
                if await dnsbl_listed(lookup, client_ip, zone):
                    return ScanResult("FAIL", f"{client_ip} listed in {zone}")
            except LookupTemporaryError as exc:
                log.warning("DNS blocklist %s not answering: %s", zone, exc)
                if not self.spamd:
                    return ScanResult("PROCESSING_FAILED", str(exc))
        if not self.spamd:
            return ScanResult("PASS", "not listed in " + ", ".join(self.dnsbl))
        try:
            report = await spamd_check(*self.spamd, message, timeout=self.timeout)
        except ScannerError as exc:
            log.warning("spam scan failed: %s", exc)
            return ScanResult("PROCESSING_FAILED", str(exc))
        return ScanResult("FAIL" if report.is_spam else "PASS", f"score {report.score} / {report.threshold}")

    async def virus(self, message: bytes) -> ScanResult:
        if not self.clamd:
            _once("virus", "no virus scanner configured (receiving.clamd): virus verdict GRAY")
            return ScanResult("GRAY", "no virus scanner configured")
        try:
            found = await clamd_instream(*self.clamd, message, timeout=self.timeout)
        except ScannerError as exc:
            log.warning("virus scan failed: %s", exc)
            return ScanResult("PROCESSING_FAILED", str(exc))
        return ScanResult("FAIL", found) if found else ScanResult("PASS", "clean")

    async def virus_found(self, message: bytes) -> bool:
        """For outgoing mail (``delivery.virus_scan``): whether clamd found a virus."""
        result = await self.virus(message)
        if result.status == "FAIL":
            log.info("outgoing message refused: %s", result.detail)
        return result.status == "FAIL"


_said: set[str] = set()


def _once(kind: str, text: str) -> None:
    if kind not in _said:
        _said.add(kind)
        log.info(text)
