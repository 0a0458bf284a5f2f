"""Sending with list management (reference 11.3) and unsubscribing (11.4), with the Subscription record
each change publishes (11.5).

A send that names a contact list (v2 ``ListManagementOptions``, the ``X-SES-LIST-MANAGEMENT-OPTIONS``
header) has its recipients looked up on the list: an unknown one is added, an unsubscribed one (from
the topic, or from everything) is not sent to, and bounces as ``UnsubscribedRecipient``. Mail to a
single recipient gets the unsubscribe headers of RFC 2369 and RFC 8058 (the sender's own are replaced)
and its ``{{amazonSESUnsubscribeUrl}}`` placeholders, at most two in each text and HTML part, become
the link to the recipient's preferences page. All of it happens when the mail is accepted, before it is
stored, so the capture, the DKIM signature and the recipient see the same message.

A link names one account, list, topic (or none), contact and message, signed with a key derived from
the data directory's secret keys (domain/secrets.Signer), so nobody can unsubscribe someone else or
walk the list, and no look-up is needed to trust it. The same token, as the subject of a mail to
``unsubscribe@<return-path domain>``, is the ``mailto:`` unsubscribe the MX takes.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import email.parser
import email.policy
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from sesame.config import Settings
from sesame.domain.contact_lists import OPT_IN, OPT_OUT, Change, ContactLists, ListManagement, Preferences
from sesame.domain.secrets import SecretBox, Signer
from sesame.domain.sending import Outgoing, SendError
from sesame.domain.tracking import iso
from sesame.mail import mime
from sesame.mail.rewrite import rewrite_parts
from sesame.storage.db import Database
from sesame.storage.models import DeliveryEvent, Message, utcnow

log = logging.getLogger(__name__)

PLACEHOLDER = "{{amazonSESUnsubscribeUrl}}"
MAX_PLACEHOLDERS = 2  # per part: "only the first two occurrences are replaced" [DG]
PATH = "unsubscribe"
MAILBOX = "unsubscribe"  # the local part of the mailto: address
ONE_CLICK = "List-Unsubscribe=One-Click"  # RFC 8058 §3.1, the header value and the POST body
#: The Subscription record's ``source`` (SES documents UnsubscribeHeader; the page's name is ours).
SOURCE_HEADER = "UnsubscribeHeader"
SOURCE_PAGE = "UnsubscribePage"
_KEY_LABEL = b"sesame list unsubscribe"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{8,2048}\.[A-Za-z0-9_-]{22}")


@dataclass(frozen=True)
class Link:
    """What an unsubscribe link stands for."""

    account_id: str
    region: str
    list_name: str
    topic: str | None
    address: str
    message_id: str

    def parts(self) -> tuple[str, ...]:
        return (self.account_id, self.region, self.list_name, self.topic or "", self.address, self.message_id)


def _event_status(status: str) -> str:
    """The record spells statuses OptIn / OptOut where the API says OPT_IN / OPT_OUT (reference 11.5)."""
    return {OPT_IN: "OptIn", OPT_OUT: "OptOut"}[status]


def _preferences(prefs: Preferences, topics: list[dict[str, Any]]) -> dict[str, Any]:
    """Every topic of the list with the contact's status for it (reference 11.5: "map of all topics")."""
    return {
        "unsubscribeAll": prefs.unsubscribe_all,
        "topicSubscriptionStatus": [
            {
                "topicName": t["TopicName"],
                "subscriptionStatus": _event_status(
                    prefs.topics.get(t["TopicName"], t["DefaultSubscriptionStatus"])
                ),
            }
            for t in topics
        ],
    }


def subscription_detail(change: Change, source: str, when: dt.datetime) -> dict[str, Any]:
    return {
        "contactList": change.list_name,
        "timestamp": iso(when),
        "source": source,
        "newTopicPreferences": _preferences(change.new, change.topics),
        "oldTopicPreferences": _preferences(change.old, change.topics),
    }


class Unsubscribe:
    def __init__(self, db: Database, settings: Settings, box: SecretBox, contact_lists: ContactLists) -> None:
        self.db = db
        self.settings = settings
        self.signer = Signer(box, _KEY_LABEL)
        self.contact_lists = contact_lists
        self.mail_domain = settings.delivery.return_path_domain.lower().rstrip(".")

    # -- links ------------------------------------------------------------------------------------

    def token(self, link: Link) -> str:
        payload = base64.urlsafe_b64encode("\0".join(link.parts()).encode()).rstrip(b"=").decode()
        return f"{payload}.{self.signer.sign(*link.parts())}"

    def link(self, token: str) -> Link | None:
        """The link a token stands for; None if it was not made here or was altered."""
        token = token.strip()
        if not _TOKEN.fullmatch(token):
            return None
        payload, signature = token.split(".")
        try:
            parts = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode().split("\0")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        if len(parts) != 6 or not self.signer.verify(signature, *parts):
            return None
        account_id, region, list_name, topic, address, message_id = parts
        return Link(account_id, region, list_name, topic or None, address, message_id)

    def url(self, token: str) -> str:
        base = (self.settings.public_url or f"http://{self.settings.http}").rstrip("/")
        return f"{base}/{PATH}/{token}"

    def mailto(self, token: str) -> str | None:
        """The mailto: unsubscribe, when mail to this server has a domain (``delivery.return_path_domain``:
        the MX takes mail for it)."""
        if not self.mail_domain:
            return None
        return f"mailto:{MAILBOX}@{self.mail_domain}?subject={quote(token)}"

    def is_mailbox(self, address: str) -> bool:
        local, _, domain = address.strip().strip("<>").rpartition("@")
        return (
            bool(self.mail_domain)
            and local.lower() == MAILBOX
            and domain.lower().rstrip(".") == self.mail_domain
        )

    # -- sending ----------------------------------------------------------------------------------

    async def apply(self, account_id: str, region: str, msg: Outgoing, options: ListManagement) -> set[str]:
        """Look the recipients up on the list (adding the unknown ones), and for a single subscribed
        recipient put the unsubscribe headers and links into the message. The lower-cased recipients
        that must not be sent to."""
        topics = await self.contact_lists.topics(account_id, region, options.list_name)
        if topics is None:
            raise SendError("list-missing", f"List with name {options.list_name} does not exist.")
        topic = None
        if options.topic is not None:
            topic = next((t for t in topics if t["TopicName"] == options.topic), None)
            if topic is None:
                raise SendError(
                    "list-missing", f"Topic {options.topic} does not exist in list {options.list_name}."
                )
        preferences = await self.contact_lists.enrol(account_id, region, options.list_name, msg.recipients)
        unsubscribed = {
            address.lower()
            for address, prefs in preferences.items()
            if prefs.unsubscribe_all or (topic is not None and prefs.status(topic) == OPT_OUT)
        }
        if len(msg.recipients) == 1 and not unsubscribed:
            link = Link(
                account_id, region, options.list_name, options.topic, msg.recipients[0], msg.message_id
            )
            msg.body = self._links(msg.body, self.token(link))
        return unsubscribed

    def _links(self, body: bytes, token: str) -> bytes:
        url = self.url(token)
        targets = [f"<{url}>"]
        if mailto := self.mailto(token):
            targets.append(f"<{mailto}>")
        body = mime.remove_headers(body, ["list-unsubscribe", "list-unsubscribe-post"])
        body = mime.add_headers(
            body, [("List-Unsubscribe", ", ".join(targets)), ("List-Unsubscribe-Post", ONE_CLICK)]
        )

        def transform(ctype: str, text: str) -> str:
            return text.replace(PLACEHOLDER, url, MAX_PLACEHOLDERS) if PLACEHOLDER in text else text

        return rewrite_parts(body, transform)

    # -- unsubscribing ----------------------------------------------------------------------------

    async def one_click(self, link: Link, source: str = SOURCE_HEADER) -> Change | None:
        """RFC 8058's one-click POST (and the mailto: unsubscribe): the link's topic, or every topic when
        it names none (reference 11.4)."""
        if link.topic is not None:
            return await self.change(link, {link.topic: OPT_OUT}, None, source)
        return await self.change(link, None, True, source)

    async def change(
        self, link: Link, topics: dict[str, str] | None, unsubscribe_all: bool | None, source: str
    ) -> Change | None:
        """Change the contact's preferences and publish the Subscription record through the configuration
        set of the message the link came in (when that message is still kept)."""
        change = await self.contact_lists.change_preferences(
            link.account_id, link.region, link.list_name, link.address, topics, unsubscribe_all
        )
        if change is None or change.old == change.new:
            return change
        now = utcnow()
        async with self.db.write() as s:
            kept = await s.scalar(sa.select(Message.id).where(Message.id == link.message_id))
            if kept is not None:
                s.add(
                    DeliveryEvent(
                        message_id=link.message_id,
                        account_id=link.account_id,
                        region=link.region,
                        event_type="Subscription",
                        created_at=now,
                        detail=subscription_detail(change, source, now),
                    )
                )
        return change

    async def receive(self, raw: bytes) -> str:
        """A mail to the unsubscribe mailbox: the token is its subject (our mailto: link puts it there)."""
        headers = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw[:65536])
        subject = str(headers.get("subject", "")).strip()
        found = next((self.link(word) for word in subject.split() if _TOKEN.fullmatch(word)), None)
        if found is None:
            return "unsubscribe mail without a valid link"
        change = await self.one_click(found)
        return "unsubscribed" if change is not None else "unsubscribe for a contact that is gone"
