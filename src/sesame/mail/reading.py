"""A stored raw message taken apart for a person to read (the dev inbox): its header fields decoded, its
text and HTML bodies, its attachments and inline parts, the links and images its HTML holds.

    reading = read(raw)
    reading.subject, reading.text, reading.html, reading.attachments
    framed(reading, images=False)      # the HTML to show in the sandboxed frame
    links_of(reading.html)             # every link, and the images without an alt text

Pure: bytes in, values out; nothing here touches storage or the network. The email package does the
MIME work (``policy.default`` decodes RFC 2047 words and RFC 2231 file names); a malformed message is
shown as far as it parses, never refused: a developer looks at it precisely because it may be wrong.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import EmailMessage, Message
from email.policy import default as _DEFAULT
from html.parser import HTMLParser
from urllib.parse import quote

#: Inline (cid:) images larger than this are not inlined into the framed HTML as data: URLs.
MAX_INLINE_BYTES = 5 * 1024 * 1024

#: Content types a browser may render or run: downloads of these go out as application/octet-stream.
_SAFE_TYPES = frozenset(
    "text/plain text/csv application/pdf image/png image/jpeg image/gif image/webp application/zip"
    " application/json audio/mpeg video/mp4 application/gzip".split()
)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._ -]+")
_UNSAFE_UNICODE = re.compile(r'[\x00-\x1f\x7f"%;\\]+')


@dataclass(frozen=True)
class Part:
    """An attachment or inline part: its place among the message's parts (``index``, stable for the
    same bytes), what it says it is, and its decoded content."""

    index: int
    content_type: str
    filename: str
    disposition: str  # "attachment", "inline" or ""
    content_id: str  # without the angle brackets; "" when none
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def download_name(self) -> str:
        return safe_filename(self.filename or f"part-{self.index}")

    @property
    def download_type(self) -> str:
        """What the download is served as: its own type only when a browser cannot run it."""
        return self.content_type if self.content_type in _SAFE_TYPES else "application/octet-stream"


@dataclass
class Reading:
    headers: list[tuple[str, str]] = field(default_factory=list)  # decoded, in order
    subject: str = ""
    from_: str = ""
    to: str = ""
    cc: str = ""
    date: str = ""
    text: str | None = None
    html: str | None = None
    attachments: list[Part] = field(default_factory=list)
    #: Parts an HTML body refers to with cid: URLs, by Content-ID.
    inline: dict[str, Part] = field(default_factory=dict)
    defects: list[str] = field(default_factory=list)

    def header(self, name: str) -> str:
        lowered = name.lower()
        return next((v for n, v in self.headers if n.lower() == lowered), "")


def read(raw: bytes) -> Reading:
    msg = message_from_bytes(raw, policy=_DEFAULT)
    out = Reading()
    for name, value in msg.items():
        out.headers.append((name, _text(value)))
    out.subject = out.header("Subject")
    out.from_ = out.header("From")
    out.to = out.header("To")
    out.cc = out.header("Cc")
    out.date = out.header("Date")
    for index, part in enumerate(msg.walk()):
        out.defects += [type(d).__name__ for d in part.defects]
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        disposition = (part.get_content_disposition() or "").lower()
        filename = _text(part.get_filename() or "")
        cid = _text(part.get("Content-ID", "")).strip().strip("<>")
        if disposition != "attachment" and not filename and ctype in ("text/plain", "text/html"):
            body = _decoded_text(part)
            if ctype == "text/plain" and out.text is None:
                out.text = body
                continue
            if ctype == "text/html" and out.html is None:
                out.html = body
                continue
        if ctype == "message/rfc822" and not filename:
            filename = "message.eml"
        item = Part(index, ctype, filename, disposition, cid, _payload(part))
        if cid:
            out.inline[cid] = item
        if cid and disposition != "attachment" and not filename:
            continue  # an inline image the HTML shows; its bytes are not a file the sender attached
        out.attachments.append(item)
    return out


def header_section(raw: bytes) -> str:
    """The header section as stored (for the Headers tab's raw view and the Raw tab's top)."""
    end = raw.find(b"\r\n\r\n")
    end = raw.find(b"\n\n") if end < 0 else end
    return raw[: end if end >= 0 else len(raw)].decode("utf-8", "replace")


def has_attachments(head: bytes) -> bool:
    """A guess from the first bytes of a message alone (the list shows a marker without reading whole
    bodies): a multipart/mixed message, or a part that says it is an attachment."""
    lowered = head.lower()
    return b"multipart/mixed" in lowered or b"content-disposition: attachment" in lowered


def safe_filename(name: str) -> str:
    """A name safe in a Content-Disposition header and on any file system: no path, no quotes, no
    control characters, not hidden, at most 100 characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE_NAME.sub("_", name).strip(" .")
    return name[-100:] or "attachment"


def content_disposition(name: str) -> str:
    """``attachment`` with the safe ASCII name, and the name in UTF-8 too (RFC 6266 §4.3) when it has
    other characters (paths, quotes and control characters removed from it as well)."""
    value = f'attachment; filename="{safe_filename(name)}"'
    if not name.isascii():
        base = _UNSAFE_UNICODE.sub("_", name.replace("\\", "/").rsplit("/", 1)[-1]).strip(" .")[-100:]
        if base:
            value += "; filename*=UTF-8''" + quote(base, safe="")
    return value


def framed(reading: Reading, *, images: bool = False) -> str:
    """The HTML body as the frame shows it: links open in a new tab (``<base target="_blank">``), and
    cid: images as data: URLs (the frame has no origin to fetch them from). Remote images are left to
    the frame's Content-Security-Policy, which blocks them unless ``images``."""
    html = reading.html or ""

    def inline(match: re.Match[str]) -> str:
        part = reading.inline.get(match[2])
        if part is None or part.size > MAX_INLINE_BYTES:
            return match[0]
        data = base64.b64encode(part.content).decode("ascii")
        return f"{match[1]}data:{part.content_type};base64,{data}"

    html = _CID.sub(inline, html)
    base = '<base target="_blank">'
    head = _HEAD.search(html)
    if head:
        return html[: head.end()] + base + html[head.end() :]
    return base + html


@dataclass
class LinkReport:
    links: list[str] = field(default_factory=list)  # every http(s) link, once, in order
    other_links: list[str] = field(default_factory=list)  # mailto:, tel:, relative, …
    images_without_alt: list[str] = field(default_factory=list)  # their src


def links_of(html: str | None) -> LinkReport:
    parser = _Links()
    if html:
        parser.feed(html)
        parser.close()
    return parser.report


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.report = LinkReport()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "a" and values.get("href"):
            href = (values["href"] or "").strip()
            kind = (
                self.report.links
                if href.lower().startswith(("http://", "https://"))
                else self.report.other_links
            )
            if href not in kind:
                kind.append(href)
        elif tag == "img" and "alt" not in values:  # alt="" is right for a decorative image
            self.report.images_without_alt.append(values.get("src") or "")

    handle_startendtag = handle_starttag


_CID = re.compile(r"""(["'(]\s*)cid:([^"')\s>]+)""", re.IGNORECASE)
_HEAD = re.compile(r"<head(\s[^>]*)?>", re.IGNORECASE)


def _text(value: object) -> str:
    return str(value).replace("\r", "").replace("\n", " ")


def _decoded_text(part: Message) -> str:
    try:
        content = part.get_content() if isinstance(part, EmailMessage) else part.get_payload(decode=True)
    except (LookupError, UnicodeError, AssertionError):  # an unknown charset or broken encoding
        content = part.get_payload(decode=True)
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return str(content)


def _payload(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        if isinstance(inner, list) and inner and isinstance(inner[0], Message):
            return bytes(inner[0].as_bytes())
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""
