"""Open and click tracking (reference §6.7): when a message is tracked, the URLs that go into it, and
the Open and Click records its pixel and links make.

Enablement is SES's: no switch of its own, a configuration set with an enabled event destination whose
MatchingEventTypes include OPEN (the pixel) or CLICK (the links). The HTML is rewritten when the
message is accepted, before it is stored, so the stored message, the dev capture and the DKIM signature
made at delivery all see what the recipient gets.

Tracking URLs carry their own proof: the message id and, for a click, the link and its tags, under an
HMAC whose key is derived from the data directory's secret keys (domain/secrets.py). A click is
redirected only to the link its URL carries and only when the HMAC holds, so the endpoint is no open
redirect, and it needs no look-up to answer. Keys rotate as the secrets do: the newest signs, any
verifies.

    pixel  {base}/I0/{message id}/{signature}
    click  {base}/L0/{link}/{tags or -}/{message id}/{signature}     (link and tags percent-encoded)

Opens and clicks go into the ``events`` table through the process's group-commit writer, so a burst of
them shares commits. The SES object is recorded as SES spells it; Sesame adds ``machine`` (a reason)
when the hit is plainly not a person's: a mail privacy proxy fetching the pixel, a link scanner, a
click within seconds of delivery.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.config import Settings
from sesame.domain import event_destinations
from sesame.domain.secrets import SecretBox, Signer
from sesame.mail import tracking as html_tracking
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message
from sesame.storage.writer import Work, insert

log = logging.getLogger(__name__)

OPEN_PATH, CLICK_PATH = "I0", "L0"
NO_TAGS = "-"
#: Bodies this large are rewritten on a thread: decoding and encoding megabytes would stall the loop.
INLINE_BYTES = 256 * 1024
_MESSAGE_ID = re.compile(r"[0-9a-f]{16}-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}-000000")
_KEY_LABEL = b"sesame open and click tracking"
#: Percent-encoding of a trackable link or a tag string (RFC 3986 characters only) as one path segment:
#: what ``quote(value, safe="")`` gives for them, at a tenth of its cost on the send path.
_SEGMENT = str.maketrans({c: f"%{ord(c):02X}" for c in ":/?#[]@!$&'()*+,;=%"})

#: User agents of the proxies that fetch images for a mailbox, not for a reader.
_PROXIES = (
    ("googleimageproxy", "GoogleImageProxy"),
    ("yahoomailproxy", "YahooMailProxy"),
    ("ymailproxy", "YahooMailProxy"),
)
#: Fragments of user agents that are programs, not people: link scanners, crawlers, HTTP libraries.
_PROGRAMS = (
    "bot",
    "crawler",
    "spider",
    "scanner",
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "headlesschrome",
    "python-",
    "curl/",
    "wget/",
    "go-http-client",
    "java/",
    "okhttp",
)


@dataclass(frozen=True, slots=True)
class Plan:
    """What a configuration set asks of a message: the pixel, the links, and where the URLs point."""

    opens: bool
    clicks: bool
    domain: str | None = None  # TrackingOptions.CustomRedirectDomain
    https_policy: str = "OPTIONAL"  # TrackingOptions.HttpsPolicy


def plan(options: dict[str, Any] | None) -> Plan | None:
    """The tracking a configuration set's options ask for; None when no enabled event destination
    matches OPEN or CLICK."""
    if not (options or {}).get(event_destinations.GROUP):
        return None  # the usual set: no destinations at all
    types = {t for d in event_destinations.enabled(options or {}) for t in d.event_types}
    if "Open" not in types and "Click" not in types:
        return None
    tracking = (options or {}).get("TrackingOptions") or {}
    return Plan(
        opens="Open" in types,
        clicks="Click" in types,
        domain=tracking.get("CustomRedirectDomain") or None,
        https_policy=str(tracking.get("HttpsPolicy") or "OPTIONAL").upper(),
    )


@dataclass(frozen=True, slots=True)
class Hit:
    """A fetch of a tracking URL whose signature held."""

    kind: str  # "Open" | "Click"
    message_id: str
    ip_address: str
    user_agent: str
    at: dt.datetime
    link: str | None = None
    tags: str = ""


def machine_reason(hit: Hit, seconds_after_delivery: float | None, fast_click: float) -> str | None:
    """Why ``hit`` is a machine's rather than a reader's, or None. A heuristic, on purpose a narrow one:
    known image proxies (Apple's Mail Privacy Protection fetches with the bare ``Mozilla/5.0``), programs
    that say what they are, and clicks that come faster than a person reads."""
    agent = hit.user_agent.strip()
    lowered = agent.lower()
    if not agent:
        return "NoUserAgent"
    for fragment, name in _PROXIES:
        if fragment in lowered:
            return name
    if agent == "Mozilla/5.0":
        return "AppleMailPrivacyProtection"
    if any(fragment in lowered for fragment in _PROGRAMS):
        return "Program"
    if hit.kind == "Click" and seconds_after_delivery is not None and seconds_after_delivery <= fast_click:
        return "ClickSoonAfterDelivery"
    return None


def iso(when: dt.datetime) -> str:
    """SES's timestamps: ISO 8601 in UTC with milliseconds (``2017-08-09T22:00:19.652Z``)."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class Tracking:
    def __init__(self, db: Database, settings: Settings, box: SecretBox) -> None:
        self.db = db
        self.settings = settings
        self.box = box
        self.signer = Signer(box, _KEY_LABEL)
        self._record = Work("opens and clicks", self._write)

    def sign(self, *parts: str) -> str:
        return self.signer.sign(*parts)

    def verify(self, signature: str, *parts: str) -> bool:
        return self.signer.verify(signature, *parts)

    # -- URLs -------------------------------------------------------------------------------------

    def _base(self, plan: Plan, scheme: str) -> str:
        if plan.domain:
            return f"{scheme}://{plan.domain}"
        # Without a custom domain, this server as people reach it, in the scheme it is served in.
        return (self.settings.public_url or f"http://{self.settings.http}").rstrip("/")

    def pixel_url(self, plan: Plan, message_id: str) -> str:
        scheme = "http" if plan.https_policy == "OPTIONAL" else "https"  # REQUIRE, REQUIRE_OPEN_ONLY
        return f"{self._base(plan, scheme)}/{OPEN_PATH}/{message_id}/{self.sign(OPEN_PATH, message_id)}"

    def click_url(self, plan: Plan, message_id: str, link: str, tags: str) -> str:
        """The redirect for ``link``: in the link's own scheme unless HttpsPolicy is REQUIRE (SES)."""
        scheme = "https" if plan.https_policy == "REQUIRE" else link.split(":", 1)[0].lower()
        signature = self.sign(CLICK_PATH, message_id, link, tags)
        return (
            f"{self._base(plan, scheme)}/{CLICK_PATH}/{link.translate(_SEGMENT)}/"
            f"{tags.translate(_SEGMENT) or NO_TAGS}/{message_id}/{signature}"
        )

    async def apply(self, plan: Plan, message_id: str, body: bytes) -> bytes:
        """The message as it goes out with ``plan``'s tracking."""
        rewriter = html_tracking.Rewriter(
            pixel=self.pixel_url(plan, message_id) if plan.opens else None,
            click=(lambda link, tags: self.click_url(plan, message_id, link, tags)) if plan.clicks else None,
        )
        try:
            if len(body) <= INLINE_BYTES:
                return html_tracking.rewrite_message(body, rewriter)
            return await asyncio.to_thread(html_tracking.rewrite_message, body, rewriter)
        except Exception:  # a message the rewriting cannot read still goes out, untracked
            log.exception("tracking could not rewrite message %s; it is sent untracked", message_id)
            return body

    # -- the endpoints' side ----------------------------------------------------------------------

    def opened(self, message_id: str, signature: str) -> bool:
        """Whether a pixel URL's path segments are one this server made."""
        return bool(_MESSAGE_ID.fullmatch(message_id)) and self.verify(signature, OPEN_PATH, message_id)

    def clicked(self, segments: list[str]) -> tuple[str, str, str] | None:
        """The (message id, link, tags) of a click URL's raw path segments after ``L0``, when they are
        one this server made; None for anything else."""
        if len(segments) != 4:
            return None
        link, tags, message_id, signature = unquote(segments[0]), unquote(segments[1]), *segments[2:]
        tags = "" if tags == NO_TAGS else tags
        if not _MESSAGE_ID.fullmatch(message_id) or not html_tracking.trackable(link):
            return None
        if not self.verify(signature, CLICK_PATH, message_id, link, tags):
            return None
        return message_id, link, tags

    async def record(self, hit: Hit) -> bool:
        """Write the Open or Click record (with the next group commit); whether one was written (not for
        a message unknown here or sent more than ``tracking.collect_days`` ago)."""
        recorded: bool = await self.db.writer.submit(self._record, hit)
        return recorded

    async def _write(self, s: AsyncSession, hits: list[Hit]) -> list[bool]:
        ids = sorted({h.message_id for h in hits})
        messages = {
            r.id: r
            for r in await s.execute(
                sa.select(Message.id, Message.account_id, Message.region, Message.created_at).where(
                    Message.id.in_(ids)
                )
            )
        }
        delivered: dict[str, dt.datetime] = {}
        if any(h.kind == "Click" for h in hits) and messages:
            first = sa.func.min(DeliveryEvent.created_at)
            q = (
                sa.select(DeliveryEvent.message_id, first)
                .where(DeliveryEvent.message_id.in_(list(messages)), DeliveryEvent.event_type == "Delivery")
                .group_by(DeliveryEvent.message_id)
            )
            delivered = {m: when for m, when in await s.execute(q)}
        window = dt.timedelta(days=self.settings.tracking.collect_days)
        fast = self.settings.tracking.machine_click_seconds
        rows: list[dict[str, Any]] = []
        outcomes: list[bool] = []
        for hit in hits:
            message = messages.get(hit.message_id)
            if message is None or hit.at - message.created_at > window:
                outcomes.append(False)
                continue
            arrived = delivered.get(hit.message_id, message.created_at)
            detail: dict[str, Any] = {
                "ipAddress": hit.ip_address,
                "timestamp": iso(hit.at),
                "userAgent": hit.user_agent,
            }
            if hit.kind == "Click":
                detail["link"] = hit.link
                detail["linkTags"] = html_tracking.parse_tags(hit.tags)
            if reason := machine_reason(hit, (hit.at - arrived).total_seconds(), fast):
                detail["machine"] = reason  # Sesame's own field; SES's are as SES writes them
            rows.append(
                {
                    "message_id": hit.message_id,
                    "account_id": message.account_id,
                    "region": message.region,
                    "event_type": hit.kind,
                    "created_at": hit.at,
                    "detail": detail,
                }
            )
            outcomes.append(True)
        await insert(s, DeliveryEvent, rows)
        return outcomes
