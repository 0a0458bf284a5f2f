"""Contact lists and contacts (SES v2 list management, reference 11.1).

An account has at most one list per region, with at most 20 topics. A contact's subscription to a
topic is its explicit preference when it has one, else the topic's ``DefaultSubscriptionStatus``;
``UnsubscribeAll`` overrides both. Sends with ``ListManagementOptions`` read that here
(``enrol``), and unsubscribing writes it back (``change_preferences``), old and new preferences
returned so that a Subscription record can show both.

Contacts are keyed by the lower-cased address, as sends and suppression compare addresses; the
spelling the contact was created with is what the API shows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.addresses import IllegalAddress, bare_address
from sesame.errors import AlreadyExists, InvalidRequest, LimitExceeded, NotFound
from sesame.storage.db import Database
from sesame.storage.models import Contact, ContactList, utcnow
from sesame.storage.upserts import upsert

MAX_LISTS = 1  # per account and region [DG:sending-email-list-management]
MAX_TOPICS = 20
MAX_PAGE = 1000
OPT_IN, OPT_OUT = "OPT_IN", "OPT_OUT"
STATUSES = (OPT_IN, OPT_OUT)


class ContactListNotFound(NotFound):
    def __init__(self, name: str) -> None:
        super().__init__(f"List with name {name} does not exist.")


class ContactListExists(AlreadyExists):
    def __init__(self, name: str) -> None:
        super().__init__(f"List with name {name} already exists.")


class TooManyContactLists(LimitExceeded):
    pass


class ContactNotFound(NotFound):
    def __init__(self, address: str, list_name: str) -> None:
        super().__init__(f"Contact {address} does not exist in list {list_name}.")


class ContactExists(AlreadyExists):
    def __init__(self, address: str, list_name: str) -> None:
        super().__init__(f"Contact {address} already exists in list {list_name}.")


class InvalidContactList(InvalidRequest):
    pass


def key(address: str) -> str:
    return address.strip().lower()


@dataclass(frozen=True)
class Preferences:
    """A contact's choices: explicit per-topic statuses and the unsubscribe-all switch."""

    topics: Mapping[str, str]
    unsubscribe_all: bool

    def status(self, topic: Mapping[str, Any]) -> str:
        """The contact's effective status for ``topic`` (a stored topic dict)."""
        if self.unsubscribe_all:
            return OPT_OUT
        return self.topics.get(topic["TopicName"], topic["DefaultSubscriptionStatus"])


@dataclass(frozen=True)
class Change:
    """What an unsubscribe did: the contact's preferences over every topic before and after."""

    list_name: str
    old: Preferences
    new: Preferences
    topics: list[dict[str, Any]]


@dataclass(frozen=True)
class ListManagement:
    """A send's ``ListManagementOptions``: the contact list, and the topic the mail is about."""

    list_name: str
    topic: str | None = None

    @classmethod
    def of_header(cls, value: str) -> ListManagement:
        """``X-SES-LIST-MANAGEMENT-OPTIONS: {contactListName}; topic={topicName}`` (topic optional)."""
        name, _, rest = value.partition(";")
        topic = None
        for item in rest.split(";"):
            k, _, v = item.partition("=")
            if k.strip().lower() == "topic" and v.strip():
                topic = v.strip()
        if not name.strip():
            raise InvalidContactList("X-SES-LIST-MANAGEMENT-OPTIONS names no contact list.")
        return cls(name.strip(), topic)


def check_topics(topics: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if len(topics) > MAX_TOPICS:
        raise TooManyContactLists(f"A contact list can have at most {MAX_TOPICS} topics.")
    names = [t["TopicName"] for t in topics]
    if len(set(names)) != len(names):
        raise InvalidContactList("Topic names must be unique within a contact list.")
    out = []
    for t in topics:
        if not t["TopicName"] or not t["DisplayName"]:
            raise InvalidContactList("A topic needs a TopicName and a DisplayName.")
        topic = {k: t[k] for k in ("TopicName", "DisplayName", "DefaultSubscriptionStatus")}
        if t.get("Description") is not None:
            topic["Description"] = t["Description"]
        out.append(topic)
    return out


def check_address(address: str) -> str:
    try:
        bare = bare_address(address)
    except IllegalAddress as exc:
        raise InvalidContactList(f"Invalid email address {address!r}: {exc.message}.") from None
    if bare != address.strip():
        raise InvalidContactList(f"Invalid email address {address!r}.")
    return bare


def check_attributes(data: str | None) -> str | None:
    """``AttributesData`` must hold a JSON object [DG]."""
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise InvalidContactList("AttributesData must be a JSON object.")
    return data


def check_preferences(
    topics: list[dict[str, Any]], preferences: Iterable[Mapping[str, str]] | None
) -> dict[str, str]:
    known = {t["TopicName"] for t in topics}
    out: dict[str, str] = {}
    for p in preferences or ():
        name = p["TopicName"]
        if name not in known:
            raise InvalidContactList(f"Topic {name} does not exist in the contact list.")
        if name in out:
            raise InvalidContactList(f"Topic {name} is given more than once.")
        out[name] = p["SubscriptionStatus"]
    return out


class ContactLists:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- lists ------------------------------------------------------------------------------------

    async def create_list(
        self, account_id: str, region: str, name: str, topics: list[dict[str, Any]], description: str | None
    ) -> None:
        checked = check_topics(topics)
        async with self.db.write() as s:
            if await s.get(ContactList, (account_id, region, name)) is not None:
                raise ContactListExists(name)
            count = await s.scalar(
                sa.select(sa.func.count())
                .select_from(ContactList)
                .where(ContactList.account_id == account_id, ContactList.region == region)
            )
            if (count or 0) >= MAX_LISTS:
                raise TooManyContactLists("An account can have only one contact list in a region.")
            now = utcnow()
            s.add(
                ContactList(
                    account_id=account_id,
                    region=region,
                    name=name,
                    description=description,
                    topics=checked,
                    created_at=now,
                    updated_at=now,
                )
            )

    async def get_list(self, account_id: str, region: str, name: str) -> ContactList:
        async with self.db.read() as s:
            row = await s.get(ContactList, (account_id, region, name))
        if row is None:
            raise ContactListNotFound(name)
        return row

    async def page_lists(
        self, account_id: str, region: str, after: str | None, limit: int
    ) -> tuple[list[ContactList], str | None]:
        q = sa.select(ContactList).where(ContactList.account_id == account_id, ContactList.region == region)
        return await self.db.page(q, ContactList.name, after, limit)

    async def update_list(
        self, account_id: str, region: str, name: str, topics: list[dict[str, Any]], description: str | None
    ) -> None:
        """UpdateContactList replaces the topics and the description."""
        checked = check_topics(topics)
        async with self.db.write() as s:
            row = await s.get(ContactList, (account_id, region, name), with_for_update=True)
            if row is None:
                raise ContactListNotFound(name)
            row.topics = checked
            row.description = description
            row.updated_at = utcnow()

    async def delete_list(self, account_id: str, region: str, name: str) -> None:
        """The list and all its contacts."""
        async with self.db.write() as s:
            row = await s.get(ContactList, (account_id, region, name))
            if row is None:
                raise ContactListNotFound(name)
            await s.execute(sa.delete(Contact).where(*_of_list(account_id, region, name)))
            await s.delete(row)

    # -- contacts ---------------------------------------------------------------------------------

    async def create_contact(
        self,
        account_id: str,
        region: str,
        list_name: str,
        address: str,
        preferences: Iterable[Mapping[str, str]] | None,
        unsubscribe_all: bool,
        attributes: str | None,
    ) -> None:
        address = check_address(address)
        attributes = check_attributes(attributes)
        async with self.db.write() as s:
            lst = await _list(s, account_id, region, list_name)
            chosen = check_preferences(lst.topics, preferences)
            if await s.get(Contact, (account_id, region, list_name, key(address))) is not None:
                raise ContactExists(address, list_name)
            now = utcnow()
            s.add(
                Contact(
                    account_id=account_id,
                    region=region,
                    list_name=list_name,
                    address=key(address),
                    email_address=address,
                    preferences=chosen,
                    unsubscribe_all=unsubscribe_all,
                    attributes_data=attributes,
                    created_at=now,
                    updated_at=now,
                )
            )

    async def get_contact(
        self, account_id: str, region: str, list_name: str, address: str
    ) -> tuple[ContactList, Contact]:
        async with self.db.read() as s:
            lst = await _list(s, account_id, region, list_name)
            row = await s.get(Contact, (account_id, region, list_name, key(address)))
        if row is None:
            raise ContactNotFound(address, list_name)
        return lst, row

    async def update_contact(
        self,
        account_id: str,
        region: str,
        list_name: str,
        address: str,
        preferences: Iterable[Mapping[str, str]] | None,
        unsubscribe_all: bool,
        attributes: str | None,
    ) -> None:
        """Full replacement: preferences not given are dropped, as SES documents."""
        attributes = check_attributes(attributes)
        async with self.db.write() as s:
            lst = await _list(s, account_id, region, list_name)
            chosen = check_preferences(lst.topics, preferences)
            row = await s.get(Contact, (account_id, region, list_name, key(address)), with_for_update=True)
            if row is None:
                raise ContactNotFound(address, list_name)
            row.preferences = chosen
            row.unsubscribe_all = unsubscribe_all
            row.attributes_data = attributes
            row.updated_at = utcnow()

    async def delete_contact(self, account_id: str, region: str, list_name: str, address: str) -> None:
        async with self.db.write() as s:
            await _list(s, account_id, region, list_name)
            done = await s.execute(
                sa.delete(Contact).where(
                    *_of_list(account_id, region, list_name), Contact.address == key(address)
                )
            )
            if not done.rowcount:  # type: ignore[attr-defined]
                raise ContactNotFound(address, list_name)

    async def page_contacts(
        self,
        account_id: str,
        region: str,
        list_name: str,
        status: str | None,
        topic: str | None,
        use_default: bool,
        after: str | None,
        limit: int,
    ) -> tuple[ContactList, list[Contact], str | None]:
        """One page of the list's contacts in address order that pass the ListContacts filter.

        ``status`` alone: OPT_OUT selects contacts unsubscribed from all topics, OPT_IN the others.
        With ``topic``: a contact's status for that topic (its explicit preference; the topic's default
        only when ``use_default``; OPT_OUT for an unsubscribe-all contact), contacts without one left
        out, then compared with ``status`` when given. The filter runs over the rows in batches, so a
        page of a sparse filter reads ahead until it is full."""
        lst = await self.get_list(account_id, region, list_name)
        wanted = next((t for t in lst.topics if t["TopicName"] == topic), None)
        if topic is not None and wanted is None:
            raise InvalidContactList(f"Topic {topic} does not exist in the contact list.")

        def passes(c: Contact) -> bool:
            if wanted is None:
                return status is None or (status == OPT_OUT) == c.unsubscribe_all
            if c.unsubscribe_all:
                found: str | None = OPT_OUT
            else:
                found = c.preferences.get(wanted["TopicName"])
                if found is None and use_default:
                    found = wanted["DefaultSubscriptionStatus"]
            return found is not None and (status is None or found == status)

        page: list[Contact] = []
        cursor = after
        async with self.db.read() as s:
            while True:
                q = sa.select(Contact).where(*_of_list(account_id, region, list_name))
                if cursor is not None:
                    q = q.where(Contact.address > cursor)
                batch = list(await s.scalars(q.order_by(Contact.address).limit(MAX_PAGE)))
                for c in batch:
                    if passes(c):
                        if len(page) == limit:
                            return lst, page, page[-1].address
                        page.append(c)
                if len(batch) < MAX_PAGE:
                    return lst, page, None
                cursor = batch[-1].address

    # -- sending and unsubscribing ----------------------------------------------------------------

    async def topics(self, account_id: str, region: str, list_name: str) -> list[dict[str, Any]] | None:
        """The list's topics, or None when it does not exist."""
        async with self.db.read() as s:
            row = await s.get(ContactList, (account_id, region, list_name))
        return None if row is None else row.topics

    async def enrol(
        self, account_id: str, region: str, list_name: str, addresses: list[str]
    ) -> dict[str, Preferences]:
        """A send's recipients' preferences, the recipients not on the list added first (SES adds
        unknown recipients of a send with ListManagementOptions [DG])."""
        keys = {key(a): a for a in addresses}
        async with self.db.write() as s:
            found = {
                c.address: c
                for c in await s.scalars(
                    sa.select(Contact).where(
                        *_of_list(account_id, region, list_name), Contact.address.in_(list(keys))
                    )
                )
            }
            new = [k for k in keys if k not in found]
            if new:
                now = utcnow()
                rows: list[dict[str, Any]] = [
                    dict(
                        account_id=account_id,
                        region=region,
                        list_name=list_name,
                        address=k,
                        email_address=keys[k],
                        preferences={},
                        unsubscribe_all=False,
                        attributes_data=None,
                        created_at=now,
                        updated_at=now,
                    )
                    for k in new
                ]
                # Another send may add the same contact at once: its row stands.
                await s.execute(
                    upsert(self.db.is_sqlite, Contact, ["account_id", "region", "list_name", "address"]), rows
                )
        return {
            address: Preferences(dict(found[k].preferences), found[k].unsubscribe_all)
            if k in found
            else Preferences({}, False)
            for k, address in keys.items()
        }

    async def change_preferences(
        self,
        account_id: str,
        region: str,
        list_name: str,
        address: str,
        topics: Mapping[str, str] | None,
        unsubscribe_all: bool | None,
    ) -> Change | None:
        """Set some topics' statuses and/or the unsubscribe-all switch of one contact (an unsubscribe
        link, the preferences page, a mailto unsubscribe); None when the list or the contact is gone.
        The contact row is locked so that two changes at once both land."""
        async with self.db.write() as s:
            lst = await s.get(ContactList, (account_id, region, list_name))
            if lst is None:
                return None
            row = await s.get(Contact, (account_id, region, list_name, key(address)), with_for_update=True)
            if row is None:
                return None
            known = {t["TopicName"] for t in lst.topics}
            old = Preferences(dict(row.preferences), row.unsubscribe_all)
            chosen = dict(row.preferences)
            for name, value in (topics or {}).items():
                if name in known and value in STATUSES:
                    chosen[name] = value
            row.preferences = chosen
            if unsubscribe_all is not None:
                row.unsubscribe_all = unsubscribe_all
            row.updated_at = utcnow()
            new = Preferences(chosen, row.unsubscribe_all)
            return Change(list_name, old, new, list(lst.topics))


def _of_list(account_id: str, region: str, name: str) -> tuple[Any, ...]:
    return (Contact.account_id == account_id, Contact.region == region, Contact.list_name == name)


async def _list(s: AsyncSession, account_id: str, region: str, name: str) -> ContactList:
    row = await s.get(ContactList, (account_id, region, name))
    if row is None:
        raise ContactListNotFound(name)
    return row
