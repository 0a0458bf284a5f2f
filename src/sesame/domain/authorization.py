"""Sending authorization: whether an identity's policies let another account send through it.

An identity owner attaches IAM-style policies to a verified identity; a delegate account then sends as
an address of that identity by naming the identity's ARN (SourceArn, FromArn, ReturnPathArn, v2
FromEmailAddressIdentityArn...). This module evaluates those policies; it reads no storage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


def policy_allows(policies: dict[str, Any], account_id: str, arn: str) -> bool:
    """Whether an identity's sending-authorization policies let ``account_id`` send through it.

    Evaluated: Effect, Principal (account id, account ARN, user/role ARNs in it, or ``*``), Action
    (``ses:Send*`` family) and Resource. Conditions are not evaluated yet: a statement with a Condition
    does not allow anything, so nothing is authorized that a condition might have refused.
    """
    allowed = False
    for text in policies.values():
        try:
            doc = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            continue
        statements = doc.get("Statement", []) if isinstance(doc, dict) else []
        for st in statements if isinstance(statements, list) else [statements]:
            if not isinstance(st, dict) or not _principal(st.get("Principal"), account_id):
                continue
            actions = _as_list(st.get("Action"))
            if not any(a in ("ses:*", "ses:Send*", "*") or a.startswith("ses:Send") for a in actions):
                continue
            resources = _as_list(st.get("Resource"))
            if resources and not any(
                r in ("*", arn) or arn.endswith(r.rpartition(":")[2]) for r in resources
            ):
                continue
            if st.get("Effect") == "Deny":
                return False
            if st.get("Effect") == "Allow" and not st.get("Condition"):
                allowed = True
    return allowed


def _as_list(value: Any) -> Sequence[str]:
    return [value] if isinstance(value, str) else [v for v in value or [] if isinstance(v, str)]


def _principal(principal: Any, account_id: str) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    entries = _as_list(principal.get("AWS"))
    return any(e == "*" or e == account_id or f":{account_id}:" in e for e in entries)
