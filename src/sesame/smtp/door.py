"""What an SMTP session asks of Sesame, whichever door it came in by.

One session implementation (``session.py``) serves two doors: submission (SES's SMTP endpoint, where
clients authenticate and send) and the MX (where the world delivers mail that receipt rules take, and
where bounces and complaints come back). A door decides what the dialogue itself cannot: whom to let
in, which recipients to take, and what to do with the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reply:
    """An SMTP reply (RFC 5321 §4.2): a code and one line of text."""

    code: int
    text: str

    def line(self) -> bytes:
        return f"{self.code} {self.text}\r\n".encode()


OK = Reply(250, "Ok")
#: Nothing was committed; the client keeps the message and tries again (RFC 5321 §4.2.5).
TEMPORARY_FAILURE = Reply(451, "Temporary service failure")


@dataclass(slots=True)
class Envelope:
    """One mail transaction as far as it has come (RFC 5321 §3.3)."""

    peer: str  # the client's IP address
    helo: str
    tls: bool
    mail_from: str  # "" for the null reverse-path of a bounce (RFC 5321 §4.5.5)
    recipients: list[str] = field(default_factory=list)
    account: str | None = None  # who sends, on the submission door


class Door(Protocol):
    #: Whether clients must AUTH (or be trusted) before MAIL, and so whether AUTH is offered at all.
    requires_account: bool
    #: Recipients one transaction takes; past it RCPT gets 452 and the client sends the rest later.
    max_recipients: int

    def first_account(self, peer: str) -> str | None:
        """Who a session sends as before any AUTH (a trusted network, dev mode), if anyone."""

    async def authenticate(self, username: str, password: str) -> str | None:
        """The account these credentials belong to, or None."""

    async def connect(self, peer: str) -> Reply | None:
        """A refusal for a client not let in (IP filters), or None."""

    async def recipient(self, envelope: Envelope, address: str) -> Reply:
        """250 to take ``address`` into the transaction, or the refusal."""

    async def accept(self, envelope: Envelope, data: bytes) -> Reply:
        """Take the message: 250 only once it is committed."""
