"""Email addresses as SES takes them: every address a request gives must be an RFC 5321 Mailbox.

Every address ends up in a header or in the SMTP envelope (MAIL FROM / RCPT TO), which the delivery
engine writes as a command line, so a line feed in one would become a command of its own at the
receiving server. Sends, identities and (later) the SMTP servers all check addresses here. Addresses
are parsed once, with the same parser the message builder uses for header fields, so that the address
checked is the address shown.
"""

from __future__ import annotations

import re
from email.errors import NonASCIILocalPartDefect
from email.headerregistry import Address
from email.policy import default as _email_policy

from sesame.errors import SesameError

#: RFC 5321 §4.5.3.1.1-3: local part, domain, and path (the address with its angle brackets), in octets.
MAX_LOCAL_PART, MAX_DOMAIN, MAX_PATH = 64, 255, 256
ILLEGAL_ADDRESS = "Illegal address"  # SES's words (InvalidParameterValue), as for the cases below
MISSING_DOMAIN = "Missing final '@domain'"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: RFC 5321 §4.1.2 Local-part: a Dot-string of atext (RFC 5322 §3.2.3) or a Quoted-string of
#: qtextSMTP / quoted-pairSMTP, here without "<" and ">", which no real mailbox needs and which let an
#: address pose as the end of the path in logs and replies.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_LOCAL_PART = re.compile(rf'{_ATEXT}+(?:\.{_ATEXT}+)*|"(?:[ !#-;=?-\[\]-~]|\\[ -;=?-~])+"')
#: RFC 5321 §4.1.2 sub-domain (RFC 1035 §2.3.1 LDH label, 1-63 octets per RFC 1035 §2.3.4).
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
#: The usual address, a Dot-string at an LDH domain, needs no parsing (which costs ~50 µs an address).
_PLAIN = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*@(?:{_LABEL.pattern}\.)*{_LABEL.pattern}")
#: ... nor does one in angle brackets after a display name of plain words (``Jo Smith <jo@example.com>``).
_NAMED = re.compile(rf"[ \t]*(?:{_ATEXT}+[ \t]+)*(?:{_ATEXT}+[ \t]*)?<({_PLAIN.pattern})>[ \t]*")


class IllegalAddress(SesameError):
    """An address that is not an RFC 5321 Mailbox, with SES's words for it."""

    kind = "invalid"  # as a SendError of bad input: the send operations answer both alike

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _illegal(message: str = ILLEGAL_ADDRESS) -> IllegalAddress:
    return IllegalAddress(message)


def _address_list(value: str) -> list[Address]:
    """The mailboxes of an address-list field body (RFC 5322 §3.4), refused unless it parses cleanly."""
    if control := _CONTROL.search(value):
        domain = 0 <= value.rfind("@") < control.start()
        raise _illegal(f"{'Domain' if domain else 'Local address'} contains control or whitespace")
    if "@" not in value:
        raise _illegal(MISSING_DOMAIN)
    try:
        field_body = _email_policy.header_factory("To", value)
    except Exception:  # on some junk the stdlib parser raises AttributeError, IndexError, TypeError...
        raise _illegal() from None
    if any(isinstance(d, NonASCIILocalPartDefect) for d in field_body.defects):
        raise _illegal("Local address contains control or whitespace")  # SES has no SMTPUTF8: its words
    if field_body.defects or any(group.display_name is not None for group in field_body.groups):
        raise _illegal()  # anything the parser had to guess at, and groups: not a mailbox
    return list(field_body.addresses)


def _mailbox(address: Address) -> str:
    """``address`` as an RFC 5321 Mailbox; a non-ASCII domain becomes punycode (SES's rule)."""
    if not address.username or not address.domain:
        raise _illegal()
    local = address.addr_spec.rpartition("@")[0]  # quoted where the local part needs it
    if not _LOCAL_PART.fullmatch(local):
        raise _illegal()
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise _illegal() from None
    # RFC 5321 §4.1.2: one label is a Domain too (x@localhost); SES refuses it as unverified, not as
    # illegal (nodemailer's SES verify() counts on that). An address literal ([192.0.2.1]) fails here.
    if not all(_LABEL.fullmatch(x) for x in domain.split(".")):
        raise _illegal()
    return _within_limits(local, domain)


def is_domain(name: str) -> bool:
    """Whether ``name`` can be a domain identity: two or more LDH labels (IDN in punycode)."""
    try:
        ascii_name = name.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_name.split(".")
    return len(ascii_name) <= MAX_DOMAIN and len(labels) >= 2 and all(_LABEL.fullmatch(x) for x in labels)


def _within_limits(local: str, domain: str) -> str:
    mailbox = f"{local}@{domain}"
    if len(local) > MAX_LOCAL_PART or len(domain) > MAX_DOMAIN or len(mailbox) + 2 > MAX_PATH:
        raise _illegal()
    return mailbox


def _plain(value: str) -> str | None:
    """The address of ``a@b`` or ``Plain Words <a@b>`` without the parser, or None for any other form."""
    if _PLAIN.fullmatch(value):
        address = value
    elif named := _NAMED.fullmatch(value):
        address = named[1]
    else:
        return None
    local, _, domain = address.rpartition("@")
    return _within_limits(local, domain)


def bare_address(value: str) -> str:
    """The envelope address (RFC 5321 Mailbox) of ``a@b`` or ``Name <a@b>``; SES's error otherwise."""
    if plain := _plain(value):
        return plain
    found = _address_list(value)
    if len(found) != 1:
        raise _illegal()
    return _mailbox(found[0])


def mailboxes(value: str) -> list[str]:
    """Each mailbox of a mailbox-list (a From field body, RFC 5322 §3.6.2), as ``bare_address`` gives it."""
    if plain := _plain(value):  # the usual From, which the parser would take as it is
        return [plain]
    found = _address_list(value)
    if not found:
        raise _illegal()
    return [_mailbox(a) for a in found]
