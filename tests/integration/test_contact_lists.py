"""Contact lists and contacts (SES v2) as boto3 sees them: CRUD, filters, paging, replacement
semantics and every error (serve mode, both databases)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.conftest import Serve

TOPICS = [
    {
        "TopicName": "news",
        "DisplayName": "Newsletter",
        "Description": "Monthly news",
        "DefaultSubscriptionStatus": "OPT_IN",
    },
    {"TopicName": "offers", "DisplayName": "Offers", "DefaultSubscriptionStatus": "OPT_OUT"},
]


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


@pytest.fixture
def v2(serve: Serve, request: pytest.FixtureRequest) -> Any:
    account = serve.new_account(f"cl-{request.node.name[-40:]}")
    client = serve.client("sesv2", account)
    client.account_id = account["AccountId"]
    client.create_contact_list(ContactListName="members", Topics=TOPICS, Description="All members")
    return client


def test_list_create_get_update_delete(v2: Any) -> None:
    got = v2.get_contact_list(ContactListName="members")
    assert got["ContactListName"] == "members"
    assert got["Description"] == "All members"
    assert got["Topics"] == TOPICS
    assert got["CreatedTimestamp"] <= got["LastUpdatedTimestamp"]
    listed = v2.list_contact_lists()["ContactLists"]
    assert [x["ContactListName"] for x in listed] == ["members"]

    # UpdateContactList replaces the topics and the description.
    v2.update_contact_list(ContactListName="members", Topics=TOPICS[:1])
    got = v2.get_contact_list(ContactListName="members")
    assert got["Topics"] == TOPICS[:1]
    assert "Description" not in got

    v2.create_contact(ContactListName="members", EmailAddress="a@example.com")
    v2.delete_contact_list(ContactListName="members")
    with pytest.raises(ClientError) as exc:
        v2.get_contact_list(ContactListName="members")
    assert _code(exc) == "NotFoundException"
    # The list's contacts went with it: a new list of the same name starts empty.
    v2.create_contact_list(ContactListName="members", Topics=TOPICS)
    assert v2.list_contacts(ContactListName="members")["Contacts"] == []


def test_list_errors(v2: Any) -> None:
    with pytest.raises(ClientError) as exc:
        v2.create_contact_list(ContactListName="members")
    assert _code(exc) == "AlreadyExistsException"
    # One contact list per account and region.
    with pytest.raises(ClientError) as exc:
        v2.create_contact_list(ContactListName="second")
    assert _code(exc) == "LimitExceededException"
    many = [
        {"TopicName": f"t{i}", "DisplayName": f"T{i}", "DefaultSubscriptionStatus": "OPT_IN"}
        for i in range(21)
    ]
    with pytest.raises(ClientError) as exc:
        v2.update_contact_list(ContactListName="members", Topics=many)
    assert _code(exc) == "LimitExceededException"
    with pytest.raises(ClientError) as exc:
        v2.update_contact_list(ContactListName="members", Topics=[TOPICS[0], TOPICS[0]])
    assert _code(exc) == "BadRequestException"
    for call in (
        lambda: v2.update_contact_list(ContactListName="nope", Topics=TOPICS),
        lambda: v2.delete_contact_list(ContactListName="nope"),
        lambda: v2.create_contact(ContactListName="nope", EmailAddress="a@example.com"),
        lambda: v2.list_contacts(ContactListName="nope"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "NotFoundException"


def test_contact_create_get_update_delete(v2: Any) -> None:
    v2.create_contact(
        ContactListName="members",
        EmailAddress="Jo@Example.com",
        TopicPreferences=[{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}],
        AttributesData=json.dumps({"Name": "Jo"}),
    )
    got = v2.get_contact(ContactListName="members", EmailAddress="jo@example.com")
    assert got["EmailAddress"] == "Jo@Example.com"
    assert got["TopicPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_IN"}]
    # The topics the contact did not choose show the list's defaults.
    assert got["TopicDefaultPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}]
    assert got["UnsubscribeAll"] is False
    assert json.loads(got["AttributesData"]) == {"Name": "Jo"}

    # UpdateContact replaces everything: preferences not given are dropped.
    v2.update_contact(
        ContactListName="members",
        EmailAddress="Jo@Example.com",
        TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}],
    )
    got = v2.get_contact(ContactListName="members", EmailAddress="Jo@Example.com")
    assert got["TopicPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_OUT"}]
    assert got["TopicDefaultPreferences"] == [{"TopicName": "offers", "SubscriptionStatus": "OPT_OUT"}]
    assert "AttributesData" not in got

    v2.delete_contact(ContactListName="members", EmailAddress="Jo@Example.com")
    with pytest.raises(ClientError) as exc:
        v2.get_contact(ContactListName="members", EmailAddress="Jo@Example.com")
    assert _code(exc) == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        v2.delete_contact(ContactListName="members", EmailAddress="Jo@Example.com")
    assert _code(exc) == "NotFoundException"


def test_contact_errors(v2: Any) -> None:
    v2.create_contact(ContactListName="members", EmailAddress="a@example.com")
    with pytest.raises(ClientError) as exc:
        v2.create_contact(ContactListName="members", EmailAddress="A@example.com")
    assert _code(exc) == "AlreadyExistsException"
    bad: list[dict[str, Any]] = [
        {"EmailAddress": "not-an-address"},
        {"EmailAddress": "b@example.com", "AttributesData": "[1, 2]"},
        {"EmailAddress": "b@example.com", "AttributesData": "{not json"},
        {
            "EmailAddress": "b@example.com",
            "TopicPreferences": [{"TopicName": "sports", "SubscriptionStatus": "OPT_IN"}],
        },
    ]
    for params in bad:
        with pytest.raises(ClientError) as exc:
            v2.create_contact(ContactListName="members", **params)
        assert _code(exc) == "BadRequestException", params
    with pytest.raises(ClientError) as exc:
        v2.update_contact(ContactListName="members", EmailAddress="nobody@example.com")
    assert _code(exc) == "NotFoundException"
    with pytest.raises(ClientError) as exc:
        v2.list_contacts(ContactListName="members", Filter={"TopicFilter": {"TopicName": "sports"}})
    assert _code(exc) == "BadRequestException"
    with pytest.raises(ClientError) as exc:
        v2.list_contacts(ContactListName="members", NextToken="!!!")
    assert _code(exc) == "BadRequestException"


def _addresses(v2: Any, **kw: Any) -> list[str]:
    return [c["EmailAddress"] for c in v2.list_contacts(ContactListName="members", **kw)["Contacts"]]


def test_list_contacts_filters(v2: Any) -> None:
    def contact(address: str, news: str | None = None, unsubscribe_all: bool = False) -> None:
        prefs = [{"TopicName": "news", "SubscriptionStatus": news}] if news else []
        v2.create_contact(
            ContactListName="members",
            EmailAddress=address,
            TopicPreferences=prefs,
            UnsubscribeAll=unsubscribe_all,
        )

    contact("in@example.com", news="OPT_IN")
    contact("out@example.com", news="OPT_OUT")
    contact("silent@example.com")
    contact("gone@example.com", news="OPT_IN", unsubscribe_all=True)

    assert _addresses(v2) == ["gone@example.com", "in@example.com", "out@example.com", "silent@example.com"]
    # Without a topic, OPT_OUT means unsubscribed from every topic.
    assert _addresses(v2, Filter={"FilteredStatus": "OPT_OUT"}) == ["gone@example.com"]
    assert _addresses(v2, Filter={"FilteredStatus": "OPT_IN"}) == [
        "in@example.com",
        "out@example.com",
        "silent@example.com",
    ]
    news = {"TopicName": "news", "UseDefaultIfPreferenceUnavailable": False}
    assert _addresses(v2, Filter={"FilteredStatus": "OPT_IN", "TopicFilter": news}) == ["in@example.com"]
    assert _addresses(v2, Filter={"FilteredStatus": "OPT_OUT", "TopicFilter": news}) == [
        "gone@example.com",
        "out@example.com",
    ]
    # With the default, a contact without a preference takes the topic's (news: OPT_IN).
    news_default = {"TopicName": "news", "UseDefaultIfPreferenceUnavailable": True}
    assert _addresses(v2, Filter={"FilteredStatus": "OPT_IN", "TopicFilter": news_default}) == [
        "in@example.com",
        "silent@example.com",
    ]


def test_list_contacts_paging(v2: Any) -> None:
    for i in range(7):
        v2.create_contact(
            ContactListName="members",
            EmailAddress=f"p{i}@example.com",
            TopicPreferences=[{"TopicName": "news", "SubscriptionStatus": "OPT_IN" if i % 2 else "OPT_OUT"}],
        )
    seen: list[str] = []
    token = None
    while True:
        kw: dict[str, Any] = {
            "PageSize": 2,
            "Filter": {"FilteredStatus": "OPT_IN", "TopicFilter": {"TopicName": "news"}},
        }
        if token:
            kw["NextToken"] = token
        page = v2.list_contacts(ContactListName="members", **kw)
        assert len(page["Contacts"]) <= 2
        seen += [c["EmailAddress"] for c in page["Contacts"]]
        token = page.get("NextToken")
        if not token:
            break
    assert seen == ["p1@example.com", "p3@example.com", "p5@example.com"]
    with pytest.raises(ClientError) as exc:
        v2.list_contacts(ContactListName="members", PageSize=1001)
    assert _code(exc) == "BadRequestException"


def test_tags(v2: Any) -> None:
    arn = f"arn:aws:ses:us-east-1:{v2.account_id}:contact-list/members"
    v2.tag_resource(ResourceArn=arn, Tags=[{"Key": "team", "Value": "growth"}])
    assert v2.get_contact_list(ContactListName="members")["Tags"] == [{"Key": "team", "Value": "growth"}]
    with pytest.raises(ClientError) as exc:
        v2.tag_resource(ResourceArn=arn.replace("members", "other"), Tags=[{"Key": "a", "Value": "b"}])
    assert _code(exc) == "NotFoundException"
