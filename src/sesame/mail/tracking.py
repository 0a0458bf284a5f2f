"""Open and click tracking in a message's HTML (reference §6.7): the open pixel and the link rewriting.

Only HTML is touched: every ``text/html`` part that is not an attachment, found and encoded again by
mail/rewrite.py; text parts never are.

What SES does to the HTML [DG: faqs-metrics]:
- the pixel goes at the first ``{{ses:openTracker}}`` (the others are removed), else at the bottom of
  the HTML (before ``</body>``, so that the document stays well formed);
- every ``<a href>`` to an http(s) URL becomes a redirect, up to 250 links; later links stay as written;
- an anchor with ``ses:no-track`` keeps its link, and loses the attribute;
- ``ses:tags="name:value;…"`` is removed and handed to the redirect (the click's ``linkTags``);
- a link that is not RFC 3986-encoded is not tracked.

The URLs themselves (their host, signature and scheme) are the caller's: ``Rewriter.pixel`` and
``Rewriter.click``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from sesame.mail.rewrite import rewrite_parts

MAX_LINKS = 250
OPEN_TRACKER = "{{ses:openTracker}}"
#: The pixel as SES writes it (reference §6.7, observed markup).
PIXEL = '<img alt="" src="{src}" style="display:none;width:1px;height:1px">'

# Where an <a> start tag begins; the tag itself is read by _attributes, as HTML's tokenizer reads it.
_ANCHOR_START = re.compile(r"<a(?=[\s/>])", re.IGNORECASE)
_BLANKS = re.compile(r"[\t\n\f\r /]*")  # between attributes (HTML §13.2.5.32: "/" is skipped there)
_SPACES = re.compile(r"[\t\n\f\r ]*")
_NAME = re.compile(r"[^\t\n\f\r />][^\t\n\f\r />=]*")  # HTML §13.2.5.33
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")  # HTML §13.2.5.38
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
_HTML_END = re.compile(r"</html\s*>", re.IGNORECASE)
# A link SES tracks is written in RFC 3986's characters only (§2).
_URI_CHARS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]*")
_TAG_PART = re.compile(r"[0-9A-Za-z_-]+")  # link tag names and values [DG: faqs-metrics]


@dataclass(frozen=True)
class Rewriter:
    """What goes into the HTML: ``pixel`` is the open pixel's URL (None: no open tracking); ``click``
    gives the redirect URL for a link and its tags (None: no click tracking)."""

    pixel: str | None
    click: Callable[[str, str], str] | None


def parse_tags(value: str) -> dict[str, list[str]]:
    """``ses:tags`` (``"product:book;genre:fiction;"``) as the click's ``linkTags``: each name with its
    values in order. A pair that is not ``name:value`` in the allowed characters is dropped."""
    tags: dict[str, list[str]] = {}
    for pair in value.split(";"):
        name, sep, val = pair.strip().partition(":")
        name, val = name.strip(), val.strip()
        if sep and _TAG_PART.fullmatch(name) and _TAG_PART.fullmatch(val):
            tags.setdefault(name, []).append(val)
    return tags


def format_tags(tags: dict[str, list[str]]) -> str:
    """The canonical ``name:value;…`` form of parsed tags ('' for none): what a click URL carries."""
    return "".join(f"{name}:{value};" for name, values in tags.items() for value in values)


def trackable(link: str) -> bool:
    """An http(s) URL with a host, written in RFC 3986's characters only: what SES tracks."""
    if not _URI_CHARS.fullmatch(link):
        return False
    try:
        parts = urlsplit(link)
        host = parts.hostname
    except ValueError:  # e.g. an unbalanced "[" in the authority
        return False
    return parts.scheme.lower() in ("http", "https") and bool(host)


@dataclass
class _Budget:
    """Links that may still be tracked: SES's 250 count for the whole message, all its HTML parts."""

    left: int = MAX_LINKS


def rewrite_html(text: str, rewriter: Rewriter, budget: _Budget | None = None) -> str:
    """The HTML with the pixel placed and the links rewritten (see the module's docstring)."""
    if rewriter.click is not None or "ses:" in text:
        text = _rewrite_anchors(text, rewriter.click, budget or _Budget())
    pixel = PIXEL.format(src=html.escape(rewriter.pixel)) if rewriter.pixel is not None else ""
    first = text.find(OPEN_TRACKER)
    if first >= 0:
        head, tail = text[:first], text[first + len(OPEN_TRACKER) :]
        return head + pixel + tail.replace(OPEN_TRACKER, "")
    if not pixel:
        return text
    end = _last(_BODY_END, text)
    end = _last(_HTML_END, text) if end is None else end
    return text + pixel if end is None else text[:end] + pixel + text[end:]


def _last(pattern: re.Pattern[str], text: str) -> int | None:
    starts = [found.start() for found in pattern.finditer(text)]
    return starts[-1] if starts else None


@dataclass(frozen=True, slots=True)
class _Attribute:
    start: int  # where the blanks before it begin
    name_start: int
    end: int
    name: str  # lower case
    value: str  # as written, entities not decoded


def _attributes(text: str, pos: int) -> tuple[list[_Attribute], int] | None:
    """The attributes of the start tag whose name ends at ``pos``, and the offset just past its ``>``;
    None if the document ends inside the tag (a browser then shows none of the rest). Linear in the
    tag's length whatever it holds: one regular expression for a whole tag would be tried again from
    every "<a" inside an unclosed one, quadratic on hostile HTML."""
    found: list[_Attribute] = []
    n = len(text)
    while True:
        start = pos
        pos = _match_end(_BLANKS, text, pos)
        if pos >= n:
            return None
        if text[pos] == ">":
            return found, pos + 1
        name_start, pos = pos, _match_end(_NAME, text, pos)  # any other character starts a name
        value = ""
        after = _match_end(_SPACES, text, pos)
        if after < n and text[after] == "=":
            pos = _match_end(_SPACES, text, after + 1)
            if pos < n and text[pos] in "\"'":
                close = text.find(text[pos], pos + 1)
                if close < 0:
                    return None
                value, pos = text[pos + 1 : close], close + 1
            else:
                unquoted = _match_end(_UNQUOTED, text, pos)
                value, pos = text[pos:unquoted], unquoted
        found.append(_Attribute(start, name_start, pos, text[name_start:after].rstrip().lower(), value))


def _match_end(pattern: re.Pattern[str], text: str, pos: int) -> int:
    """Where ``pattern`` (one that matches the empty string) stops matching from ``pos``."""
    found = pattern.match(text, pos)
    return found.end() if found is not None else pos


def _rewrite_anchors(text: str, click: Callable[[str, str], str] | None, budget: _Budget) -> str:
    out: list[str] = []
    pos = scanned = 0
    for anchor in _ANCHOR_START.finditer(text):
        if anchor.start() < scanned:
            continue  # inside the previous tag's attribute values
        parsed = _attributes(text, anchor.end())
        if parsed is None:
            break
        attributes, scanned = parsed
        allowed = click if budget.left > 0 else None
        new, did = _rewrite_anchor(text, anchor.start(), scanned, attributes, allowed)
        budget.left -= did
        if new is not None:
            out += [text[pos : anchor.start()], new]
            pos = scanned
    return "".join(out) + text[pos:] if out else text


def _rewrite_anchor(
    text: str, start: int, end: int, attributes: list[_Attribute], click: Callable[[str, str], str] | None
) -> tuple[str | None, bool]:
    """The ``<a …>`` tag at ``text[start:end]`` with its href rewritten (if ``click`` and the link is
    trackable) and its ``ses:`` attributes removed, or None if nothing changes; and whether the link
    was rewritten. Other attributes, their spelling and spacing, stay as written."""
    edits: list[tuple[int, int, str]] = []
    href: _Attribute | None = None
    no_track = False
    tags = ""
    for attr in attributes:
        if attr.name == "ses:no-track":
            no_track = True
            edits.append((attr.start, attr.end, ""))
        elif attr.name == "ses:tags":
            tags = attr.value
            edits.append((attr.start, attr.end, ""))
        elif attr.name == "href" and href is None:  # the first of duplicates counts (HTML §13.2.5.33)
            href = attr
    rewritten = False
    if href is not None and click is not None and not no_track:
        link = html.unescape(href.value).strip(" \t\n\f\r")  # browsers strip these (WHATWG URL §4.4)
        if trackable(link):
            url = click(link, format_tags(parse_tags(html.unescape(tags))))
            name = text[href.name_start : href.name_start + 4]
            edits.append((href.name_start, href.end, f'{name}="{html.escape(url)}"'))
            rewritten = True
    if not edits:
        return None, False
    out, pos = [], start
    for edit_start, edit_end, replacement in sorted(edits):
        out += [text[pos:edit_start], replacement]
        pos = edit_end
    return "".join(out) + text[pos:end], rewritten


# --- the message --------------------------------------------------------------------------------------


def rewrite_message(data: bytes, rewriter: Rewriter) -> bytes:
    """The message with each HTML part rewritten; the message itself if it has none, or nothing to
    change."""
    budget = _Budget()

    def transform(ctype: str, text: str) -> str:
        return rewrite_html(text, rewriter, budget) if ctype == "text/html" else text

    return rewrite_parts(data, transform)
