"""SES v1 receiving configuration (provider mixin): receipt rule sets, receipt rules, IP filters.

The store keeps rules in the API's own spelling, so these adapters pass them through; domain errors
become SES's codes (RuleSetDoesNotExist, CannotDelete, InvalidSnsTopic, …) in providers/errors.py.
"""

from __future__ import annotations

from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import InvalidParameterValue, ServiceError
from sesame.providers.v2_identities import decode_token, encode_token
from sesame.receiving.bounces import Bounces
from sesame.receiving.rules import ReceiptRules
from sesame.storage.models import ReceiptRuleSet


def _metadata(row: ReceiptRuleSet) -> dict[str, Any]:
    return {"Name": row.name, "CreatedTimestamp": row.created_at}


def _described(row: ReceiptRuleSet) -> dict[str, Any]:
    return {"Metadata": _metadata(row), "Rules": [dict(r) for r in row.rules or []]}


class ReceivingV1:
    receipt_rules: ReceiptRules
    bounces: Bounces

    async def send_bounce(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"MessageId": await self.bounces.send_bounce(ctx.account_id, ctx.region, params)}

    # -- rule sets ---------------------------------------------------------------------------------

    async def create_receipt_rule_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.create_set(ctx.account_id, ctx.region, params["RuleSetName"])
        return {}

    async def delete_receipt_rule_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.delete_set(ctx.account_id, ctx.region, params["RuleSetName"])
        return {}

    async def describe_receipt_rule_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return _described(await self.receipt_rules.get_set(ctx.account_id, ctx.region, params["RuleSetName"]))

    async def list_receipt_rule_sets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        try:
            after = decode_token(params.get("NextToken"))
        except ServiceError:
            raise InvalidParameterValue("The NextToken is not valid.") from None
        rows, last = await self.receipt_rules.page_sets(ctx.account_id, ctx.region, after)
        out: dict[str, Any] = {"RuleSets": [_metadata(r) for r in rows]}
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def clone_receipt_rule_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.clone_set(
            ctx.account_id, ctx.region, params["RuleSetName"], params["OriginalRuleSetName"]
        )
        return {}

    async def reorder_receipt_rule_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.reorder_set(
            ctx.account_id, ctx.region, params["RuleSetName"], list(params["RuleNames"])
        )
        return {}

    async def set_active_receipt_rule_set(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.receipt_rules.set_active(ctx.account_id, ctx.region, params.get("RuleSetName") or None)
        return {}

    async def describe_active_receipt_rule_set(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self.receipt_rules.active_set(ctx.account_id, ctx.region)
        return {} if row is None else _described(row)

    # -- rules -------------------------------------------------------------------------------------

    async def create_receipt_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.create_rule(
            ctx.account_id, ctx.region, params["RuleSetName"], params["Rule"], params.get("After")
        )
        return {}

    async def update_receipt_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.update_rule(
            ctx.account_id, ctx.region, params["RuleSetName"], params["Rule"]
        )
        return {}

    async def delete_receipt_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.delete_rule(
            ctx.account_id, ctx.region, params["RuleSetName"], params["RuleName"]
        )
        return {}

    async def describe_receipt_rule(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        rule = await self.receipt_rules.get_rule(
            ctx.account_id, ctx.region, params["RuleSetName"], params["RuleName"]
        )
        return {"Rule": rule}

    async def set_receipt_rule_position(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.set_rule_position(
            ctx.account_id, ctx.region, params["RuleSetName"], params["RuleName"], params.get("After")
        )
        return {}

    # -- IP filters --------------------------------------------------------------------------------

    async def create_receipt_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.create_filter(ctx.account_id, ctx.region, params["Filter"])
        return {}

    async def delete_receipt_filter(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.receipt_rules.delete_filter(ctx.account_id, ctx.region, params["FilterName"])
        return {}

    async def list_receipt_filters(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        return {"Filters": await self.receipt_rules.list_filters(ctx.account_id, ctx.region)}
