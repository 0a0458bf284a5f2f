"""Model-driven input validation, answered in AWS's own (Coral) words.

``validate(op, params)`` checks parsed parameters against ``op.input_shape`` (required members, min/max
length of strings, blobs, lists and maps, min/max of numbers, enums, regex patterns) and raises one error
listing every violation. Wrong Python types are the parsers' business (SerializationException): skipped.

Invariants:
- The valid path is one precompiled closure per operation (cached); messages are built only on failure,
  by a slower interpreter over the same model, so both always agree on the model.
- Coral wording (sources: aws-sdk-ios#27, monde-sistemas/delphi-aws-ses#7 for SES v1; IAM, STS,
  CloudFormation, Lambda, Bedrock, Cognito answers quoted in public issues): ``N validation error(s)
  detected: <item>; <item>``, items ``Value 'v' at 'message.subject.data' failed to satisfy constraint:
  Member must ...``, ``Value null`` when missing; paths lower the first letter only (``sAMLOptions``),
  list items are ``tags.6.member.value`` (1-based); element constraints of scalar lists and maps are
  reported once, at the collection: ``Member must satisfy constraint: [...]``, ``Map keys must satisfy
  constraint: [...]``, ``Map value must satisfy constraint: [...]``, listing all the element's constraints.
- ``ses`` (query) raises ``ValidationError``, enums included (SES v1's ListIdentities answers ``Value
  'Unknown' at 'identityType' failed to satisfy constraint: Member must satisfy enum value set: [Domain,
  EmailAddress]``). Coral lists an enum's values sorted (that answer; DynamoDB's ``[B, N, S]``), not in
  model order. One exception is recorded (LocalStack snapshot, SetIdentityHeadersInNotificationsEnabled,
  2025): a bad ``NotificationType`` is checked by SES v1's handler, after model validation, and answers
  InvalidParameterValue ``Invalid notification type: InvalidType. Valid values are: Bounce, Complaint,
  Delivery.``; ``HANDLER_ENUMS`` names the shapes answered that way.
- ``sesv2`` raises ``BadRequestException`` (its model has no ValidationException) and never echoes values
  (``Value at 'mailType'``), as probed against SES v2 by floci-io/floci#2498. Sensitive members are never
  echoed by either service (Coral's redaction, as in Bedrock's and Cognito's answers).
- Patterns are Java regexes matched in full (``Matcher.matches``: CloudFormation rejects 'https://...'
  against ``[a-zA-Z][-a-zA-Z0-9]*|arn:...``); ``\\p{..}``, ``\\Q..\\E``, ``\\x{..}``, ``\\h``, ``\\z`` are
  translated, and a pattern ``re`` still refuses is skipped and recorded in ``SKIPPED_PATTERNS``.
- Where sources are silent or disagree: violations come in model order, and within a member length
  before pattern (Cognito's order; CloudFormation's is the reverse, Coral's being a hash order).
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Callable
from functools import cache, partial
from typing import Any, NamedTuple

from botocore.model import OperationModel, Shape

from sesame.awsapi.errors import InvalidParameterValue, ServiceError, ValidationError, service_errors

Check = Callable[[Any], bool]
SKIPPED_PATTERNS: set[str] = set()
_POSIX = {
    "Lower": "a-z",
    "Upper": "A-Z",
    "ASCII": "\\x00-\\x7f",
    "Alpha": "a-zA-Z",
    "Digit": "0-9",
    "Alnum": "a-zA-Z0-9",
    "Punct": "!-/:-@\\[-`{-~",
    "Graph": "!-~",
    "Print": " -~",
    "Blank": " \\t",
    "Cntrl": "\\x00-\\x1f\\x7f",
    "XDigit": "0-9a-fA-F",
    "Space": " \\t\\n\\x0b\\f\\r",
}
_HSPACE = " \\t\\xa0\\u1680\\u180e\\u2000-\\u200a\\u202f\\u205f\\u3000"
_PY_TYPES: dict[str, type | tuple[type, ...]] = {
    "structure": dict,
    "map": dict,
    "list": list,
    "string": str,
    "blob": (bytes, bytearray, str),
    "integer": int,
    "long": int,
    "float": (int, float),
    "double": (int, float),
}
_PROP = re.compile(r"\\([pP])\{(\w+)\}")
_CATEGORY = re.compile(r"[A-Z][a-z]?")


#: SES v1 enum shapes whose values its handlers check, answering InvalidParameterValue (see above).
HANDLER_ENUMS = frozenset({"NotificationType"})


class Violation(NamedTuple):
    kind: str  # null | length | range | pattern | enum | element | handler-enum (SES v1 enums)
    path: str
    text: str  # the whole Coral item, or for handler-enum the InvalidParameterValue message


@cache
def _category_runs() -> dict[str, list[str]]:
    """Code point runs per Unicode category ('Lu': ['\\U00000041-\\U0000005a', ...]), in one pass."""
    runs: dict[str, list[str]] = {}
    start, current = 0, unicodedata.category("\0")
    for cp in range(1, 0x110001):
        cat = unicodedata.category(chr(cp)) if cp < 0x110000 else ""
        if cat != current:
            runs.setdefault(current, []).append(f"\\U{start:08x}-\\U{cp - 1:08x}")
            start, current = cp, cat
    return runs


def _category_ranges(prefix: str) -> str:
    """Class body of the code points whose category starts with ``prefix`` ('L', 'Nd', ...)."""
    return "".join(r for cat, rs in _category_runs().items() if cat.startswith(prefix) for r in rs)


def _java_to_python(pattern: str) -> str:
    """Rewrite the Java-only constructs that ``re`` refuses; possessive quantifiers and atomic groups
    need nothing (Python 3.11 has them)."""
    out = re.sub(r"\\Q(.*?)(?:\\E|$)", lambda m: re.escape(m.group(1)), pattern)
    out = re.sub(r"\\x\{([0-9a-fA-F]+)\}", lambda m: f"\\U{int(m.group(1), 16):08x}", out)
    out = out.replace("\\z", "\\Z").replace("\\h", f"[{_HSPACE}]")
    parts, depth, i = [], 0, 0
    while i < len(out):
        if m := _PROP.match(out, i):
            neg, name = m.group(1) == "P", m.group(2).removeprefix("Is")
            body = _POSIX.get(name) or (_category_ranges(name[:2]) if _CATEGORY.fullmatch(name) else "")
            body = body or (_category_ranges("L") if name in ("Letter", "Alphabetic") else "")
            if not body or (neg and depth):  # unknown class, or a negation Python can't nest
                raise re.error(f"untranslatable {m.group(0)}")
            # Inside a class the ranges join it; outside they need their own brackets.
            parts.append(body if depth else f"[{'^' if neg else ''}{body}]")
            i = m.end()
        elif out[i] == "\\":
            parts.append(out[i : i + 2])
            i += 2
        else:
            if out[i] == "[" and depth:  # Java's class union [a[b]] is a literal '[' to Python
                raise re.error("nested character class")
            depth += {"[": 1, "]": -1 if depth else 0}.get(out[i], 0)
            parts.append(out[i])
            i += 1
    return "".join(parts)


@cache
def _pattern(pattern: str) -> re.Pattern[str] | None:
    try:
        with warnings.catch_warnings():  # Java's nested classes and && warn in re, and mean otherwise
            warnings.simplefilter("error", FutureWarning)
            return re.compile(_java_to_python(pattern))
    except (re.error, ValueError, OverflowError, FutureWarning):
        SKIPPED_PATTERNS.add(pattern)
        return None


def _matches(rx: re.Pattern[str], v: str) -> bool:
    return rx.fullmatch(v) is not None


def _rules(shape: Shape, v1: bool = False) -> list[tuple[str, str, Check]]:
    """The constraints of a non-structure shape, in Coral's listing order, as (kind, text, ok)."""
    meta, t = shape.metadata, shape.type_name
    rules: list[tuple[str, str, Check]] = []
    sized = t in ("string", "blob", "list", "map")
    kind, what = ("length", "length") if sized else ("range", "value")
    if not sized and t not in ("integer", "long", "float", "double"):
        return rules  # structures, booleans and timestamps carry no such constraints
    if (hi := meta.get("max")) is not None:
        ok = (lambda v, hi=hi: len(v) <= hi) if sized else (lambda v, hi=hi: v <= hi)
        rules.append((kind, f"Member must have {what} less than or equal to {hi}", ok))
    if (lo := meta.get("min")) is not None:
        ok = (lambda v, lo=lo: len(v) >= lo) if sized else (lambda v, lo=lo: v >= lo)
        rules.append((kind, f"Member must have {what} greater than or equal to {lo}", ok))
    if t == "string" and "pattern" in meta and (rx := _pattern(meta["pattern"])) is not None:
        rules.append(
            (
                "pattern",
                f"Member must satisfy regular expression pattern: {meta['pattern']}",
                partial(_matches, rx),
            )
        )
    if t == "string" and shape.enum and not (v1 and shape.name in HANDLER_ENUMS):
        values = frozenset(shape.enum)
        rules.append(
            (
                "enum",
                f"Member must satisfy enum value set: [{', '.join(sorted(shape.enum))}]",
                values.__contains__,
            )
        )
    return rules


_PASS: Check = lambda v: True  # noqa: E731 - also marks a shape whose predicate is being built


def _compile(shape: Shape, memo: dict[str, Check | None]) -> Check | None:
    """A fast all-constraints predicate for ``shape``, or None if nothing under it is constrained."""
    if shape.name in memo:
        if memo[shape.name] is _PASS:  # a recursive shape: look the predicate up once it exists
            name = shape.name
            return lambda v: (memo[name] or _PASS)(v)
        return memo[shape.name]
    memo[shape.name] = _PASS
    t = shape.type_name
    fn: Check | None = None
    if t == "structure":
        required = tuple(shape.required_members)
        subs = tuple((n, c) for n, s in shape.members.items() if (c := _compile(s, memo)) is not None)
        if required or subs:

            def check_structure(d: Any) -> bool:
                for n in required:
                    if d.get(n) is None:
                        return False
                for n, c in subs:
                    if (v := d.get(n)) is not None and not c(v):
                        return False
                return True

            fn = check_structure
    else:
        oks = tuple(ok for _, _, ok in _rules(shape))
        item = _compile(shape.member, memo) if t == "list" else None
        key = _compile(shape.key, memo) if t == "map" else None
        val = _compile(shape.value, memo) if t == "map" else None
        if oks or item or key or val:

            def check_value(v: Any) -> bool:
                return (
                    all(ok(v) for ok in oks)
                    and (item is None or all(map(item, v)))
                    and (key is None or all(map(key, v)))
                    and (val is None or all(map(val, v.values())))
                )

            fn = check_value

    memo[shape.name] = fn
    return fn


@cache
def _checker(op: OperationModel) -> Check:
    return (op.input_shape and _compile(op.input_shape, {})) or _PASS


def _render(shape: Shape, v: Any) -> str | None:
    """Java's toString of a value, or None where Coral would not echo it."""
    if shape.metadata.get("sensitive") or shape.type_name in ("structure", "blob", "timestamp"):
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | int | float):
        return str(v)
    if shape.type_name == "list" and isinstance(v, list):
        items = [_render(shape.member, x) for x in v]
        return None if None in items else f"[{', '.join(items)}]"  # type: ignore[arg-type]
    if shape.type_name == "map" and isinstance(v, dict):
        pairs = [(_render(shape.key, k), _render(shape.value, x)) for k, x in v.items()]
        return None if any(None in p for p in pairs) else "{" + ", ".join(f"{k}={x}" for k, x in pairs) + "}"
    return None


def _describe(shape: Shape, v1: bool) -> str:
    texts = [text for _, text, _ in _rules(shape, v1)]
    if shape.type_name == "list" and (inner := _describe(shape.member, v1)):
        texts.append(f"Member must satisfy constraint: [{inner}]")
    return ", ".join(texts)


def _typed(shape: Shape, v: Any) -> bool:
    """Whether ``v`` has the Python type botocore uses for ``shape`` (others are the parser's concern)."""
    return isinstance(v, _PY_TYPES.get(shape.type_name, object))


def _ok(shape: Shape, v: Any, v1: bool) -> bool:
    if not _typed(shape, v):
        return True
    if not all(ok(v) for _, _, ok in _rules(shape, v1)):
        return False
    return shape.type_name != "list" or all(_ok(shape.member, x, v1) for x in v)


def _handler_enum(shape: Shape, v: Any, path: str, out: list[Violation]) -> None:
    """SES v1's own enum answer, worded after the one recorded instance (see the module docstring)."""
    if shape.name not in HANDLER_ENUMS:
        return
    if (enum := shape.metadata.get("enum")) and isinstance(v, str) and v not in enum:
        name = [s for s in path.split(".") if s != "member" and not s.isdigit()][-1]
        words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", " ", name).lower()
        out.append(
            Violation("handler-enum", path, f"Invalid {words}: {v}. Valid values are: {', '.join(enum)}.")
        )


def _collect(shape: Shape, v: Any, path: str, v1: bool, out: list[Violation]) -> None:
    def item(kind: str, constraint: str) -> None:
        shown = _render(shape, v) if v1 else None  # SES v2 never echoes values
        at = f"Value '{shown}' at" if shown is not None else "Value at"
        out.append(Violation(kind, path, f"{at} '{path}' failed to satisfy constraint: {constraint}"))

    t = shape.type_name
    if not _typed(shape, v):
        return
    if t == "structure":
        for name, member in shape.members.items():
            sub = f"{path}.{name[:1].lower()}{name[1:]}" if path else f"{name[:1].lower()}{name[1:]}"
            if (x := v.get(name)) is not None:
                _collect(member, x, sub, v1, out)
            elif name in shape.required_members:
                at = "Value null at" if v1 else "Value at"
                out.append(
                    Violation(
                        "null", sub, f"{at} '{sub}' failed to satisfy constraint: Member must not be null"
                    )
                )
        return
    for kind, text, ok in _rules(shape, v1):
        if not ok(v):
            item(kind, text)
    if v1:
        _handler_enum(shape, v, path, out)
    if t == "list":
        inner = shape.member
        for i, x in enumerate(v, 1):
            if inner.type_name == "structure":
                _collect(inner, x, f"{path}.{i}.member", v1, out)
            elif v1:
                _handler_enum(inner, x, f"{path}.{i}.member", out)
        if inner.type_name != "structure" and not all(_ok(inner, x, v1) for x in v):
            item("element", f"Member must satisfy constraint: [{_describe(inner, v1)}]")
    elif t == "map":
        if not all(_ok(shape.key, k, v1) for k in v):
            item("element", f"Map keys must satisfy constraint: [{_describe(shape.key, v1)}]")
        if shape.value.type_name == "structure":
            for k, x in v.items():
                _collect(shape.value, x, f"{path}.{k}", v1, out)
        elif not all(_ok(shape.value, x, v1) for x in v.values()):
            item("element", f"Map value must satisfy constraint: [{_describe(shape.value, v1)}]")


def violations(op: OperationModel, params: dict[str, Any]) -> list[Violation]:
    """Every violation, in model order. For ``ses`` enum violations carry InvalidParameterValue text."""
    out: list[Violation] = []
    if op.input_shape is not None:
        v1 = op.metadata.get("protocol") == "query"
        _collect(op.input_shape, params, "", v1, out)
    return out


def validate(op: OperationModel, params: dict[str, Any]) -> None:
    """Raise the service's validation error listing every violation of ``op``'s input model, if any."""
    try:
        if _checker(op)(params):
            return
    except (TypeError, AttributeError):
        pass  # let the interpreter below find out whether anything is actually violated
    found = violations(op, params)
    coral = [x.text for x in found if x.kind != "handler-enum"]
    if coral:
        n = len(coral)
        raise _error_class(op)(f"{n} validation error{'s' if n > 1 else ''} detected: {'; '.join(coral)}")
    if found:
        raise InvalidParameterValue(found[0].text)


def _error_class(op: OperationModel) -> type[ServiceError]:
    if op.metadata.get("protocol") == "query":
        return ValidationError
    errs = service_errors(op.service_model.service_name)
    for name in ("BadRequestException", "ValidationException"):
        try:
            return getattr(errs, name)
        except AttributeError:
            continue
    return ValidationError
