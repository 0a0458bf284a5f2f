"""Sending authorization: whether an identity's policies let another account send through it.

An identity owner attaches IAM-style policies to a verified identity; a delegate account then sends as
an address of that identity by naming the identity's ARN (SourceArn, FromArn, ReturnPathArn, v2
FromEmailAddressIdentityArn...). This module evaluates those policies; it reads no storage.

The rules are IAM's [IAM: reference_policies_evaluation-logic, reference_policies_elements_*]: nothing
is allowed unless a statement allows it, and a statement that denies wins over every Allow. A request is
``(principal, action, resource)``: the delegate's account (Sesame has no IAM users: an account's keys act
as the account itself), ``ses:<Operation>``, and the ARN of the identity sent through.

Condition, NotPrincipal, NotAction and NotResource are not evaluated. Where one appears, the statement is
read the safe way round: an Allow grants nothing, and a Deny applies as if it matched, so that nothing is
sent that a full evaluation would refuse (a conditional Deny therefore blocks more than on SES).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

#: Elements whose evaluation is not implemented (see the module docstring).
_UNEVALUATED = ("Condition", "NotPrincipal", "NotAction", "NotResource")


def identity_arn(region: str, account_id: str, identity: str) -> str:
    """The ARN of an identity, as policies name it in their Resource."""
    return f"arn:aws:ses:{region}:{account_id}:identity/{identity}"


def policy_allows(policies: dict[str, Any], account_id: str, action: str, resource: str) -> bool:
    """Whether an identity's policies let ``account_id`` perform ``action`` (``ses:SendEmail``...) on
    ``resource`` (the identity's own ARN)."""
    allowed = False
    for text in policies.values():
        try:
            doc = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            return False  # a document we cannot read might hold a Deny
        statements = doc.get("Statement", []) if isinstance(doc, dict) else []
        for st in statements if isinstance(statements, list) else [statements]:
            if not isinstance(st, dict):
                continue
            if st.get("Effect") == "Deny" and _deny_applies(st, account_id, action, resource):
                return False
            if st.get("Effect") == "Allow" and _allow_applies(st, account_id, action, resource):
                allowed = True
    return allowed


def _allow_applies(st: dict[str, Any], account_id: str, action: str, resource: str) -> bool:
    return (
        not any(key in st for key in _UNEVALUATED)
        and _principal_matches(st.get("Principal"), account_id)
        and any(_action_pattern(a).fullmatch(action) for a in _as_list(st.get("Action")))
        and any(_arn_pattern(r).fullmatch(resource) for r in _as_list(st.get("Resource")))
    )


def _deny_applies(st: dict[str, Any], account_id: str, action: str, resource: str) -> bool:
    """An element that is absent counts as matching (IAM requires all three; PutIdentityPolicy here does
    not check for them)."""
    return (
        ("Principal" not in st or _principal_matches(st["Principal"], account_id))
        and ("Action" not in st or any(_action_pattern(a).fullmatch(action) for a in _as_list(st["Action"])))
        and (
            "Resource" not in st or any(_arn_pattern(r).fullmatch(resource) for r in _as_list(st["Resource"]))
        )
    )


def _as_list(value: Any) -> Sequence[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


def _principal_matches(principal: Any, account_id: str) -> bool:
    """``*``, ``{"AWS": "*"}``, the account id or the account's root ARN. IAM takes no other wildcard in
    a principal, and a user or role ARN names someone a Sesame account's keys never are."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    own = (account_id, f"arn:aws:iam::{account_id}:root")
    return any(entry == "*" or entry in own for entry in _as_list(principal.get("AWS")))


@lru_cache(maxsize=1024)
def _action_pattern(pattern: str) -> re.Pattern[str]:
    """Action names are case-insensitive; ``*`` is any run of characters and ``?`` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.IGNORECASE)


@lru_cache(maxsize=1024)
def _arn_pattern(pattern: str) -> re.Pattern[str]:
    """ARNs match case-sensitively. ``?`` is one character and ``*`` any run within one segment (the parts
    between colons), but a ``*`` that ends a segment may run over the colons after it; the service
    segment takes no wildcard."""
    segments = pattern.split(":")
    if pattern != "*" and len(segments) > 2 and ("*" in segments[2] or "?" in segments[2]):
        return re.compile(r"(?!)")  # matches nothing
    out = []
    for i, c in enumerate(pattern):
        if c == "*":
            out.append(".*" if pattern[i + 1 : i + 2] in ("", ":") else "[^:]*")
        else:
            out.append("[^:]" if c == "?" else re.escape(c))
    return re.compile("".join(out))
