"""The RFC 5322 / MIME messages SES sends: built from Simple content, or checked and cleaned when raw.

Raw messages (v1 SendRawEmail, v2 Raw content, SMTP DATA) are edited as bytes, never re-serialized, so
what the client wrote (8-bit or binary bodies, its folding, a DKIM signature) reaches the recipient.
Built messages use ``email.message.MIMEPart`` under the SMTP policy, but their header fields are encoded
(RFC 2047) and folded (RFC 5322 §2.2.3) here: the policy's refolder drops the blank between encoded
words when it wraps a long non-ASCII subject (seen on 3.11), re-encodes encoded words the client wrote,
and knows no charset but UTF-8. SES has no SMTPUTF8 (reference §1.2): every header is 7-bit.
"""

from __future__ import annotations

import base64
import functools
import mimetypes
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes
from email.headerregistry import Address
from email.message import MIMEPart
from email.policy import SMTP, Policy, compat32
from email.policy import default as _DEFAULT
from email.utils import format_datetime
from typing import Any

from sesame.errors import SesameError

#: Attachment extensions SES refuses, the complete list of 90 [DG: mime-types] (unchanged on the live
#: page in 2025), lower case and without the dot.
UNSUPPORTED_EXTENSIONS = frozenset(
    "ade adp app asp bas bat cer chm cmd com cpl crt csh der exe fxp gadget hlp hta inf ins isp its js jse"
    " ksh lib lnk mad maf mag mam maq mar mas mat mau mav maw mda mdb mde mdt mdw mdz msc msh msh1 msh2"
    " mshxml msh1xml msh2xml msi msp mst ops pcd pif plg prf prg reg scf scr sct shb shs sys ps1 ps1xml ps2"
    " ps2xml psc1 psc2 tmp url vb vbe vbs vps vsmacros vss vst vsw vxd ws wsc wsf wsh xnk".split()
)

#: Fields that may appear at most once in a header section [DG: header-fields], lower-case name to SES's
#: spelling. List-Unsubscribe-Post is on the live page only; acceptLanguage is SES's own oddity.
SINGLE_OCCURRENCE_HEADERS = {
    name.lower(): name
    for name in (
        "Accept-Language acceptLanguage Archived-At Auto-Submitted Bounces-to Comments Content-Alternative"
        " Content-Base Content-Class Content-Description Content-Disposition Content-Duration Content-ID"
        " Content-Language Content-Length Content-Location Content-MD5 Content-Transfer-Encoding"
        " Content-Type Date Delivered-To Disposition-Notification-Options Disposition-Notification-To"
        " DKIM-Signature DomainKey-Signature Errors-To From Importance In-Reply-To Keywords List-Archive"
        " List-Help List-Id List-Owner List-Post List-Subscribe List-Unsubscribe List-Unsubscribe-Post"
        " Message-Context Message-ID MIME-Version Organization Original-From Original-Message-ID"
        " Original-Recipient Original-Subject Precedence Priority References Reply-To Return-Path"
        " Return-Receipt-To Sender Solicitation Sensitivity Subject Thread-Index Thread-Topic User-Agent"
        " VBR-Info"
    ).split()
}
# A custom header may not add a second To, Cc or Bcc to a message we build either (RFC 5322 §3.6).
_BUILT_ONCE = SINGLE_OCCURRENCE_HEADERS | {"to": "To", "cc": "Cc", "bcc": "Bcc"}

# cte_type 7bit: bodies go quoted-printable or base64, never 8bit, since SES must be able to rewrite them
# for open/click tracking (reference §1.9). SMTP: CRLF line ends (RFC 5322 §2.1).
_POLICY = SMTP.clone(cte_type="7bit")
#: An addr-spec needing no quoting or encoding: dot-atom local part, plain domain (RFC 5322 §3.4.1).
_PLAIN_ADDR = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+"
)
_FOLD_AT = 76  # RFC 2047 §2 for lines holding encoded words (RFC 5322 §2.1.1 asks 78) ...
_LINE_MAX = 998  # ... and RFC 5322 demands 998.
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 §3.6.8 ftext, also the v2 MessageHeader.Name pattern
_RAW_FIELD = re.compile(rb"([!-9;-~]+)[ \t]*:")  # RFC 5322 §4.5: obsolete syntax allows blanks before ":"
_FOLD = re.compile(r"\r?\n(?=[ \t])")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # what the email package removes to unfold a value
_CTE = {"BASE64": "base64", "QUOTED_PRINTABLE": "quoted-printable", "SEVEN_BIT": "7bit"}


class MessageError(SesameError):
    """SES refuses the message; ``reason`` is the text for the error the caller returns."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class InvalidHeader(MessageError):
    """A header name or value (address, content type, ...) SES would not take."""


class DuplicateHeader(MessageError):
    """A single-occurrence field twice. SES: InvalidParameterValue ``Duplicate header 'NAME'.`` on the
    API, ``554 Transaction failed: Duplicate header 'NAME'.`` on SMTP (OBSERVED in client reports)."""


class UnsupportedAttachment(MessageError):
    """An attachment name with an unsupported extension (expect MessageRejected; text UNCONFIRMED)."""


class MessageTooLarge(MessageError):
    """Bigger than the interface allows."""


class MalformedMessage(MessageError):
    """Not a header section, a blank line and a body."""


class InvalidCharset(MessageError):
    """A charset Python does not know, or text that charset cannot hold."""


@dataclass(frozen=True)
class Attachment:
    """The SES v2 ``Attachment`` object; enum fields take the API's values."""

    raw_content: bytes
    file_name: str
    content_type: str | None = None  # guessed from the file name when absent
    content_disposition: str = "ATTACHMENT"  # or INLINE
    content_description: str | None = None
    content_id: str | None = None
    content_transfer_encoding: str = "SEVEN_BIT"  # or BASE64, QUOTED_PRINTABLE


@dataclass
class RawInfo:
    """What a raw message says of itself. Addresses are bare addr-specs (groups flattened). X-SES-*
    values come from each header's first instance, the one SES uses [DG: sending-authorization-delegate-
    sender-tasks-email].

    The address and text fields are parsed when first asked for, with the email package's header
    parsers (the slow part of reading a message): a send that names its recipients (SMTP, Destinations)
    never pays for parsing To, Cc and Bcc.
    """

    #: The From and Sender field bodies as written (unfolded): the identity checks parse them strictly.
    from_field: str | None
    sender_field: str | None
    size: int  # of the message as received
    ses_headers: dict[str, str] = field(default_factory=dict)  # every X-SES-* header by lower-case name
    #: The fields named in _PARSED_LATER, as the email package stores them, by lower-case name.
    fields: dict[str, list[str]] = field(default_factory=dict)

    def _headers(self, name: str) -> list[Any]:
        return [_DEFAULT.header_fetch_parse(name, value) for value in self.fields.get(name, [])]

    def _addresses(self, name: str) -> list[str]:
        return [a.addr_spec for h in self._headers(name) for a in getattr(h, "addresses", ())]

    def _text(self, name: str) -> str | None:
        values = self.fields.get(name)
        if not values:
            return None
        plain = _LINE_BREAK.sub("", values[0])
        if plain.isascii() and "=?" not in plain:  # no encoded word to decode: the parser would keep it
            return plain.strip()
        return str(self._headers(name)[0]).strip()

    @functools.cached_property
    def from_addr(self) -> str | None:
        return next(iter(self._addresses("from")), None)

    @functools.cached_property
    def sender(self) -> str | None:
        return next(iter(self._addresses("sender")), None)

    @functools.cached_property
    def to(self) -> list[str]:
        return self._addresses("to")

    @functools.cached_property
    def cc(self) -> list[str]:
        return self._addresses("cc")

    @functools.cached_property
    def bcc(self) -> list[str]:
        return self._addresses("bcc")

    @functools.cached_property
    def subject(self) -> str | None:  # decoded
        return self._text("subject")

    @functools.cached_property
    def message_id(self) -> str | None:
        return self._text("message-id")

    @functools.cached_property
    def return_path(self) -> str | None:
        return (self._text("return-path") or "").strip("<>").strip() or None

    @property
    def configuration_set(self) -> str | None:
        return self.ses_headers.get("x-ses-configuration-set")

    @property
    def message_tags(self) -> list[tuple[str, str]]:  # as written; the caller applies the tag rules
        items = self.ses_headers.get("x-ses-message-tags", "").split(",")
        tags = [item.partition("=") for item in items if item.strip()]
        return [(key.strip(), value.strip()) for key, _, value in tags]

    @property
    def list_management(self) -> str | None:
        return self.ses_headers.get("x-ses-list-management-options")

    @property
    def tenant(self) -> str | None:
        """The tenant to send as (X-SES-TENANT, reference §1.6.2)."""
        return self.ses_headers.get("x-ses-tenant") or None

    @property
    def source_arn(self) -> str | None:
        return self.ses_headers.get("x-ses-source-arn")

    @property
    def from_arn(self) -> str | None:
        return self.ses_headers.get("x-ses-from-arn")

    @property
    def return_path_arn(self) -> str | None:
        return self.ses_headers.get("x-ses-return-path-arn")


_PARSED_LATER = frozenset(
    {
        "from",
        "sender",
        "to",
        "cc",
        "bcc",
        "subject",
        "message-id",
        "return-path",
        "content-type",
        "content-disposition",
    }
)


def ses_message_id_domain(region: str) -> str:
    """The domain of the Message-ID SES writes (OBSERVED, reference §1.7)."""
    return "email.amazonses.com" if region == "us-east-1" else f"{region}.amazonses.com"


def check_attachment_filename(name: str) -> None:
    """Refuse a name ending in an unsupported extension, in any letter case. Trailing dots and blanks go
    first: Windows drops them when it saves the file."""
    base = name.strip().rstrip(". ")
    if "." in base and base.rsplit(".", 1)[1].lower() in UNSUPPORTED_EXTENSIONS:
        raise UnsupportedAttachment(f"Illegal filename '{name}'.")


# --- building -----------------------------------------------------------------------------------------


class _Folded(str):
    """A field body we encoded and folded. The policy keeps a value with a ``name`` attribute as a ready
    header object and writes it with its ``fold`` (see EmailPolicy.header_store_parse), untouched."""

    name: str

    def __new__(cls, name: str, body: str) -> _Folded:
        obj = super().__new__(cls, body)
        obj.name = name
        return obj

    def fold(self, *, policy: Policy) -> str:
        return f"{self.name}: {self}{policy.linesep}"


def build_simple(
    *,
    source: str,
    to: Sequence[str],
    cc: Sequence[str] = (),
    bcc: Sequence[str] = (),
    reply_to: Sequence[str] = (),
    subject: str,
    subject_charset: str | None = None,
    text: str | None = None,
    text_charset: str | None = None,
    html: str | None = None,
    html_charset: str | None = None,
    headers: Sequence[tuple[str, str]] = (),
    attachments: Sequence[Attachment] = (),
    message_id: str,
    date: datetime,
    message_id_domain: str = "email.amazonses.com",
    return_path: str | None = None,
) -> bytes:
    """The message SES builds for Simple content: CRLF line ends, 7-bit throughout.

    ``bcc`` and ``return_path`` are envelope matters and write no field: Bcc would show the blind copies
    to everyone, and the final delivery MTA adds Return-Path (RFC 5321 §4.4). Without attachments the
    body is text/plain, text/html or multipart/alternative of both; with them, multipart/mixed holding
    that body first. Text bodies end with a line break.
    """
    del bcc, return_path  # accepted so that callers can pass a request through; see above
    date = date.replace(tzinfo=UTC) if date.tzinfo is None else date
    fields = [
        ("Date", format_datetime(date.astimezone(UTC))),
        ("From", _addresses("From", [source]) if source else ""),  # TestRenderTemplate has no sender
        ("To", _addresses("To", to)),
        ("Cc", _addresses("Cc", cc)),
        ("Reply-To", _addresses("Reply-To", reply_to)),
        ("Subject", _unstructured("Subject", subject, subject_charset or "UTF-8")),
        ("Message-ID", f"<{message_id}@{message_id_domain}>"),
        ("MIME-Version", "1.0"),
    ]
    given = ((text, "plain", text_charset), (html, "html", html_charset))
    bodies = [(body, sub, cs) for body, sub, cs in given if body is not None] or [("", "plain", None)]
    if len(bodies) == 1 and not attachments and not headers and _plain_7bit(bodies[0][0], bodies[0][2]):
        return _written_directly(fields, *bodies[0][:2])
    return _via_email_package(fields, bodies, headers, attachments)


def _plain_7bit(content: str, charset: str | None) -> bool:
    """A UTF-8 text that goes out as written: ASCII, no CR or NUL, lines short enough for 7bit."""
    return (
        charset is None
        and content.isascii()
        and "\r" not in content
        and "\0" not in content
        and max(map(len, content.split("\n"))) <= _LINE_MAX
    )


def _written_directly(fields: list[tuple[str, str]], content: str, subtype: str) -> bytes:
    """The usual message, one 7-bit text body and nothing else, written out by hand: the same bytes the
    email package writes (a test holds them equal), for a tenth of the cost. The field bodies come
    encoded and folded already."""
    body = content if content.endswith("\n") or not content else content + "\n"
    head = "".join(f"{name}: {value}\r\n" for name, value in fields if value)
    return (
        f'{head}Content-Type: text/{subtype}; charset="UTF-8"\r\nContent-Transfer-Encoding: 7bit\r\n\r\n'
        + body.replace("\n", "\r\n")
    ).encode("ascii")


def _via_email_package(
    fields: list[tuple[str, str]],
    bodies: list[tuple[str, str, str | None]],
    headers: Sequence[tuple[str, str]],
    attachments: Sequence[Attachment],
) -> bytes:
    msg = MIMEPart(policy=_POLICY)  # not EmailMessage, which adds MIME-Version to every part it builds
    for name, value in fields:
        if value:
            msg[name] = _Folded(name, value)
    parts = [_attachment_part(a) for a in attachments]
    body = MIMEPart(policy=_POLICY) if parts else msg
    if len(bodies) == 1:
        _set_text(body, *bodies[0])
    else:
        body.make_alternative()
        for args in bodies:
            body.attach(_set_text(MIMEPart(policy=_POLICY), *args))
    if parts:
        msg.make_mixed()
        for part in (body, *parts):
            msg.attach(part)

    seen = {name.lower() for name in msg.keys()}
    for name, value in headers:  # the v2 MessageHeader limits (botocore model)
        if not (0 < len(name) <= 126 and _FIELD_NAME.fullmatch(name)):
            raise InvalidHeader(f"Invalid header name '{name}'.")
        if not re.fullmatch(r"[ -~]{1,995}", value) or len(name + value) > 996:
            raise InvalidHeader(f"Invalid value for header '{name}'.")
        if name.lower() in _BUILT_ONCE and name.lower() in seen:
            raise DuplicateHeader(f"Duplicate header '{_BUILT_ONCE[name.lower()]}'.")
        seen.add(name.lower())
        msg[name] = _Folded(name, value)  # those limits keep "Name: value" within 998 characters
    return msg.as_bytes()


def _set_text(part: MIMEPart, content: str, subtype: str, charset: str | None) -> MIMEPart:
    """A text body in its charset, UTF-8 by default: ASCII as 7bit while its lines are short, other text
    quoted-printable while mostly ASCII (readable and compact), else base64 (RFC 2045 §6)."""
    if _plain_7bit(content, charset):
        # The usual body, written directly: set_content would weigh every encoding first (~150 µs).
        body = content if content.endswith("\n") or not content else content + "\n"
        part.set_payload(body.replace("\n", "\r\n"))
        part["Content-Type"] = _Folded("Content-Type", f'text/{subtype}; charset="UTF-8"')
        part["Content-Transfer-Encoding"] = _Folded("Content-Transfer-Encoding", "7bit")
        return part
    charset, cte = charset or "UTF-8", None
    if not content.isascii():
        cte = "quoted-printable" if sum(map(str.isascii, content)) * 2 > len(content) else "base64"
    try:
        part.set_content(content, subtype=subtype, charset=charset, cte=cte)
    except (LookupError, UnicodeError) as exc:
        raise InvalidCharset(f"Cannot encode the {subtype} body in charset '{charset}'.") from exc
    return part


def _attachment_part(att: Attachment) -> MIMEPart:
    name = att.file_name
    ctype = att.content_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
    if not name:  # the live guide says SES derives a name from ContentType then (how: UNCONFIRMED)
        name = "attachment" + (mimetypes.guess_extension(ctype.split(";")[0].strip()) or "")
    check_attachment_filename(name)
    header = _DEFAULT.header_factory("Content-Type", ctype)
    if header.defects or "/" not in ctype:
        raise InvalidHeader(f"Invalid content type '{ctype}'.")
    if att.content_transfer_encoding not in _CTE:
        raise MessageError(f"Invalid ContentTransferEncoding '{att.content_transfer_encoding}'.")
    cte = _CTE[att.content_transfer_encoding]
    lines = att.raw_content.split(b"\r\n")  # 7bit: ASCII, no NUL, CRLF only, short lines (RFC 2045 §2.7)
    if cte == "7bit" and not (
        att.raw_content.isascii()
        and b"\0" not in att.raw_content
        and all(len(x) <= _LINE_MAX and b"\r" not in x and b"\n" not in x for x in lines)
    ):
        cte = "base64"  # the API default is SEVEN_BIT, yet most attachments are binary
    cid = att.content_id
    if cid is not None:
        if not (cid.isascii() and cid.isprintable()):
            raise InvalidHeader(f"Invalid content ID '{cid}'.")
        cid = cid if cid.startswith("<") else f"<{cid}>"  # RFC 2045 §7 msg-id form, for RFC 2392 cid: URLs
    part = MIMEPart(policy=_POLICY)
    part.set_content(
        att.raw_content,
        header.maintype,
        header.subtype,
        cte=cte,
        disposition="inline" if att.content_disposition.upper() == "INLINE" else "attachment",
        filename=name,  # the policy writes non-ASCII or long names as RFC 2231 parameters
        cid=cid,
        params=dict(header.params),
    )
    if att.content_description:
        description = _unstructured("Content-Description", att.content_description, "UTF-8")
        part["Content-Description"] = _Folded("Content-Description", description)
    return part


def _encoded_words(name: str, text: str, charset: str) -> list[str]:
    """RFC 2047 B encoded words, each a whole number of characters (§5, so stateful charsets too are
    encoded chunk by chunk) and short enough that a line holding one, even the first, fits 76 (§2)."""
    prefix = f"=?{charset}?B?"
    room = (min(75, _FOLD_AT - len(name) - 2) - len(prefix) - 2) // 4 * 3  # raw bytes per word
    chunks = [""]
    try:
        for ch in text:
            if chunks[-1] and len((chunks[-1] + ch).encode(charset)) > room:
                chunks.append("")
            chunks[-1] += ch
        return [f"{prefix}{base64.b64encode(c.encode(charset)).decode('ascii')}?=" for c in chunks]
    except (LookupError, UnicodeError) as exc:
        raise InvalidCharset(f"Cannot encode a header in charset '{charset}'.") from exc


def _unstructured(name: str, text: str, charset: str) -> str:
    """An unstructured field body (RFC 5322 §3.2.5). Printable ASCII stays as written, keeping encoded
    words the client made itself; anything else, or a word too long for a line, is encoded. Blanks
    between encoded words vanish when decoding (RFC 2047 §6.2), so folding between them keeps the text."""
    words = text.split(" ")
    if not (text.isascii() and text.replace("\t", " ").isprintable()) or (
        max(map(len, words)) + len(name) + 2 > _LINE_MAX
    ):
        words = _encoded_words(name, text, charset)
    return _fold(name, [("" if i == 0 else " ", word) for i, word in enumerate(words)])


def _addresses(name: str, entries: Iterable[str]) -> str:
    """An address-list field body; each entry must be one mailbox. Printable ASCII entries go out as
    given (their quoting and encoded words included); other display names become encoded words (RFC
    2047 §5(3)). The addresses must be 7-bit: SES has no SMTPUTF8 (reference §1.2)."""
    pieces: list[tuple[str, str]] = []
    for entry in entries:
        if _PLAIN_ADDR.fullmatch(entry):  # the common case needs no parsing (and parsing costs ~50 µs)
            pieces.append((", " if pieces else "", entry))
            continue
        header = _DEFAULT.header_factory("To", entry)
        one = len(header.addresses) == 1 and len(header.groups) == 1 and not header.defects
        box: Address = header.addresses[0] if one else Address()
        if not (box.domain and box.addr_spec.isascii()) or "\r" in entry or "\n" in entry:
            raise InvalidHeader(f"Invalid address '{entry}'.")
        sep = ", " if pieces else ""
        if entry.isascii() and entry.isprintable():
            pieces.append((sep, entry.strip()))
            continue
        for word in _encoded_words(name, box.display_name, "UTF-8"):
            pieces.append((sep, word))
            sep = " "
        pieces.append((" ", f"<{box.addr_spec}>"))
    return _fold(name, pieces)


def _fold(name: str, pieces: list[tuple[str, str]]) -> str:
    """Join (separator, text) pieces, breaking the line before a piece that would pass 76 columns. Each
    separator ends in a blank the fold takes the place of, so unfolding gives the text back (RFC 5322
    §2.2.3). An empty piece never starts a line: a line of blanks alone is not allowed."""
    out, column = "", len(name) + 2
    for sep, text in pieces:
        if out and text and column + len(sep) + len(text) > _FOLD_AT:
            out, column = out + sep[:-1] + "\r\n " + text, 1 + len(text)
        else:
            out, column = out + sep + text, column + len(sep) + len(text)
    return out


# --- raw messages -------------------------------------------------------------------------------------


@dataclass
class _Field:
    name: str  # as spelled
    start: int  # offset of its first line
    end: int  # offset just past its last line break


def _header_fields(data: bytes) -> list[_Field]:
    """The top-level fields and where they lie. Lines end in LF or CRLF, a line starting with a blank
    continues the field before it (RFC 5322 §2.2.3), and the first empty line ends the section (§2.1)."""
    fields: list[_Field] = []
    pos = 0
    while (eol := data.find(b"\n", pos) + 1) and data[pos:eol] not in (b"\n", b"\r\n"):
        if data[pos : pos + 1] in (b" ", b"\t") and fields:
            fields[-1].end = eol
        elif match := _RAW_FIELD.match(data, pos, eol):
            fields.append(_Field(match[1].decode("ascii"), pos, eol))
        else:
            raise MalformedMessage("The message does not start with a valid header section.")
        pos = eol
    if not eol:
        raise MalformedMessage("The message has no blank line between header and body.")
    if not fields:
        raise MalformedMessage("The message has no header fields.")
    return fields


def header_list(data: bytes) -> list[tuple[str, str]]:
    """The top-level header fields as (name, value), values unfolded and left encoded (event records
    show them so); an empty list for data that has no valid header section."""
    try:
        fields = _header_fields(data)
    except MalformedMessage:
        return []
    out = []
    for f in fields:
        raw = data[f.start : f.end].decode("utf-8", "replace")
        value = raw.split(":", 1)[1] if ":" in raw else ""
        out.append((f.name, " ".join(value.split())))
    return out


def _cut(data: bytes, drop: Callable[[str], bool]) -> bytes:
    """The message without the top-level fields whose lower-case name ``drop`` accepts, byte for byte."""
    kept, pos = [], 0
    for f in _header_fields(data):
        if drop(f.name.lower()):
            kept.append(data[pos : f.start])
            pos = f.end
    return b"".join(kept) + data[pos:]


def remove_headers(data: bytes, names: Iterable[str]) -> bytes:
    """Remove every top-level field with one of these names (any case); the rest stays byte for byte."""
    return _cut(data, {n.lower() for n in names}.__contains__)


def add_headers(data: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    """Put fields in front of the message, in the line ending it already uses. A value may come folded
    (a DKIM-Signature usually does) but must be 7-bit and may not break a line otherwise."""
    first = data.find(b"\n")
    nl = "\n" if first >= 0 and data[first - 1 : first] != b"\r" else "\r\n"
    lines = []
    for name, value in headers:
        if not _FIELD_NAME.fullmatch(name):
            raise InvalidHeader(f"Invalid header name '{name}'.")
        unfolded = _FOLD.sub("", value)
        if not value.isascii() or "\r" in unfolded or "\n" in unfolded:
            raise InvalidHeader(f"Invalid value for header '{name}'.")
        lines.append(f"{name}: {_FOLD.sub(nl, value)}{nl}".encode("ascii"))
    return b"".join(lines) + data


def date_field(when: datetime) -> str:
    """A Date field body (RFC 5322 §3.3) for ``when``, in UTC. SES writes its own Date, the time it
    accepted the message, over the client's [DG: header-fields]."""
    return format_datetime(when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC))


def _parser_view(data: bytes, fields: list[_Field]) -> bytes:
    """The message with no blanks between a top-level field's name and its colon, for the email package:
    it reads ``From : x`` (obsolete syntax, RFC 5322 §4.5) as the end of the header section or as an mbox
    From_ line, so a field that recipients may show would escape every check made on the parse."""
    out, pos = [], 0
    for f in fields:
        colon = data.index(b":", f.start)
        if colon != f.start + len(f.name):
            out += [data[pos : f.start], f.name.encode("ascii")]
            pos = colon
    return b"".join(out) + data[pos:] if out else data


def process_raw(data: bytes, *, max_bytes: int) -> tuple[bytes, RawInfo]:
    """Check a raw message as SES does; return it without its X-SES-* fields, and what it says.

    Checked: the size (octets as given against ``max_bytes``), a header section ended by a blank line
    [BC-V2 RawMessage], single-occurrence fields (top level, any letter case), and the file name of every
    MIME part at any depth that has one (Content-Disposition filename, Content-Type name; RFC 2231 and
    RFC 2047 forms decoded). All but the X-SES-* fields comes back byte for byte.
    """
    if len(data) > max_bytes:  # message text from memory of real SES replies: UNCONFIRMED
        raise MessageTooLarge(f"Message length is more than {max_bytes} bytes long: '{len(data)}'.")
    counts: dict[str, int] = {}
    ses: dict[str, str] = {}
    bodies: dict[str, str] = {}
    later: dict[str, list[str]] = {}
    fields = _header_fields(data)
    for f in fields:
        lname = f.name.lower()
        counts[lname] = counts.get(lname, 0) + 1
        if lname in SINGLE_OCCURRENCE_HEADERS and counts[lname] > 1:
            raise DuplicateHeader(f"Duplicate header '{SINGLE_OCCURRENCE_HEADERS[lname]}'.")
        if lname in ("from", "sender") or (lname.startswith("x-ses-") and lname not in ses):
            value = data[f.start : f.end].split(b":", 1)[1].decode("utf-8", "replace")
            value = _FOLD.sub("", value).strip()
            (ses if lname.startswith("x-ses-") else bodies)[lname] = value
        if lname in _PARSED_LATER:
            # The value as the email package's parser keeps it (bytes as ASCII with surrogates, blanks
            # after the colon and the last line break dropped), for its header parsers to read later.
            raw = data[f.start : f.end].decode("ascii", "surrogateescape").split(":", 1)[1]
            later.setdefault(lname, []).append(raw.lstrip(" \t").rstrip("\r\n"))
    _check_attachment_names(data, fields, later)
    info = RawInfo(
        from_field=bodies.get("from"),
        sender_field=bodies.get("sender"),
        size=len(data),
        ses_headers=ses,
        fields=later,
    )
    return _cut(data, lambda lname: lname.startswith("x-ses-")), info


def _check_attachment_names(data: bytes, fields: list[_Field], top: dict[str, list[str]]) -> None:
    """Every MIME part's file name, at any depth. A message whose top level is neither multipart nor
    message/* has no other part, and only its own fields (``top``) are looked at. Otherwise the structure
    is read with the compat32 policy, which keeps header values as strings (the default policy parses
    every header it touches, several times slower). Either way, only a Content-Type or
    Content-Disposition that may carry a name is parsed for real."""
    content_type = next(iter(top.get("content-type", [])), "").lstrip().lower()
    if not content_type.startswith(("multipart/", "message/")):
        items = [("Content-Type", v) for v in top.get("content-type", [])]
        _check_part(items + [("Content-Disposition", v) for v in top.get("content-disposition", [])])
        return
    for part in message_from_bytes(_parser_view(data, fields), policy=compat32).walk():
        _check_part(part.raw_items())


def _check_part(items: Iterable[tuple[str, str]]) -> None:
    for name, value in items:
        header = name.lower()
        param = "filename" if header == "content-disposition" else "name" if header == "content-type" else ""
        if param and "name" in value.lower():
            if filename := getattr(_DEFAULT.header_fetch_parse(name, value), "params", {}).get(param):
                check_attachment_filename(str(filename))
