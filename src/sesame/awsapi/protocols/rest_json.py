"""The REST-JSON protocol of SES v2 (API 2019-09-27): method + URI template in, JSON out.

Driven only by botocore's ``sesv2`` model; no operation is special-cased. Dispatch calls
``router.match`` → ``parse`` (then ``awsapi.validation``) → ``serialize`` / ``serialize_error``.
botocore's own RestJSONSerializer and RestJSONParser are the oracle of the tests.

Invariants:
- Routing compares path segments: a URI label matches one whole segment (botocore percent-encodes
  ``/`` inside a label, so a segment never holds two), and literals beat labels when two templates
  match. A path no operation answers under that method is UnknownOperationException (404).
- Bad input leaves as a ServiceError: a body that is not JSON, or a JSON value of the wrong type, is
  SerializationException (the code AWS's JSON services give); a query-string value that does not convert
  is MalformedInput; a non-JSON Content-Type is UnsupportedMediaTypeException.
- ``parse`` converts types only; required members, lengths, enums and patterns are validation's job.
  Unknown body members are ignored, as AWS ignores them.
- Timestamps leave as epoch seconds (botocore's rest-json default), blobs as base64.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import math
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

from botocore.model import OperationModel, ServiceModel, Shape

from sesame.awsapi import errors
from sesame.awsapi.messages import AwsRequest, AwsResponse
from sesame.awsapi.spec import service_model

_JSON_TYPES = ("application/json", "application/x-amz-json-1.0", "application/x-amz-json-1.1")

# Routes that older botocore releases (and the SDKs built from the same model generation: AWS CLI v2,
# Terraform's Go SDK) still use: the list operations moved from GET to POST with a body in botocore
# 1.44. Parameters travel in the query string here.
LEGACY_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "/v2/email/configuration-sets"): "ListConfigurationSets",
    ("GET", "/v2/email/identities"): "ListEmailIdentities",
}
_LEGACY_QUERY = {"NextToken": "NextToken", "PageSize": "PageSize"}


class _Route:
    __slots__ = ("method", "op", "segments", "literals")

    def __init__(self, method: str, template: str, op: OperationModel) -> None:
        self.method = method
        self.op = op
        # A label is kept as a 1-tuple of its name, a literal as its text.
        self.segments: list[str | tuple[str]] = [
            (s[1:-1],) if s.startswith("{") and s.endswith("}") else s for s in template.strip("/").split("/")
        ]
        self.literals = sum(isinstance(s, str) for s in self.segments)

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        labels: dict[str, str] = {}
        for want, got in zip(self.segments, parts, strict=True):
            if isinstance(want, str):
                if want != got:
                    return None
            else:
                value = unquote(got)
                if not value:  # an empty label is a different (unknown) path, not an empty parameter
                    return None
                labels[want[0]] = value
        return labels


class Router:
    """(method, raw path) → (operation, URI labels), from every requestUri in the model."""

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.routes: list[_Route] = []
        for name in model.operation_names:
            op = model.operation_model(name)
            self.routes.append(_Route(op.http["method"], op.http["requestUri"].split("?")[0], op))
        # Most literal segments first: "/v2/email/list-identities" before "/v2/email/{label}".
        self.routes.sort(key=lambda r: -r.literals)
        self.legacy = {key: model.operation_model(name) for key, name in LEGACY_ROUTES.items()}

    def match(self, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]]:
        path = raw_path.split("?", 1)[0]
        legacy = self.legacy.get((method, path.rstrip("/")))
        if legacy is not None:
            return legacy, {}
        parts = path.strip("/").split("/")
        for route in self.routes:
            if route.method == method:
                labels = route.match(parts)
                if labels is not None:
                    return route.op, labels
        raise errors.UnknownOperationException(f"No operation of SES v2 answers {method} {path}.")


router = Router(service_model("sesv2"))


def parse(op: OperationModel, req: AwsRequest, uri_params: dict[str, str]) -> dict[str, Any]:
    """The op's input as a botocore-style dict: URI labels, query-string members and the JSON body."""
    shape = op.input_shape
    if shape is None:
        return {}
    params: dict[str, Any] = {}
    body_members, query_members, label_members = _locations(shape)
    for name, value in uri_params.items():
        member = label_members.get(name)
        if member is not None:
            params[member[0]] = _from_text(member[1], value, name)
    if req.query_string:
        legacy = (req.method, req.path.rstrip("/")) in LEGACY_ROUTES
        for key, values in _query(req.query_string).items():
            member = query_members.get(key)
            if member is None and legacy and key in _LEGACY_QUERY:
                member = (key, shape.members[key])
            if member is not None:
                name, mshape = member
                if mshape.type_name == "list":
                    params[name] = [_from_text(mshape.member, v, key) for v in values]
                else:
                    params[name] = _from_text(mshape, values[-1], key)
    if body_members and req.body.strip():
        _check_content_type(req)
        try:
            doc = json.loads(req.body)
        except (ValueError, RecursionError):
            raise errors.SerializationException("The request body is not valid JSON.") from None
        if not isinstance(doc, dict):
            raise errors.SerializationException("The request body must be a JSON object.")
        for key, value in doc.items():
            member = body_members.get(key)
            if member is not None and value is not None:
                params[member[0]] = _from_json(member[1], value, key)
    return params


def _check_content_type(req: AwsRequest) -> None:
    ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    # No Content-Type is read as JSON (curl -d); a form or text body is a client talking to the wrong API.
    if ctype and ctype not in _JSON_TYPES:
        raise errors.UnsupportedMediaType(f"SES v2 reads application/json request bodies, not {ctype}.")


def _query(query_string: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    try:
        pairs = parse_qsl(query_string, keep_blank_values=True, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise errors.MalformedQueryString("The query string is not valid UTF-8.") from None
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


@functools.lru_cache(maxsize=512)
def _locations(
    shape: Shape,
) -> tuple[dict[str, tuple[str, Shape]], dict[str, tuple[str, Shape]], dict[str, tuple[str, Shape]]]:
    """Wire name → (member name, shape), split by where the member travels: body, query string, URI."""
    body: dict[str, tuple[str, Shape]] = {}
    query: dict[str, tuple[str, Shape]] = {}
    uri: dict[str, tuple[str, Shape]] = {}
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        {"querystring": query, "uri": uri}.get(where, body)[wire] = (name, member)
    return body, query, uri


_INT = re.compile(r"[+-]?[0-9]+\Z")
_INT_LIMITS = {"integer": 2**31, "long": 2**63}


def _from_text(shape: Shape, value: str, where: str) -> Any:
    """A URI label or query-string value, converted to the member's type."""
    kind = shape.type_name
    if kind == "string":
        return value
    try:
        if kind in _INT_LIMITS and _INT.match(value) and abs(n := int(value)) < _INT_LIMITS[kind]:
            return n
        if kind in ("float", "double"):
            return float(value)
        if kind == "boolean" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "timestamp":
            return _timestamp(value)
    except (ValueError, OverflowError, OSError):
        pass
    raise errors.MalformedInput(f"Invalid {kind} value '{value[:64]}' for parameter {where}.")


def _timestamp(value: str | int | float) -> dt.datetime:
    if isinstance(value, int | float) or re.fullmatch(r"[+-]?[0-9]+(\.[0-9]+)?", value):
        return dt.datetime.fromtimestamp(float(value), dt.UTC)
    when = dt.datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _wrong_type(shape: Shape, value: Any, where: str) -> errors.ServiceError:
    got = type(value).__name__.replace("dict", "object").replace("list", "array").replace("str", "string")
    return errors.SerializationException(f"Expected {shape.type_name} for {where}, got a JSON {got}.")


def _from_json(shape: Shape, value: Any, where: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            raise _wrong_type(shape, value, where)
        members = _locations(shape)[0]
        out = {}
        for key, item in value.items():
            member = members.get(key)
            if member is not None and item is not None:
                out[member[0]] = _from_json(member[1], item, f"{where}.{key}")
        return out
    if kind == "list":
        if not isinstance(value, list):
            raise _wrong_type(shape, value, where)
        return [
            _from_json(shape.member, item, f"{where}[{i}]")
            for i, item in enumerate(value)
            if item is not None
        ]
    if kind == "map":
        if not isinstance(value, dict):
            raise _wrong_type(shape, value, where)
        return {k: _from_json(shape.value, v, f"{where}.{k}") for k, v in value.items() if v is not None}
    if kind == "string":
        if isinstance(value, str):
            return value
    elif kind == "boolean":
        if isinstance(value, bool):
            return value
    elif kind in _INT_LIMITS:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) < _INT_LIMITS[kind]:
            return value
        if isinstance(value, float) and value.is_integer() and abs(value) < _INT_LIMITS[kind]:
            return int(value)
    elif kind in ("float", "double"):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if value in ("NaN", "Infinity", "-Infinity"):
            return float(value.replace("Infinity", "inf"))
    elif kind == "timestamp":
        if isinstance(value, int | float | str) and not isinstance(value, bool):
            try:
                return _timestamp(value)
            except (ValueError, OverflowError, OSError):
                pass
    elif kind == "blob":
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise errors.SerializationException(f"Invalid Base64 encoding for {where}.") from None
    raise _wrong_type(shape, value, where)


def _to_json(shape: Shape, value: Any) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _structure_to_json(shape, value)
    if kind == "list":
        return [_to_json(shape.member, item) for item in value if item is not None]
    if kind == "map":
        return {str(k): _to_json(shape.value, v) for k, v in value.items() if v is not None}
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value
            return round(value.timestamp(), 3)
        return value
    if kind == "blob":
        return base64.b64encode(value if isinstance(value, bytes) else str(value).encode()).decode("ascii")
    if kind in ("float", "double"):
        value = float(value)
        if math.isnan(value) or math.isinf(value):  # JSON has no literal for these; botocore reads strings
            return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        return value
    if kind in _INT_LIMITS:
        return int(value)
    return value


def _structure_to_json(shape: Shape, value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            out[member.serialization.get("name", name)] = _to_json(member, item)
    return out


def _response(status: int, doc: Any, request_id: str, extra: dict[str, str] | None = None) -> AwsResponse:
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    headers = {"Content-Type": "application/json", "x-amzn-RequestId": request_id}
    if extra:
        headers.update(extra)
    return AwsResponse(status, body, headers)


def serialize(op: OperationModel, result: dict[str, Any], request_id: str) -> AwsResponse:
    """The output members as a JSON object, with the operation's responseCode (200 unless it says)."""
    shape = op.output_shape
    doc = _structure_to_json(shape, result) if shape is not None else {}
    return _response(int(op.http.get("responseCode", 200)), doc, request_id)


def serialize_error(err: errors.ServiceError, request_id: str) -> AwsResponse:
    """``x-amzn-ErrorType: Code`` and ``{"message": …}``, where botocore's RestJSONParser looks."""
    doc: dict[str, Any] = {"message": err.message}
    doc.update({k: v for k, v in err.fields.items() if v is not None})
    return _response(err.status, doc, request_id, {"x-amzn-ErrorType": err.code})
