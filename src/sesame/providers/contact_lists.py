"""SES v2 contact lists and contacts: adapters from the operations to ``domain.contact_lists``."""

from __future__ import annotations

from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.domain.contact_lists import MAX_PAGE, ContactLists, InvalidContactList, Preferences
from sesame.domain.tags import Tags
from sesame.providers.v2_identities import decode_token, encode_token
from sesame.storage.models import Contact, ContactList


class ContactListsV2:
    contact_lists: ContactLists
    tags: Tags

    async def create_contact_list(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ContactListName"]
        await self.contact_lists.create_list(
            ctx.account_id, ctx.region, name, params.get("Topics") or [], params.get("Description")
        )
        if params.get("Tags"):
            await self.tags.tag(ctx.account_id, ctx.region, _arn(ctx, name), params["Tags"])
        return {}

    async def get_contact_list(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.contact_lists.get_list(ctx.account_id, ctx.region, params["ContactListName"])
        out: dict[str, Any] = {
            "ContactListName": row.name,
            "Topics": row.topics,
            "CreatedTimestamp": row.created_at,
            "LastUpdatedTimestamp": row.updated_at,
            "Tags": await self.tags.list_tags(ctx.account_id, ctx.region, _arn(ctx, row.name)),
        }
        if row.description is not None:
            out["Description"] = row.description
        return out

    async def list_contact_lists(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rows, last = await self.contact_lists.page_lists(
            ctx.account_id, ctx.region, decode_token(params.get("NextToken")), _page_size(params)
        )
        out: dict[str, Any] = {
            "ContactLists": [{"ContactListName": r.name, "LastUpdatedTimestamp": r.updated_at} for r in rows]
        }
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def update_contact_list(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.contact_lists.update_list(
            ctx.account_id,
            ctx.region,
            params["ContactListName"],
            params.get("Topics") or [],
            params.get("Description"),
        )
        return {}

    async def delete_contact_list(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ContactListName"]
        await self.contact_lists.delete_list(ctx.account_id, ctx.region, name)
        await self.tags.drop_resource(ctx.account_id, _arn(ctx, name))
        return {}

    async def create_contact(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.contact_lists.create_contact(
            ctx.account_id,
            ctx.region,
            params["ContactListName"],
            params["EmailAddress"],
            params.get("TopicPreferences"),
            bool(params.get("UnsubscribeAll", False)),
            params.get("AttributesData"),
        )
        return {}

    async def get_contact(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        lst, row = await self.contact_lists.get_contact(
            ctx.account_id, ctx.region, params["ContactListName"], params["EmailAddress"]
        )
        out = {
            "ContactListName": lst.name,
            **_contact(lst, row),
            "CreatedTimestamp": row.created_at,
        }
        if row.attributes_data is not None:
            out["AttributesData"] = row.attributes_data
        return out

    async def update_contact(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.contact_lists.update_contact(
            ctx.account_id,
            ctx.region,
            params["ContactListName"],
            params["EmailAddress"],
            params.get("TopicPreferences"),
            bool(params.get("UnsubscribeAll", False)),
            params.get("AttributesData"),
        )
        return {}

    async def delete_contact(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.contact_lists.delete_contact(
            ctx.account_id, ctx.region, params["ContactListName"], params["EmailAddress"]
        )
        return {}

    async def list_contacts(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        f = params.get("Filter") or {}
        topic_filter = f.get("TopicFilter") or {}
        lst, rows, last = await self.contact_lists.page_contacts(
            ctx.account_id,
            ctx.region,
            params["ContactListName"],
            f.get("FilteredStatus"),
            topic_filter.get("TopicName"),
            bool(topic_filter.get("UseDefaultIfPreferenceUnavailable", False)),
            decode_token(params.get("NextToken")),
            _page_size(params),
        )
        out: dict[str, Any] = {"Contacts": [_contact(lst, r) for r in rows]}
        if last:
            out["NextToken"] = encode_token(last)
        return out


def _arn(ctx: RequestContext, name: str) -> str:
    return ctx.arn(f"contact-list/{name}")


def _page_size(params: dict[str, Any]) -> int:
    size = params.get("PageSize")
    if size is None:
        return MAX_PAGE
    if not 1 <= size <= MAX_PAGE:
        raise InvalidContactList(f"PageSize must be between 1 and {MAX_PAGE}.")
    return int(size)


def _contact(lst: ContactList, row: Contact) -> dict[str, Any]:
    """A contact as the API shows it: its explicit preferences for the list's topics, and the
    defaults that apply to the topics it has not chosen."""
    prefs = Preferences(row.preferences, row.unsubscribe_all)
    topics = [t["TopicName"] for t in lst.topics]
    return {
        "EmailAddress": row.email_address,
        "TopicPreferences": [
            {"TopicName": n, "SubscriptionStatus": prefs.topics[n]} for n in topics if n in prefs.topics
        ],
        "TopicDefaultPreferences": [
            {"TopicName": t["TopicName"], "SubscriptionStatus": t["DefaultSubscriptionStatus"]}
            for t in lst.topics
            if t["TopicName"] not in prefs.topics
        ],
        "UnsubscribeAll": row.unsubscribe_all,
        "LastUpdatedTimestamp": row.updated_at,
    }
