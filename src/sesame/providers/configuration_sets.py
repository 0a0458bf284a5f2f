"""Configuration-set operations, v1 and v2 (provider mixins), with their event destinations.

Domain errors (NotFound, AlreadyExists, …) reach each API's own error codes through providers/errors.py.
"""

from __future__ import annotations

from typing import Any

from sesame.awsapi.context import RequestContext
from sesame.awsapi.errors import InvalidParameterValue, ServiceError, service_errors
from sesame.domain.configuration_sets import ConfigurationSets
from sesame.domain.event_destinations import EventDestinations
from sesame.domain.tags import Tags
from sesame.providers.v2_identities import decode_token, encode_token

V1 = service_errors("ses")

#: v2 option groups a v2 call may set, as CreateConfigurationSet / GetConfigurationSet name them.
V2_GROUPS = (
    "TrackingOptions",
    "DeliveryOptions",
    "ReputationOptions",
    "SendingOptions",
    "SuppressionOptions",
    "VdmOptions",
    "ArchivingOptions",
    "MessageSecurityOptions",
)

# v1 spells event types in camel case and destinations with upper-case acronyms; the store uses v2's.
_V1_TYPES = {
    "send": "SEND",
    "reject": "REJECT",
    "bounce": "BOUNCE",
    "complaint": "COMPLAINT",
    "delivery": "DELIVERY",
    "open": "OPEN",
    "click": "CLICK",
    "renderingFailure": "RENDERING_FAILURE",
}
_V2_TYPES = {v: k for k, v in _V1_TYPES.items()}
_V1_SOURCES = {"messageTag": "MESSAGE_TAG", "emailHeader": "EMAIL_HEADER", "linkTag": "LINK_TAG"}
_V2_SOURCES = {v: k for k, v in _V1_SOURCES.items()}


def _from_v1(d: dict[str, Any]) -> dict[str, Any]:
    """A v1 EventDestination in the store's (v2) spelling."""
    out: dict[str, Any] = {
        "Enabled": bool(d.get("Enabled", False)),
        "MatchingEventTypes": [_V1_TYPES[t] for t in d.get("MatchingEventTypes") or []],
    }
    if (sns := d.get("SNSDestination")) is not None:
        out["SnsDestination"] = {"TopicArn": sns.get("TopicARN", "")}
    if (firehose := d.get("KinesisFirehoseDestination")) is not None:
        out["KinesisFirehoseDestination"] = {
            "IamRoleArn": firehose.get("IAMRoleARN", ""),
            "DeliveryStreamArn": firehose.get("DeliveryStreamARN", ""),
        }
    if (cloudwatch := d.get("CloudWatchDestination")) is not None:
        out["CloudWatchDestination"] = {
            "DimensionConfigurations": [
                {**c, "DimensionValueSource": _V1_SOURCES.get(c.get("DimensionValueSource", ""), "")}
                for c in cloudwatch.get("DimensionConfigurations") or []
            ]
        }
    return out


def _to_v1(d: dict[str, Any]) -> dict[str, Any] | None:
    """A stored destination as v1 shows it; None for the kinds v1 does not know (EventBridge, Pinpoint)."""
    out: dict[str, Any] = {
        "Name": d["Name"],
        "Enabled": d["Enabled"],
        "MatchingEventTypes": [_V2_TYPES[t] for t in d["MatchingEventTypes"] if t in _V2_TYPES],
    }
    if (sns := d.get("SnsDestination")) is not None:
        out["SNSDestination"] = {"TopicARN": sns["TopicArn"]}
    elif (firehose := d.get("KinesisFirehoseDestination")) is not None:
        out["KinesisFirehoseDestination"] = {
            "IAMRoleARN": firehose["IamRoleArn"],
            "DeliveryStreamARN": firehose["DeliveryStreamArn"],
        }
    elif (cloudwatch := d.get("CloudWatchDestination")) is not None:
        out["CloudWatchDestination"] = {
            "DimensionConfigurations": [
                {**c, "DimensionValueSource": _V2_SOURCES[c["DimensionValueSource"]]}
                for c in cloudwatch["DimensionConfigurations"]
            ]
        }
    else:
        return None
    return out


class ConfigurationSetsV1:
    configuration_sets: ConfigurationSets
    event_destinations: EventDestinations

    async def create_configuration_set_event_destination(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        given = params["EventDestination"]
        await self.event_destinations.create(
            ctx.account_id, ctx.region, params["ConfigurationSetName"], given["Name"], _from_v1(given)
        )
        return {}

    async def update_configuration_set_event_destination(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        given = params["EventDestination"]
        await self.event_destinations.update(
            ctx.account_id, ctx.region, params["ConfigurationSetName"], given["Name"], _from_v1(given)
        )
        return {}

    async def delete_configuration_set_event_destination(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.event_destinations.delete(
            ctx.account_id, ctx.region, params["ConfigurationSetName"], params["EventDestinationName"]
        )
        return {}

    async def create_configuration_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.configuration_sets.create(
            ctx.account_id, ctx.region, params["ConfigurationSet"]["Name"], {}
        )
        return {}

    async def delete_configuration_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        await self.configuration_sets.delete(ctx.account_id, ctx.region, params["ConfigurationSetName"])
        return {}

    async def describe_configuration_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.configuration_sets.get(ctx.account_id, ctx.region, params["ConfigurationSetName"])
        wanted = set(params.get("ConfigurationSetAttributeNames") or [])
        options = row.options or {}
        out: dict[str, Any] = {"ConfigurationSet": {"Name": row.name}}
        if "eventDestinations" in wanted:
            shown = (_to_v1(d) for d in options.get("EventDestinations") or [])
            out["EventDestinations"] = [d for d in shown if d is not None]
        if "trackingOptions" in wanted and options.get("TrackingOptions", {}).get("CustomRedirectDomain"):
            out["TrackingOptions"] = {
                "CustomRedirectDomain": options["TrackingOptions"]["CustomRedirectDomain"]
            }
        if "deliveryOptions" in wanted and options.get("DeliveryOptions", {}).get("TlsPolicy"):
            out["DeliveryOptions"] = {"TlsPolicy": options["DeliveryOptions"]["TlsPolicy"].capitalize()}
        if "reputationOptions" in wanted:
            reputation = options.get("ReputationOptions") or {}
            out["ReputationOptions"] = {
                "SendingEnabled": options.get("SendingOptions", {}).get("SendingEnabled", True),
                "ReputationMetricsEnabled": reputation.get("ReputationMetricsEnabled", False),
            }
            if reputation.get("LastFreshStart"):
                out["ReputationOptions"]["LastFreshStart"] = reputation["LastFreshStart"]
        return out

    async def list_configuration_sets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("MaxItems") or 1000
        try:
            after = decode_token(params.get("NextToken"))
        except ServiceError:
            raise InvalidParameterValue("The NextToken is not valid.") from None
        rows, last = await self.configuration_sets.page(ctx.account_id, ctx.region, after, limit)
        out: dict[str, Any] = {"ConfigurationSets": [{"Name": r.name} for r in rows]}
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def _put_v1(self, ctx: RequestContext, name: str, group: str, value: dict[str, Any] | None) -> None:
        await self.configuration_sets.put(ctx.account_id, ctx.region, name, group, value)

    async def update_configuration_set_sending_enabled(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        enabled = bool(params["Enabled"])
        await self._put_v1(ctx, params["ConfigurationSetName"], "SendingOptions", {"SendingEnabled": enabled})
        return {}

    async def update_configuration_set_reputation_metrics_enabled(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self._v1_get(ctx, params["ConfigurationSetName"])
        reputation = {
            **(row.options or {}).get("ReputationOptions", {}),
            "ReputationMetricsEnabled": params["Enabled"],
        }
        await self._put_v1(ctx, row.name, "ReputationOptions", reputation)
        return {}

    async def _v1_get(self, ctx: RequestContext, name: str) -> Any:
        return await self.configuration_sets.get(ctx.account_id, ctx.region, name)

    async def put_configuration_set_delivery_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self._v1_get(ctx, params["ConfigurationSetName"])
        given = dict(params.get("DeliveryOptions") or {})
        if "TlsPolicy" in given:  # stored in v2's spelling: Require → REQUIRE
            given["TlsPolicy"] = given["TlsPolicy"].upper()
        delivery = {**(row.options or {}).get("DeliveryOptions", {}), **given}
        await self._put_v1(ctx, row.name, "DeliveryOptions", delivery)
        return {}

    async def create_configuration_set_tracking_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self._v1_get(ctx, params["ConfigurationSetName"])
        if (row.options or {}).get("TrackingOptions"):
            raise V1.TrackingOptionsAlreadyExistsException(
                f"Tracking options already exist for configuration set {row.name}."
            )
        await self._put_v1(ctx, row.name, "TrackingOptions", dict(params.get("TrackingOptions") or {}))
        return {}

    async def update_configuration_set_tracking_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self._v1_get(ctx, params["ConfigurationSetName"])
        if not (row.options or {}).get("TrackingOptions") and "TrackingOptions" not in (row.options or {}):
            raise V1.TrackingOptionsDoesNotExistException(
                f"Tracking options do not exist for configuration set {row.name}."
            )
        await self._put_v1(ctx, row.name, "TrackingOptions", dict(params.get("TrackingOptions") or {}))
        return {}

    async def delete_configuration_set_tracking_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        row = await self._v1_get(ctx, params["ConfigurationSetName"])
        if "TrackingOptions" not in (row.options or {}):
            raise V1.TrackingOptionsDoesNotExistException(
                f"Tracking options do not exist for configuration set {row.name}."
            )
        await self._put_v1(ctx, row.name, "TrackingOptions", None)
        return {}


class ConfigurationSetsV2:
    configuration_sets: ConfigurationSets
    event_destinations: EventDestinations
    tags: Tags

    async def create_configuration_set_event_destination(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.event_destinations.create(
            ctx.account_id,
            ctx.region,
            params["ConfigurationSetName"],
            params["EventDestinationName"],
            params["EventDestination"],
        )
        return {}

    async def update_configuration_set_event_destination(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.event_destinations.update(
            ctx.account_id,
            ctx.region,
            params["ConfigurationSetName"],
            params["EventDestinationName"],
            params["EventDestination"],
        )
        return {}

    async def delete_configuration_set_event_destination(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        await self.event_destinations.delete(
            ctx.account_id, ctx.region, params["ConfigurationSetName"], params["EventDestinationName"]
        )
        return {}

    async def get_configuration_set_event_destinations(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict[str, Any]:
        found = await self.event_destinations.list(ctx.account_id, ctx.region, params["ConfigurationSetName"])
        return {"EventDestinations": found}

    async def create_configuration_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ConfigurationSetName"]
        await self.configuration_sets.create(
            ctx.account_id, ctx.region, name, {g: params.get(g) for g in V2_GROUPS}
        )
        if params.get("Tags"):
            await self.tags.tag(
                ctx.account_id, ctx.region, ctx.arn(f"configuration-set/{name}"), params["Tags"]
            )
        return {}

    async def get_configuration_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        row = await self.configuration_sets.get(ctx.account_id, ctx.region, params["ConfigurationSetName"])
        out: dict[str, Any] = {"ConfigurationSetName": row.name}
        out.update({g: v for g, v in (row.options or {}).items() if g in V2_GROUPS})
        out["Tags"] = await self.tags.list_tags(
            ctx.account_id, ctx.region, ctx.arn(f"configuration-set/{row.name}")
        )
        return out

    async def list_configuration_sets(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        size = params.get("PageSize") or 1000
        rows, last = await self.configuration_sets.page(
            ctx.account_id, ctx.region, decode_token(params.get("NextToken")), size
        )
        out: dict[str, Any] = {"ConfigurationSets": [r.name for r in rows]}
        if last:
            out["NextToken"] = encode_token(last)
        return out

    async def delete_configuration_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict[str, Any]:
        name = params["ConfigurationSetName"]
        await self.configuration_sets.delete(ctx.account_id, ctx.region, name)
        await self.tags.drop_resource(ctx.account_id, ctx.arn(f"configuration-set/{name}"))
        return {}

    async def _put(
        self, ctx: RequestContext, params: dict[str, Any], group: str, value: dict[str, Any] | None
    ) -> dict:
        await self.configuration_sets.put(
            ctx.account_id, ctx.region, params["ConfigurationSetName"], group, value
        )
        return {}

    @staticmethod
    def _members(params: dict[str, Any], *names: str) -> dict[str, Any]:
        return {n: params[n] for n in names if params.get(n) is not None}

    async def put_configuration_set_delivery_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict:
        value = self._members(params, "TlsPolicy", "SendingPoolName", "MaxDeliverySeconds")
        return await self._put(ctx, params, "DeliveryOptions", value)

    async def put_configuration_set_reputation_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict:
        row = await self.configuration_sets.get(ctx.account_id, ctx.region, params["ConfigurationSetName"])
        reputation = {
            **(row.options or {}).get("ReputationOptions", {}),
            "ReputationMetricsEnabled": bool(params.get("ReputationMetricsEnabled", False)),
        }
        return await self._put(ctx, params, "ReputationOptions", reputation)

    async def put_configuration_set_sending_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict:
        value = {"SendingEnabled": bool(params.get("SendingEnabled", False))}
        return await self._put(ctx, params, "SendingOptions", value)

    async def put_configuration_set_suppression_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict:
        value = self._members(params, "SuppressedReasons", "SuppressionScope", "ValidationOptions")
        value.setdefault("SuppressedReasons", [])
        return await self._put(ctx, params, "SuppressionOptions", value)

    async def put_configuration_set_tracking_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict:
        value = self._members(params, "CustomRedirectDomain", "HttpsPolicy")
        return await self._put(ctx, params, "TrackingOptions", value)

    async def put_configuration_set_vdm_options(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        return await self._put(ctx, params, "VdmOptions", params.get("VdmOptions") or {})

    async def put_configuration_set_archiving_options(
        self, ctx: RequestContext, params: dict[str, Any]
    ) -> dict:
        return await self._put(ctx, params, "ArchivingOptions", self._members(params, "ArchiveArn") or None)

    async def update_configuration_set(self, ctx: RequestContext, params: dict[str, Any]) -> dict:
        return await self._put(ctx, params, "MessageSecurityOptions", params.get("MessageSecurityOptions"))
