"""Changing the text of a message's text parts in place: open and click tracking rewrites the HTML
(mail/tracking.py), list management puts the unsubscribe link into HTML and text (domain/unsubscribe.py).

Every ``text/html`` and ``text/plain`` part that is not an attachment is offered to the caller's
transform, at any depth of multipart nesting (a forwarded ``message/rfc822`` is someone else's mail and
is left alone). The rest of the message stays byte for byte, as raw messages do everywhere else
(mail/mime.py): a part's body is decoded, changed, and encoded again in its own transfer encoding,
unless the result no longer fits 7bit or 8bit (a line past 998 octets, RFC 5322 §2.1.1), when it goes
quoted-printable, as SES does when it must modify a message (reference §1.9).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.message import Message

from sesame.mail import mime

#: ``transform(content type, text)``: the part's new text (the same text: left as it was).
Transform = Callable[[str, str], str]
TEXT_TYPES = ("text/html", "text/plain")
MAX_DEPTH = 50
_LINE = re.compile(rb"\r?\n")
_7BIT_LINE = 998  # RFC 5322 §2.1.1 / RFC 2045 §2.7
_B64_LINE = 76  # RFC 2045 §6.8


def rewrite_parts(data: bytes, transform: Transform) -> bytes:
    """The message with its text parts transformed; the message itself if nothing changed."""
    edits: list[tuple[int, int, bytes]] = []
    _walk(data, 0, len(data), _Pass(transform, edits), 0)
    if not edits:
        return data
    out, pos = [], 0
    for start, end, replacement in sorted(edits):
        out += [data[pos:start], replacement]
        pos = end
    return b"".join(out) + data[pos:]


@dataclass
class _Pass:
    """One rewriting of a message: the change to make to a part's text, the edits found so far."""

    transform: Transform
    edits: list[tuple[int, int, bytes]]  # (start, end, replacement) in the message's bytes


def _walk(data: bytes, start: int, end: int, run: _Pass, depth: int) -> None:
    """Find the text parts of the entity at ``data[start:end]`` (a header section, then its body), down
    to ``MAX_DEPTH`` levels of multiparts: no mail nests deeper, and a crafted one must not recurse
    without end."""
    part = data[start:end]
    try:
        fields = mime._header_fields(part)
    except mime.MalformedMessage:
        return  # a body part with no header section (RFC 2045 §5.2 makes it text/plain): left alone
    head_end = fields[-1].end
    body_start = head_end + (2 if part[head_end : head_end + 2] == b"\r\n" else 1)
    info = Message()
    values: dict[str, str] = {}
    for f in fields:
        lname = f.name.lower()
        if lname in ("content-type", "content-disposition", "content-transfer-encoding"):
            raw = part[f.start : f.end].decode("ascii", "replace").split(":", 1)[1]
            values.setdefault(lname, raw.replace("\r\n", "").replace("\n", "").strip())
            if lname not in info:
                info[f.name] = values[lname]
    ctype = info.get_content_type()
    if ctype.startswith("multipart/"):
        boundary = info.get_param("boundary")
        if isinstance(boundary, str) and boundary:
            for s, e in _body_parts(part, body_start, boundary.encode("ascii", "replace")):
                if depth < MAX_DEPTH:
                    _walk(data, start + s, start + e, run, depth + 1)
        return
    if ctype not in TEXT_TYPES or info.get_content_disposition() == "attachment":
        return
    cte = values.get("content-transfer-encoding", "7bit").lower()
    charset = info.get_content_charset() or "us-ascii"
    replaced = _rewrite_part(part[body_start:], cte, charset, ctype, run)
    if replaced is None:
        return
    body, new_cte = replaced
    if new_cte != cte:
        kept = [part[f.start : f.end] for f in fields if f.name.lower() != "content-transfer-encoding"]
        nl = b"\r\n" if part[fields[0].end - 2 : fields[0].end] == b"\r\n" else b"\n"
        head = b"".join(kept) + b"Content-Transfer-Encoding: " + new_cte.encode() + nl
        run.edits.append((start, start + head_end, head))
    run.edits.append((start + body_start, end, body))


def _body_parts(part: bytes, body_start: int, boundary: bytes) -> list[tuple[int, int]]:
    """Where each body part of a multipart body lies: between a delimiter line's end and the line break
    before the next delimiter (RFC 2046 §5.1.1: that line break belongs to the delimiter)."""
    delimiter = re.compile(rb"(?:\r?\n|\A)--" + re.escape(boundary) + rb"(--)?[ \t]*(?:\r?\n|\Z)")
    spans: list[tuple[int, int]] = []
    opened = None
    # From the blank line's own line break, which may end the delimiter's preceding line too.
    for found in delimiter.finditer(part, body_start - 1):
        if opened is not None:
            spans.append((opened, found.start()))
        if found.group(1):  # the close delimiter
            break
        opened = found.end()
    return spans


def _rewrite_part(raw: bytes, cte: str, charset: str, ctype: str, run: _Pass) -> tuple[bytes, str] | None:
    """The part's body rewritten and encoded again, and its transfer encoding; None if unchanged."""
    nl = b"\r\n" if b"\r\n" in raw[:4096] or b"\n" not in raw else b"\n"
    try:
        if cte == "base64":
            decoded = binascii.a2b_base64(raw)
        elif cte == "quoted-printable":
            decoded = binascii.a2b_qp(raw)
        else:
            decoded = raw
    except binascii.Error:  # not valid base64: what the reader sees of it is not ours to change
        return None
    try:
        codec = codecs.lookup(charset).name
        text = decoded.decode(codec)
    except (LookupError, UnicodeError):
        codec = "latin-1"  # octets as characters: what we insert is ASCII, the rest goes back as it was
        text = decoded.decode(codec)
    new = run.transform(ctype, text)
    if new == text:
        return None
    encoded = new.encode(codec)
    if cte == "base64":
        b64 = base64.b64encode(encoded)
        lines = [b64[i : i + _B64_LINE] for i in range(0, len(b64), _B64_LINE)]
        return nl.join(lines) + nl, cte
    if cte not in ("quoted-printable", "7bit", "8bit", "binary"):
        cte = "7bit"  # an unknown encoding is 7bit (RFC 2045 §6.4)
    if cte != "quoted-printable":
        lines = _LINE.split(encoded)
        fits = all(len(line) <= _7BIT_LINE and b"\r" not in line and b"\0" not in line for line in lines)
        if fits and (cte != "7bit" or encoded.isascii()):
            return encoded, cte
    return _quoted_printable(encoded, nl), "quoted-printable"


def _quoted_printable(data: bytes, nl: bytes) -> bytes:
    """RFC 2045 §6.7 line by line: the text's own line breaks stay hard ones, in the part's style."""
    lines = _LINE.split(data)
    # b2a_qp breaks long lines with "=\n": a line holds no newline of its own, so those are the only ones.
    return nl.join(binascii.b2a_qp(line).replace(b"\n", nl) for line in lines)
