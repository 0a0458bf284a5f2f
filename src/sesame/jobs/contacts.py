"""The CONTACT_LIST import destination: bulk PUT or DELETE of a contact list's contacts (reference 11.2).

CSV has a header line naming the columns: ``emailAddress`` (required), ``unsubscribeAll``,
``attributesData`` and one ``topicPreferences.<TopicName>`` column per topic, in any order. JSON lines
are ``{"emailAddress": …, "unsubscribeAll": bool, "attributesData": "<JSON object as a string>",
"topicPreferences": [{"topicName": …, "subscriptionStatus": "OPT_IN"|"OPT_OUT"}]}``. A PUT replaces a
contact that exists, as UpdateContact does; a DELETE needs only the address. A record that is not
well formed (address, status, a boolean, attributes that are not a JSON object) is a failed record.

Parsing runs on a worker thread without the database, so a preference for a topic the list does not
have is dropped when the batch is written (the list's topics read once per batch), as the API would
not store one either.
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from sesame.domain.contact_lists import STATUSES, ContactListNotFound, ContactLists, key
from sesame.jobs.sinks import ImportTarget, Record, RecordError
from sesame.jobs.suppression import ADDRESS, MAX_ADDRESS
from sesame.storage.bulk import BulkDelete, BulkUpsert
from sesame.storage.db import Database
from sesame.storage.models import Contact, ContactList, utcnow

_TOPIC_COLUMN = "topicPreferences."
_BOOLEANS = {"true": True, "false": False, "": False}

#: A parsed record: (key, address as written, {topic: status}, unsubscribe all, attributes JSON or None)
Row = tuple[str, str, dict[str, str], bool, str | None]


class ContactListSink:
    destination_type = "CONTACT_LIST"
    csv_header = True

    def __init__(self, db: Database, contact_lists: ContactLists) -> None:
        self.db = db
        self.contact_lists = contact_lists
        where = ["account_id", "region", "list_name"]
        self._put = BulkUpsert(
            db.is_sqlite,
            Contact,
            [*where, "address"],
            [*where, "created_at", "updated_at"],
            ["address", "email_address", "preferences", "unsubscribe_all", "attributes_data"],
            keep=("created_at",),
        )
        self._delete = BulkDelete(db.is_sqlite, Contact, where, "address")

    async def check(self, target: ImportTarget) -> None:
        name = target.destination["ContactListName"]
        if await self.contact_lists.topics(target.account_id, target.region, name) is None:
            raise ContactListNotFound(name)

    def parse(self, target: ImportTarget, record: Record) -> Row | None:
        if record.object is not None:
            return _checked(*_from_json(record.object))
        fields, header = record.fields or [], record.header or []
        if not header or "emailAddress" not in header:
            raise RecordError("the CSV header line must name an emailAddress column")
        if len(fields) != len(header):
            raise RecordError(f"expected {len(header)} fields, found {len(fields)}")
        values = dict(zip(header, (f.strip() for f in fields), strict=True))
        topics = {
            name[len(_TOPIC_COLUMN) :]: value.upper()
            for name, value in values.items()
            if name.startswith(_TOPIC_COLUMN) and value
        }
        flag = values.get("unsubscribeAll", "").lower()
        if flag not in _BOOLEANS:
            raise RecordError(f"unsubscribeAll must be true or false, not {flag!r}")
        return _checked(values["emailAddress"], topics, _BOOLEANS[flag], values.get("attributesData") or None)

    async def apply(self, s: AsyncSession, target: ImportTarget, rows: list[Row]) -> None:
        name = target.destination["ContactListName"]
        topics = await s.scalar(
            sa.select(ContactList.topics).where(
                ContactList.account_id == target.account_id,
                ContactList.region == target.region,
                ContactList.name == name,
            )
        )
        if topics is None:  # deleted while the job ran: the job fails, saying so
            raise ContactListNotFound(name)
        where = {"account_id": target.account_id, "region": target.region, "list_name": name}
        latest = {row[0]: row for row in rows}  # the last of an address's rows wins
        if target.action == "DELETE":
            await self._delete.execute(s, where, list(latest))
            return
        known = {t["TopicName"] for t in topics}
        now = utcnow()
        values = []
        for k, address, prefs, unsubscribe_all, attributes in latest.values():
            chosen = {t: v for t, v in prefs.items() if t in known}
            # SQLite's statement takes the JSON as text; PostgreSQL's typed array encodes it itself.
            values.append(
                (k, address, json.dumps(chosen) if self.db.is_sqlite else chosen, unsubscribe_all, attributes)
            )
        await self._put.execute(s, {**where, "created_at": now, "updated_at": now}, values)


def _from_json(obj: dict[str, Any]) -> tuple[Any, dict[str, str], Any, Any]:
    prefs: dict[str, str] = {}
    items = obj.get("topicPreferences") or []
    if not isinstance(items, list):
        raise RecordError("topicPreferences must be a list")
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("topicName"), str):
            raise RecordError("each topic preference needs a topicName")
        prefs[item["topicName"]] = str(item.get("subscriptionStatus", "")).upper()
    unsubscribe_all = obj.get("unsubscribeAll", False)
    if not isinstance(unsubscribe_all, bool):
        raise RecordError("unsubscribeAll must be true or false")
    return obj.get("emailAddress"), prefs, unsubscribe_all, obj.get("attributesData")


def _checked(address: Any, prefs: dict[str, str], unsubscribe_all: bool, attributes: Any) -> Row:
    if not isinstance(address, str):
        raise RecordError("emailAddress is missing or not a string")
    address = address.strip()
    if not address or len(address) > MAX_ADDRESS or not ADDRESS.fullmatch(address):
        raise RecordError(f"not a valid email address: {address!r}")
    for topic, status in prefs.items():
        if status not in STATUSES:
            raise RecordError(f"the status of topic {topic!r} must be OPT_IN or OPT_OUT, not {status!r}")
    if attributes is not None:
        if not isinstance(attributes, str):
            raise RecordError("attributesData must be a string holding a JSON object")
        try:
            parsed = json.loads(attributes)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            raise RecordError("attributesData must be a JSON object")
    return key(address), address, prefs, unsubscribe_all, attributes
