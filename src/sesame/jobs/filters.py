"""MessageInsightsFilters (CreateExportJob's Include and Exclude), as the sesv2 model defines them:
filters are AND-ed, the values of one filter OR-ed, matching is case-sensitive, and a value may start
and/or end with ``*`` for a suffix, prefix or contains match; ``\\*`` is a literal star and ``\\\\`` a
literal backslash. A ``*`` anywhere else is a literal character.

LastDeliveryEvent and LastEngagementEvent take the enum values themselves (``PERMANENT_BOUNCE``,
``CLICK``), matched exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

Match = Callable[[str], bool]

#: Filter member → the export row's field it looks at.
FIELDS = {
    "FromEmailAddress": "FromEmailAddress",
    "Destination": "Destination",
    "Subject": "Subject",
    "Isp": "Isp",
    "TenantName": "TenantName",
    "LastDeliveryEvent": "LastDeliveryEvent",
    "LastEngagementEvent": "LastEngagementEvent",
}
_EXACT = {"LastDeliveryEvent", "LastEngagementEvent"}


def pattern(value: str) -> Match:
    """One filter value as a test of a string."""
    starts = value.startswith("*")
    body = value[1:] if starts else value
    text, i, ends = [], 0, False
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body) and body[i + 1] in "*\\":
            text.append(body[i + 1])
            i += 2
            continue
        if c == "*" and i == len(body) - 1:
            ends = True
        else:
            text.append(c)
        i += 1
    literal = "".join(text)
    if starts and ends:
        return lambda s: literal in s
    if starts:
        return lambda s: s.endswith(literal)
    if ends:
        return lambda s: s.startswith(literal)
    return lambda s: s == literal


class Filters:
    """Compiled MessageInsightsFilters: ``matches(row)`` when every filter given has a value that
    matches the row's field. No filters: every row matches (``empty`` says so)."""

    def __init__(self, filters: Mapping[str, Any] | None) -> None:
        self.tests: list[tuple[str, list[Match]]] = []
        for member, values in (filters or {}).items():
            if member not in FIELDS or not values:
                continue
            compiled = [(lambda s, v=v: s == v) if member in _EXACT else pattern(v) for v in values]
            self.tests.append((FIELDS[member], compiled))

    @property
    def empty(self) -> bool:
        return not self.tests

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(any(t(row.get(field) or "") for t in tests) for field, tests in self.tests)
