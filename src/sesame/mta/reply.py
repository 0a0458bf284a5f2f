"""An SMTP reply as delivery reads it: the reply code (RFC 5321 §4.2), the enhanced status code (RFC
3463; RFC 2034 puts it at the start of the text) and the text.

One type for every reply the engine weighs: the ones our SMTP client reads from remote servers
(``smtp_client``), the ones a DSN's per-recipient fields amount to (``bounce.dsn_to_reply``), and the
ones the mailbox simulator gives. The bounce classifier, the Delivery's ``smtpResponse`` and the
``diagnosticCode`` of Bounce and DeliveryDelay records all read it as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# An enhanced status code (RFC 3463 §2: class "." subject "." detail, 1-3 digits each).
_ENHANCED = re.compile(r"([245])\.(\d{1,3})\.(\d{1,3})")
_ENHANCED_AT_START = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})(?=\s|$|[;,:.)])")


def enhanced_code(value: str) -> str | None:
    """``value`` as an enhanced status code without leading zeros ("5.1.01" is "5.1.1"), or None."""
    m = _ENHANCED.fullmatch(value.strip())
    return f"{m[1]}.{int(m[2])}.{int(m[3])}" if m else None


@dataclass(frozen=True, slots=True)
class SmtpReply:
    """A reply to one command or recipient: ``code`` 550, ``enhanced`` "5.1.1" and ``text``; the lines of
    a multiline reply are joined by newlines.

    ``enhanced`` None is read from the start of ``text`` when it is there ("5.1.1 user unknown"), so a
    reply read off the wire is ``SmtpReply(code, None, text)``.
    """

    code: int
    enhanced: str | None
    text: str

    def __post_init__(self) -> None:
        if self.enhanced is not None:
            normal = enhanced_code(self.enhanced)
            if normal is None:
                raise ValueError(f"not an enhanced status code: {self.enhanced!r}")
            object.__setattr__(self, "enhanced", normal)
        else:
            m = _ENHANCED_AT_START.match(self.text)
            if m:
                object.__setattr__(self, "enhanced", enhanced_code(m[1]))

    @property
    def subject_detail(self) -> str | None:
        """ "1.1" of "5.1.1": what the code says, whatever its class."""
        return self.enhanced.split(".", 1)[1] if self.enhanced else None

    def line(self) -> str:
        """The reply as the server wrote it, "250 2.0.0 Ok: queued as 4Xq"; an enhanced code given apart
        from the text goes before it."""
        text = self.text
        if self.enhanced and not _ENHANCED_AT_START.match(text):
            text = f"{self.enhanced} {text}"
        return f"{self.code} {text}".strip()

    def diagnostic(self) -> str:
        """The ``diagnosticCode`` SES shows for it: "smtp; 550 5.1.1 user unknown" [SES Developer Guide
        examples], on one line."""
        text = " ".join(self.text.split())  # a multiline reply on one line
        if self.enhanced and not text.startswith(self.enhanced):
            text = f"{self.enhanced} {text}".strip()
        return f"smtp; {self.code} {text}".strip()
