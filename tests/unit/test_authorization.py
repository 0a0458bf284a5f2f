"""Sending-authorization policies, evaluated as IAM does: exact ARNs, IAM wildcards, Deny wins."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sesame.domain.authorization import identity_arn, policy_allows

OWNER, DELEGATE, OTHER = "111111111111", "222222222222", "333333333333"
ARN = identity_arn("us-east-1", OWNER, "example.com")  # the identity sent through
SEND = "ses:SendEmail"


def statement(**fields: Any) -> dict[str, Any]:
    base = {"Effect": "Allow", "Principal": {"AWS": [DELEGATE]}, "Action": [SEND], "Resource": ARN}
    return {**base, **fields}


def allows(*statements: dict[str, Any], action: str = SEND, account: str = DELEGATE) -> bool:
    policies = {
        f"p{i}": json.dumps({"Version": "2012-10-17", "Statement": [s]}) for i, s in enumerate(statements)
    }
    return policy_allows(policies, account, action, ARN)


def test_an_allow_for_the_exact_arn_allows() -> None:
    assert allows(statement())
    assert not allows()  # no policy, no permission
    assert not allows(statement(), account=OTHER)


@pytest.mark.parametrize(
    "resource",
    [
        identity_arn("eu-west-1", OWNER, "example.com"),  # another region
        identity_arn("us-east-1", OTHER, "example.com"),  # another account
        identity_arn("us-east-1", OWNER, "mail.example.com"),
        identity_arn("us-east-1", OWNER, "Example.com"),  # ARNs are case-sensitive
        "arn:aws:sns:us-east-1:111111111111:identity/example.com",
        "arn:aws-cn:ses:us-east-1:111111111111:identity/example.com",
        "identity/example.com",
        "example.com",
        "x:com",  # the old suffix rule matched this
        "arn:aws:*:us-east-1:111111111111:identity/example.com",  # no wildcard in the service segment
        "arn:aws:ses:us-east-?:111111111111:identity/example.co?m",
        "arn:aws:ses:*-1:111111111111:identity/*.example.com",
    ],
)
def test_other_resources_do_not_match(resource: str) -> None:
    assert not allows(statement(Resource=resource))
    assert not allows(statement(Resource=[resource, "arn:aws:ses:us-east-1:111111111111:identity/other.com"]))


@pytest.mark.parametrize(
    "resource",
    [
        "*",
        [ARN],
        ["arn:aws:ses:us-east-1:111111111111:identity/other.com", ARN],
        "arn:aws:ses:*:111111111111:identity/example.com",  # the region by wildcard
        "arn:aws:ses:us-east-?:111111111111:identity/example.com",
        "arn:aws:ses:us-*-1:111111111111:identity/example.com",
        "arn:aws:ses:us-east-1:111111111111:identity/*",
        "arn:aws:ses:us-east-1:111111111111:identity/example.*",
        "arn:aws:ses:us-east-1:*:identity/example.com",
        "arn:aws:ses:*",  # a * that ends a segment runs on over the colons
    ],
)
def test_iam_wildcards_match(resource: str | list[str]) -> None:
    assert allows(statement(Resource=resource))


def test_a_star_inside_a_segment_stays_in_it() -> None:
    assert not allows(statement(Resource="arn:aws:ses:us*111111111111:identity/example.com"))


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": DELEGATE},
        {"AWS": [OTHER, DELEGATE]},
        {"AWS": f"arn:aws:iam::{DELEGATE}:root"},
    ],
)
def test_principals_that_name_the_account(principal: Any) -> None:
    assert allows(statement(Principal=principal))


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": OTHER},
        {"AWS": f"arn:aws:iam::{OTHER}:root"},
        {"AWS": f"arn:aws:iam::{DELEGATE}:user/John"},  # a user is not the account's own keys
        {"AWS": f"arn:aws:iam::{DELEGATE}:role/sender"},
        {"AWS": "2222*"},  # IAM takes no partial wildcard in a principal
        {"AWS": f"x:{DELEGATE}:y"},  # the old substring rule matched this
        {"Service": "cognito-idp.amazonaws.com"},
        DELEGATE,
        None,
    ],
)
def test_principals_that_do_not(principal: Any) -> None:
    assert not allows(statement(Principal=principal))


@pytest.mark.parametrize(
    ("actions", "action", "allowed"),
    [
        (["ses:SendEmail"], "ses:SendEmail", True),
        (["SES:sendemail"], "ses:SendEmail", True),  # action names are case-insensitive
        (["ses:Send*"], "ses:SendRawEmail", True),
        (["ses:*"], "ses:SendBulkEmail", True),
        ("*", "ses:SendTemplatedEmail", True),
        (["ses:Send?awEmail"], "ses:SendRawEmail", True),
        (["ses:SendTemplatedEmail"], "ses:SendEmail", False),
        (["ses:SendRawEmail"], "ses:SendEmail", False),
        (["ses:GetEmailIdentity"], "ses:SendEmail", False),
        ([], "ses:SendEmail", False),
    ],
)
def test_actions(actions: Any, action: str, allowed: bool) -> None:
    assert allows(statement(Action=actions), action=action) is allowed


def test_deny_wins_over_any_allow() -> None:
    deny = statement(Effect="Deny")
    assert not allows(statement(), deny)
    assert not allows(deny, statement(Principal="*", Resource="*", Action="*"))
    assert not allows(statement(), statement(Effect="Deny", Principal="*", Action="ses:Send*"))
    # A Deny for someone else, another action or another identity leaves the Allow standing.
    assert allows(statement(), statement(Effect="Deny", Principal={"AWS": OTHER}))
    assert allows(statement(), statement(Effect="Deny", Action="ses:SendRawEmail"))
    assert allows(statement(), statement(Effect="Deny", Resource=identity_arn("us-east-1", OWNER, "x.com")))


def test_unevaluated_elements_are_read_the_safe_way() -> None:
    condition = {"StringLike": {"ses:FromAddress": "invoicing*@example.com"}}
    assert not allows(statement(Condition=condition))  # a conditional Allow allows nothing
    assert not allows(statement(), statement(Effect="Deny", Condition=condition))  # a conditional Deny denies
    for element in ("NotPrincipal", "NotAction", "NotResource"):
        assert not allows(statement(**{element: "x"}))
        assert not allows(statement(), statement(Effect="Deny", **{element: "x"}))
    # A Deny missing an element applies as if the element matched; an Allow missing one grants nothing.
    deny = statement(Effect="Deny")
    del deny["Principal"]
    assert not allows(statement(), deny)
    for element in ("Principal", "Action", "Resource"):
        allow = statement()
        del allow[element]
        assert not allows(allow)


def test_odd_documents() -> None:
    assert not policy_allows({"p": "not json"}, DELEGATE, SEND, ARN)
    assert not policy_allows(
        {"p": "not json", "q": json.dumps({"Statement": [statement()]})}, DELEGATE, SEND, ARN
    )
    assert policy_allows(
        {"p": json.dumps({"Statement": statement()})}, DELEGATE, SEND, ARN
    )  # one, not a list
    assert not policy_allows(
        {"p": json.dumps({"Statement": [statement(Effect="allow")]})}, DELEGATE, SEND, ARN
    )
    assert not policy_allows({"p": json.dumps([1, 2])}, DELEGATE, SEND, ARN)
