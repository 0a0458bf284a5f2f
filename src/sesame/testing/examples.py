"""Example values for any botocore shape: the input of the protocol round-trip tests.

Every member is filled (not only the required ones; a union gets exactly one), lists get two items
(or their max) and maps two entries, so that each member's wire form is exercised. Values respect
enums (map keys too) and length/range bounds; patterns are not honoured (the round trip tests
parsing, not validation). A recursive shape is filled once and left out where it recurs.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from botocore.model import Shape

_TIMESTAMP = dt.datetime(2026, 11, 23, 12, 30, 45, tzinfo=dt.UTC)


def example(shape: Shape | None, name: str = "value", _open: frozenset[str] = frozenset()) -> Any:
    if shape is None:
        return {}
    t = shape.type_name
    if t == "structure":
        inside = _open | {shape.name}
        members = [(m, s) for m, s in shape.members.items() if s.name not in inside]
        if shape.metadata.get("union"):
            members = members[:1]
        return {m: example(s, m, inside) for m, s in members}
    if t == "list":
        n = min(max(2, shape.metadata.get("min", 0)), shape.metadata.get("max", 2))
        return [example(shape.member, f"{name}{i}", _open) for i in range(n)]
    if t == "map":
        keys = (shape.key.enum or [f"key{i}" for i in range(2)])[-2:]
        return {k: example(shape.value, f"{name}{i}", _open) for i, k in enumerate(keys)}
    if t == "string":
        if shape.enum:
            return shape.enum[-1]
        text = f"{name}-example"
        lo, hi = shape.metadata.get("min", 0), shape.metadata.get("max")
        if len(text) < lo:
            text = text + "x" * (lo - len(text))
        if hi is not None and len(text) > hi:
            text = text[: max(hi, 1)]
        return text
    if t in ("integer", "long"):
        lo, hi = shape.metadata.get("min"), shape.metadata.get("max")
        v = 7
        if lo is not None and v < lo:
            v = int(lo)
        if hi is not None and v > hi:
            v = int(hi)
        return v
    if t in ("double", "float"):
        return 1.5
    if t == "boolean":
        return True
    if t == "timestamp":
        return _TIMESTAMP
    if t == "blob":
        return b"blob \x00\xff data"
    raise ValueError(f"no example for shape type {t}")
