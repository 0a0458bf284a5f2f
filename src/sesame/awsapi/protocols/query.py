"""The AWS query protocol of SES v1 (API 2010-12-01) and of Sesame's SNS (2010-03-31): form parameters
in, XML out.

Driven only by botocore's ``ses`` and ``sns`` models; no operation is special-cased. Dispatch calls
``read_form`` → ``operation_name`` → ``parse`` (then ``awsapi.validation``) → ``serialize`` /
``serialize_error``.
botocore's own QuerySerializer and QueryParser are the oracle of the tests.

Invariants:
- Bad input leaves as a ServiceError, never a bare exception: bad percent-escapes or non-UTF-8 →
  MalformedQueryString; a non-form body → UnknownOperationException; no Action → MissingAction; an
  Action/Version pair SES does not know → InvalidAction ("Could not find operation X for version V", SES's
  wording); a value that does not convert → MalformedInput (SES: "Invalid Base64 encoding").
- ``parse`` converts types only; required members, lengths, enums and patterns are validation's job.
  Parameters the input shape does not name (Version, X-Amz-*, typos) are ignored, as AWS ignores them,
  and never enter the parse tree: what a request can make us build is bounded by the model and by
  ``MAX_PARAMETERS``, not by what a client sends.
- Responses list members in shape order and honour locationName/flattened traits as botocore reads them.
- Wire names per shape are computed once and cached (the model is cached in ``spec``): a request only
  touches the shapes of the parameters it carries.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import re
from typing import Any
from urllib.parse import unquote_to_bytes

from botocore.model import OperationModel, Shape

from sesame.awsapi import errors
from sesame.awsapi.messages import AwsRequest, AwsResponse
from sesame.awsapi.spec import ServiceName, service_model

_MODEL = service_model("ses")
API_VERSION: str = _MODEL.metadata["apiVersion"]
XMLNS: str = _MODEL.metadata["xmlNamespace"]
SNS_API_VERSION: str = service_model("sns").metadata["apiVersion"]


@functools.cache
def _operations(service: ServiceName) -> tuple[str, frozenset[str]]:
    model = service_model(service)
    return model.metadata["apiVersion"], frozenset(model.operation_names)


def xmlns(service: ServiceName) -> str:
    namespace: str = service_model(service).metadata["xmlNamespace"]
    return namespace


_FORM = "application/x-www-form-urlencoded"

# SES reports undecodable values with the framework code MalformedInput (observed: a bad
# RawMessage.Data answers 400 MalformedInput "Invalid Base64 encoding").
MalformedInput = errors.MalformedInput

_SYNTAX = "The query string contains a syntax error:"  # AWS's text for MalformedQueryString
_BAD_ESCAPE = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_ABSENT: Any = object()  # "no value here", distinct from any parsed value (None, "", 0, [])
#: The most parameters one request may carry. The largest honest SES v1 request, SendBulkTemplatedEmail
#: with 50 destinations of 50 recipients and 50 replacement tags each, has about 10,000.
MAX_PARAMETERS = 20_000
#: List positions and map entries count from 1; no SES list comes near a million members.
_MAX_INDEX_DIGITS = 6


def read_form(req: AwsRequest) -> dict[str, str]:
    """Query-string parameters, then those of a POST's form body (the body wins on a repeated name)."""
    form: dict[str, str] = {}
    if req.query_string:
        try:  # the HTTP layer decodes the raw query bytes as latin-1; undo that exactly
            raw = req.query_string.encode("latin-1")
        except UnicodeEncodeError:
            raw = req.query_string.encode("utf-8")
        _decode_form(raw, form, "query string")
    if req.body and req.method == "POST":
        ctype = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        # A missing Content-Type is read as a form (curl-style clients); anything else is not SES v1.
        if ctype and ctype != _FORM:
            raise errors.UnknownOperationException(f"SES v1 reads parameters from {_FORM}, not {ctype}.")
        _decode_form(req.body, form, "request body")
    return form


def _decode_form(raw: bytes, into: dict[str, str], where: str) -> None:
    # Counted before anything is split or decoded, so a flood of parameters costs one pass over bytes.
    if raw.count(b"&") + 1 + len(into) > MAX_PARAMETERS:
        raise errors.ValidationError(f"The request has more than {MAX_PARAMETERS} parameters.")
    bad = _BAD_ESCAPE.search(raw)
    if bad is not None:
        escape = raw[bad.start() : bad.start() + 3].decode("latin-1")
        raise errors.MalformedQueryString(f"{_SYNTAX} {escape!r} in the {where} is not a percent-escape.")
    for pair in raw.split(b"&"):
        if pair:
            name, _, value = pair.partition(b"=")
            try:
                into[_unquote(name)] = _unquote(value)
            except UnicodeDecodeError:
                raise errors.MalformedQueryString(
                    f"{_SYNTAX} a parameter in the {where} is not UTF-8."
                ) from None


def _unquote(b: bytes) -> str:
    if b"+" in b:
        b = b.replace(b"+", b" ")
    if b"%" in b:
        b = unquote_to_bytes(b)
    return b.decode("utf-8")


def operation_name(form: dict[str, str], service: ServiceName = "ses") -> str:
    """The Action, checked against the service's model (with its Version, when the request names one)."""
    action = form.get("Action")
    if not action:
        raise errors.MissingAction("The request must contain the parameter Action.")
    # Coral checks the (Action, Version) pair: an old Version fails like an unknown Action. A request
    # without Version (hand-written curl) is read as the current one.
    current, operations = _operations(service)
    version = form.get("Version") or current
    if version != current or action not in operations:
        raise errors.InvalidAction(f"Could not find operation {action} for version {version}")
    return action


def parse(op: OperationModel, form: dict[str, str]) -> dict[str, Any]:
    """The op's input as a botocore-style dict (types converted, nothing validated)."""
    shape = op.input_shape
    if shape is None:
        return {}
    tree: dict[Any, Any] = {}  # "A.B.member.1" → tree["A"]["B"]["member"]["1"][None] = value
    for key, value in form.items():
        parts = key.split(".")
        if not _known(shape, parts):
            continue
        node = tree
        for part in parts:
            node = node.setdefault(part, {})
        node[None] = value
    parsed = _parse_structure(shape, tree, "")
    return {} if parsed is _ABSENT else parsed


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit() and len(part) <= _MAX_INDEX_DIGITS


def _known(shape: Shape, parts: list[str]) -> bool:
    """Whether the model has a place for the parameter named by ``parts`` (``A.B.member.1``)."""
    i, n = 0, len(parts)
    while i < n:
        kind, part = shape.type_name, parts[i]
        if kind == "structure":
            member = _members(shape).get(part)
            if member is None:
                return False
            shape, i = member[1], i + 1
            continue
        if kind not in ("list", "map"):
            return False  # a scalar has no members
        if not shape.serialization.get("flattened"):  # "Name.member.N" / "Name.entry.N"
            wrapper = shape.member.serialization.get("name", "member") if kind == "list" else "entry"
            if part != wrapper or i + 1 == n:
                return False
            i += 1
        if not _is_index(parts[i]):
            return False
        i += 1
        if kind == "list":
            shape = shape.member
            continue
        if i == n:
            return False
        names = {shape.key.serialization.get("name", "key"): shape.key}
        names[shape.value.serialization.get("name", "value")] = shape.value
        if parts[i] not in names:
            return False
        shape, i = names[parts[i]], i + 1
    return shape.type_name != "structure"  # "Name=" sets a scalar, or an empty list or map


def _parse(shape: Shape, node: dict[Any, Any], path: str) -> Any:
    kind = shape.type_name
    if kind == "structure":
        return _parse_structure(shape, node, path + ".")
    if kind == "list":
        return _parse_list(shape, node, path)
    if kind == "map":
        return _parse_map(shape, node, path)
    value = node.get(None)
    return _ABSENT if value is None else _SCALAR_IN[kind](value, shape, path)


def _parse_structure(shape: Shape, node: dict[Any, Any], prefix: str) -> Any:
    if not node.keys() - {None}:
        return _ABSENT
    members = _members(shape)
    out: dict[str, Any] = {}
    for wire, child in node.items():
        member = members.get(wire)
        if member is not None:
            value = _parse(member[1], child, prefix + wire)
            if value is not _ABSENT:
                out[member[0]] = value
    return out


def _indexed(items: dict[Any, Any]) -> list[tuple[str, dict[Any, Any]]]:
    # N in ".member.N" counts from 1; order by number, not by text ("10" after "9").
    found = [(k, v) for k, v in items.items() if k is not None and _is_index(k)]
    return sorted(found, key=lambda kv: int(kv[0]))


def _parse_list(shape: Shape, node: dict[Any, Any], path: str) -> Any:
    if shape.serialization.get("flattened"):
        items, prefix = node, path + "."
    else:
        name = shape.member.serialization.get("name", "member")
        items, prefix = node.get(name, {}), f"{path}.{name}."
    found = _indexed(items)
    if not found:  # botocore sends an empty list as "Name="
        return [] if None in node else _ABSENT
    parsed = (_parse(shape.member, child, prefix + idx) for idx, child in found)
    return [v for v in parsed if v is not _ABSENT]


def _parse_map(shape: Shape, node: dict[Any, Any], path: str) -> Any:
    flat = shape.serialization.get("flattened")
    prefix = f"{path}." if flat else f"{path}.entry."
    entries = _indexed(node if flat else node.get("entry", {}))
    if not entries:
        return {} if None in node else _ABSENT
    key_name = shape.key.serialization.get("name", "key")
    value_name = shape.value.serialization.get("name", "value")
    out: dict[Any, Any] = {}
    for idx, entry in entries:
        key = _parse(shape.key, entry.get(key_name, {}), f"{prefix}{idx}.{key_name}")
        value = _parse(shape.value, entry.get(value_name, {}), f"{prefix}{idx}.{value_name}")
        if key is not _ABSENT and value is not _ABSENT:
            out[key] = value
    return out


def _malformed(kind: str, value: str, path: str) -> errors.ServiceError:
    shown = value if len(value) <= 64 else value[:64] + "..."
    return MalformedInput(f"Invalid {kind} value '{shown}' for parameter {path}.")


_INT = re.compile(r"[+-]?[0-9]+\Z")
_EPOCH = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?\Z")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\Z|[+-]?(NaN|Infinity)\Z")
# Ranges of Java's int and long, which the service's own parser uses.
_NUMBERS = {
    "integer": (_INT, 2**31),
    "long": (_INT, 2**63),
    "float": (_FLOAT, None),
    "double": (_FLOAT, None),
}


def _in_number(value: str, shape: Shape, path: str) -> int | float:
    pattern, limit = _NUMBERS[shape.type_name]
    # A Java long has at most 19 digits; Python refuses to convert more than 4,300 at all.
    if pattern.match(value) and (limit is None or len(value.lstrip("+-").lstrip("0")) <= 19):
        if limit is None:
            return float(value.replace("Infinity", "inf"))
        if -limit <= (n := int(value)) < limit:
            return n
    raise _malformed(shape.type_name, value, path)


def _in_bool(value: str, shape: Shape, path: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise _malformed("boolean", value, path)


def _in_timestamp(value: str, shape: Shape, path: str) -> dt.datetime:
    try:  # ISO 8601 (botocore's default for query) or epoch seconds (timestampFormat unixTimestamp)
        if _EPOCH.match(value):
            return dt.datetime.fromtimestamp(float(value), dt.UTC)
        when = dt.datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        raise _malformed("timestamp", value, path) from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _in_blob(value: str, shape: Shape, path: str) -> bytes:
    try:  # line breaks are tolerated (MIME-wrapped base64); anything else outside the alphabet is not
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        raise MalformedInput("Invalid Base64 encoding") from None


_SCALAR_IN = {
    "string": lambda value, shape, path: value,
    "integer": _in_number,
    "long": _in_number,
    "float": _in_number,
    "double": _in_number,
    "boolean": _in_bool,
    "timestamp": _in_timestamp,
    "blob": _in_blob,
}


@functools.lru_cache(maxsize=4096)
def _members(shape: Shape) -> dict[str, tuple[str, Shape]]:
    """Wire name → (member name, shape), in shape order; the wire name is both form key and XML tag."""
    out = {}
    for name, member in shape.members.items():
        wire = member.serialization.get("name", name)
        if member.type_name == "list" and member.serialization.get("flattened"):
            # A flattened list repeats its member's locationName directly in the parent (botocore rule).
            wire = member.member.serialization.get("name", wire)
        out[wire] = (name, member)
    return out


_XML_SPECIAL = re.compile("[&<>\r\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# \r is written as a reference because XML parsers turn a literal CR (LF) into LF; characters XML 1.0
# cannot carry at all become U+FFFD rather than making the whole document unreadable.
_XML_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#13;"}


def _text(value: str) -> str:
    if _XML_SPECIAL.search(value) is None:
        return value
    return _XML_SPECIAL.sub(lambda m: _XML_ESCAPES.get(m.group(), "\ufffd"), value)


def _out_timestamp(value: Any) -> str:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, int | float):
        value = dt.datetime.fromtimestamp(value, dt.UTC)
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}Z"


_SCALAR_OUT = {
    "string": lambda v: _text(str(v)),
    "integer": lambda v: str(int(v)),
    "long": lambda v: str(int(v)),
    "float": lambda v: repr(float(v)),
    "double": lambda v: repr(float(v)),
    "boolean": lambda v: "true" if (v.lower() == "true" if isinstance(v, str) else v) else "false",
    "timestamp": _out_timestamp,
    "blob": lambda v: base64.b64encode(v if isinstance(v, bytes) else str(v).encode()).decode("ascii"),
}


def _write_structure(out: list[str], shape: Shape, value: dict[str, Any]) -> None:
    for tag, (name, member) in _members(shape).items():
        item = value.get(name)
        if item is not None:
            _write(out, member, item, tag)


def _write(out: list[str], shape: Shape, value: Any, tag: str) -> None:
    kind = shape.type_name
    if kind == "structure":
        out.append(f"<{tag}>")
        _write_structure(out, shape, value)
        out.append(f"</{tag}>")
        return
    if kind not in ("list", "map"):
        out.append(f"<{tag}>{_SCALAR_OUT[kind](value)}</{tag}>")
        return
    # A flattened list/map repeats its items directly under the parent, named by the member's tag.
    flat = shape.serialization.get("flattened")
    wrap_open, wrap_close = ("", "") if flat else (f"<{tag}>", f"</{tag}>")
    out.append(wrap_open)
    if kind == "list":
        item_tag = tag if flat else shape.member.serialization.get("name", "member")
        for item in value:
            if item is not None:
                _write(out, shape.member, item, item_tag)
    else:
        entry_tag = tag if flat else "entry"
        key_tag = shape.key.serialization.get("name", "key")
        value_tag = shape.value.serialization.get("name", "value")
        for key, item in value.items():
            out.append(f"<{entry_tag}><{key_tag}>{_SCALAR_OUT[shape.key.type_name](key)}</{key_tag}>")
            _write(out, shape.value, item, value_tag)
            out.append(f"</{entry_tag}>")
    out.append(wrap_close)


def _response(status: int, parts: list[str], request_id: str) -> AwsResponse:
    headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
    return AwsResponse(status, "".join(parts).encode("utf-8"), headers)


def serialize(op: OperationModel, result: dict[str, Any], request_id: str) -> AwsResponse:
    """``<OpResponse><OpResult>…</OpResult><ResponseMetadata>…`` with 200; None members are omitted."""
    name = op.name
    out = [f'<{name}Response xmlns="{op.service_model.metadata["xmlNamespace"]}">']
    shape = op.output_shape
    if shape is not None:  # the Result element is always written: botocore looks it up unconditionally
        wrapper = shape.serialization.get("resultWrapper") or f"{name}Result"
        out.append(f"<{wrapper}>")
        _write_structure(out, shape, result)
        out.append(f"</{wrapper}>")
    out.append(f"<ResponseMetadata><RequestId>{_text(request_id)}</RequestId></ResponseMetadata>")
    out.append(f"</{name}Response>")
    return _response(200, out, request_id)


def serialize_error(err: errors.ServiceError, request_id: str, namespace: str = XMLNS) -> AwsResponse:
    """``<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>`` with the error's status."""
    out = [
        f'<ErrorResponse xmlns="{namespace}"><Error>',
        f"<Type>{'Sender' if err.sender_fault else 'Receiver'}</Type>",
        f"<Code>{_text(err.code)}</Code><Message>{_text(err.message)}</Message>",
    ]
    # Members of the error shape (AlreadyExists' Name, …) sit beside Code, where botocore reads them.
    out.extend(f"<{k}>{_text(str(v))}</{k}>" for k, v in err.fields.items() if v is not None)
    out.append(f"</Error><RequestId>{_text(request_id)}</RequestId></ErrorResponse>")
    return _response(err.status, out, request_id)
