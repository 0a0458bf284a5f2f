"""Model-driven validation: every operation's example input, then exact AWS (Coral) messages."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.model import Shape

from sesame.awsapi import errors, validation
from sesame.awsapi.spec import operation_model, service_model
from sesame.awsapi.validation import validate, violations
from sesame.testing.examples import example

OPERATIONS = [(svc, name) for svc in ("ses", "sesv2") for name in service_model(svc).operation_names]
BAD_REQUEST = errors.service_errors("sesv2").BadRequestException


def honour_model(shape: Shape, value: Any) -> Any:
    """Repair what examples.py does not aim at: structures cut off below depth 4 (their required members
    missing), lists longer than their max, and map keys ignoring an enum key shape."""
    t = shape.type_name
    if t == "structure" and isinstance(value, dict):
        if any(name not in value for name in shape.required_members):
            value = example(shape)
        return {k: honour_model(shape.members[k], v) for k, v in value.items()}
    if t == "list":
        return [honour_model(shape.member, x) for x in value[: shape.metadata.get("max")]]
    if t == "map":
        keys = shape.key.enum or [k for k in value]
        return {keys[i % len(keys)]: honour_model(shape.value, v) for i, v in enumerate(value.values())}
    return value


def message(svc: str, op: str, params: dict[str, Any]) -> tuple[type, str]:
    with pytest.raises(errors.ServiceError) as raised:
        validate(operation_model(svc, op), params)  # type: ignore[arg-type]
    return type(raised.value), raised.value.message


@pytest.mark.parametrize(("svc", "name"), OPERATIONS)
def test_examples_fail_only_on_patterns(svc: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    op = operation_model(svc, name)  # type: ignore[arg-type]
    params = honour_model(op.input_shape, example(op.input_shape)) if op.input_shape else {}
    found = violations(op, params)
    # The fast path and the message builder must agree on whether anything is wrong.
    if found:
        with pytest.raises(errors.ServiceError):
            validate(op, params)
    else:
        validate(op, params)
    assert all("regular expression pattern" in v.text for v in found), found
    # violations() never compiles the cached fast path, so disabling patterns here is contained.
    monkeypatch.setattr(validation, "_pattern", lambda pattern: None)
    assert violations(op, params) == []


def test_every_model_pattern_translates() -> None:
    patterns = set()
    for svc in ("ses", "sesv2"):
        shapes = service_model(svc)._shape_resolver._shape_map  # the raw model: every shape, used or not
        patterns |= {s["pattern"] for s in shapes.values() if "pattern" in s}
    assert len(patterns) == 13
    assert all(validation._pattern(p) is not None for p in patterns)
    assert not patterns & validation.SKIPPED_PATTERNS


def test_v1_missing_required_members_top_level_and_nested() -> None:
    assert message("ses", "SendEmail", {}) == (
        errors.ValidationError,
        (
            "3 validation errors detected: "
            "Value null at 'source' failed to satisfy constraint: Member must not be null; "
            "Value null at 'destination' failed to satisfy constraint: Member must not be null; "
            "Value null at 'message' failed to satisfy constraint: Member must not be null"
        ),
    )
    params = {
        "Source": "a@example.com",
        "Destination": {},
        "Message": {"Subject": {}, "Body": {}},
        "Tags": [{"Name": "a", "Value": "b"}, {"Name": "c"}],
    }
    assert message("ses", "SendEmail", params)[1] == (
        "2 validation errors detected: "
        "Value null at 'message.subject.data' failed to satisfy constraint: Member must not be null; "
        "Value null at 'tags.2.member.value' failed to satisfy constraint: Member must not be null"
    )


def test_v1_lengths_ranges_patterns_and_list_elements() -> None:
    long = "p" * 65
    assert message("ses", "PutIdentityPolicy", {"Identity": "i", "PolicyName": long, "Policy": "{}"})[1] == (
        f"1 validation error detected: Value '{long}' at 'policyName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64"
    )
    assert message("ses", "DeleteIdentityPolicy", {"Identity": "i", "PolicyName": ""})[1] == (
        "1 validation error detected: Value '' at 'policyName' failed to satisfy constraint: "
        "Member must have length greater than or equal to 1"
    )
    assert message("ses", "ListCustomVerificationEmailTemplates", {"MaxResults": 51})[1] == (
        "1 validation error detected: Value '51' at 'maxResults' failed to satisfy constraint: "
        "Member must have value less than or equal to 50"
    )
    assert message("ses", "ListCustomVerificationEmailTemplates", {"MaxResults": 0})[1].endswith(
        "Member must have value greater than or equal to 1"
    )
    assert message("ses", "GetIdentityPolicies", {"Identity": "i", "PolicyNames": ["ok", ""]})[1] == (
        "1 validation error detected: Value '[ok, ]' at 'policyNames' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 64, "
        "Member must have length greater than or equal to 1]"
    )
    rule = {
        "Name": "r",
        "Actions": [
            {"StopAction": {"Scope": "RuleSet"}},
            {"S3Action": {"BucketName": "b", "IamRoleArn": "not-an-arn"}},
        ],
    }
    at = "Value 'not-an-arn' at 'rule.actions.2.member.s3Action.iamRoleArn' failed to satisfy constraint"
    assert message("ses", "CreateReceiptRule", {"RuleSetName": "s", "Rule": rule})[1] == (
        f"2 validation errors detected: {at}: Member must have length greater than or equal to 20; "
        f"{at}: Member must satisfy regular expression pattern: "
        r"arn:[\w-]+:iam::[0-9]+:role(\u002F)([\u0021-\u007E]+\u002F)?([\w+=,.@-]+)"
    )
    rule["Actions"][1]["S3Action"]["IamRoleArn"] = "arn:aws:iam::123456789012:role/ses-writer"
    validate(operation_model("ses", "CreateReceiptRule"), {"RuleSetName": "s", "Rule": rule})


def test_v1_enums_answer_in_coral_words_with_values_sorted() -> None:
    # The answer SES v1 gives (issue 15): ValidationError, the value echoed, the enum's values sorted.
    assert message("ses", "ListIdentities", {"IdentityType": "Unknown"}) == (
        errors.ValidationError,
        "1 validation error detected: Value 'Unknown' at 'identityType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [Domain, EmailAddress]",
    )
    destination = {"Name": "d", "MatchingEventTypes": ["send", "bogus"]}
    assert message(
        "ses",
        "CreateConfigurationSetEventDestination",
        {"ConfigurationSetName": "c", "EventDestination": destination},
    )[1] == (
        "1 validation error detected: Value '[send, bogus]' at 'eventDestination.matchingEventTypes' "
        "failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value "
        "set: [bounce, click, complaint, delivery, open, reject, renderingFailure, send]]"
    )


def test_v1_notification_types_are_checked_by_the_handler_after_model_errors() -> None:
    params = {"Identity": "a@example.com", "NotificationType": "InvalidType", "Enabled": True}
    assert message("ses", "SetIdentityHeadersInNotificationsEnabled", params) == (
        errors.InvalidParameterValue,
        "Invalid notification type: InvalidType. Valid values are: Bounce, Complaint, Delivery.",
    )
    del params["Identity"]  # model validation comes first and does not mention the enum
    assert message("ses", "SetIdentityHeadersInNotificationsEnabled", params) == (
        errors.ValidationError,
        "1 validation error detected: Value null at 'identity' failed to satisfy constraint: "
        "Member must not be null",
    )


def test_v2_bad_request_without_echoed_values() -> None:
    cls, text = message("sesv2", "PutAccountDetails", {})
    assert (cls, cls.code, cls.status) == (BAD_REQUEST, "BadRequestException", 400)
    assert text == (
        "2 validation errors detected: "
        "Value at 'mailType' failed to satisfy constraint: Member must not be null; "
        "Value at 'websiteURL' failed to satisfy constraint: Member must not be null"
    )
    params = {
        "MailType": "NEWSLETTER",
        "WebsiteURL": "https://example.com",
        "UseCaseDescription": "u" * 5001,
        "AdditionalContactEmailAddresses": ["ops@example.com", "nobody"],
        "ContactLanguage": "EN",
    }
    assert message("sesv2", "PutAccountDetails", params)[1] == (
        "3 validation errors detected: "
        "Value at 'mailType' failed to satisfy constraint: "
        "Member must satisfy enum value set: [MARKETING, TRANSACTIONAL]; "
        "Value at 'useCaseDescription' failed to satisfy constraint: "
        "Member must have length less than or equal to 5000; "
        "Value at 'additionalContactEmailAddresses' failed to satisfy constraint: "
        "Member must satisfy constraint: [Member must have length less than or equal to 254, "
        "Member must have length greater than or equal to 6, "
        "Member must satisfy regular expression pattern: ^(.+)@(.+)$]"
    )


@pytest.mark.parametrize(
    ("contacts", "constraint"),
    [
        ([], "Member must have length greater than or equal to 1"),
        ([f"c{i}@example.com" for i in range(5)], "Member must have length less than or equal to 4"),
    ],
)
def test_v2_list_too_short_and_too_long(contacts: list[str], constraint: str) -> None:
    params = {
        "MailType": "MARKETING",
        "WebsiteURL": "https://example.com",
        "AdditionalContactEmailAddresses": contacts,
    }
    assert message("sesv2", "PutAccountDetails", params)[1] == (
        "1 validation error detected: Value at 'additionalContactEmailAddresses' failed to satisfy "
        f"constraint: {constraint}"
    )


def test_v2_numbers_patterns_and_map_keys() -> None:
    delivery = {"ConfigurationSetName": "c", "MaxDeliverySeconds": 299}
    assert message("sesv2", "PutConfigurationSetDeliveryOptions", delivery)[1] == (
        "1 validation error detected: Value at 'maxDeliverySeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 300"
    )
    job = {
        "ImportDestination": {"SuppressionListDestination": {"SuppressionListImportAction": "PUT"}},
        "ImportDataSource": {"S3Url": "https://bucket/key", "DataFormat": "CSV"},
    }
    assert message("sesv2", "CreateImportJob", job)[1] == (
        "1 validation error detected: Value at 'importDataSource.s3Url' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: ^s3:\/\/([^\/]+)\/(.*?([^\/]+)\/?)$"
    )
    assert message("sesv2", "ListEmailIdentities", {"Filter": {"COLOR": "blue"}})[1] == (
        "1 validation error detected: Value at 'filter' failed to satisfy constraint: Map keys must "
        "satisfy constraint: [Member must satisfy enum value set: "
        "[IDENTITY_NAME_CONTAINS, IDENTITY_TYPE, VERIFICATION_STATUS]]"
    )
    validate(operation_model("sesv2", "ListEmailIdentities"), {"Filter": {"IDENTITY_TYPE": "DOMAIN"}})


def test_valid_send_and_wrong_types_pass_through() -> None:
    send = {
        "Source": "a@example.com",
        "Destination": {"ToAddresses": ["b@example.com"]},
        "Message": {"Subject": {"Data": "Hi"}, "Body": {"Text": {"Data": "Hello"}}},
        "Tags": [{"Name": "campaign", "Value": "spring"}],
    }
    validate(operation_model("ses", "SendEmail"), send)
    # Types are the parsers' business (SerializationException); validation neither crashes nor reports.
    validate(operation_model("ses", "SendEmail"), {"Source": 5, "Destination": "x", "Message": []})


@pytest.mark.parametrize(
    ("java", "good", "bad"),
    [
        (r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*", "Zoë 12 a@b", "a&b"),
        (r"\P{Cc}+", "abc", "a\x01"),
        (r"[\p{Alpha}]+", "ab", "a1"),
        (r"[a-z]++", "abc", "ab1"),
        (r"\Qa.b\E", "a.b", "axb"),
        (r"\x{1F600}", "\U0001f600", "x"),
        (r"[ -~]*", "plain ASCII", "naïve"),  # matched in full, as Java's Matcher.matches does
    ],
)
def test_java_patterns(java: str, good: str, bad: str) -> None:
    compiled = validation._pattern(java)
    assert compiled is not None and compiled.fullmatch(good) and not compiled.fullmatch(bad)


def test_untranslatable_patterns_are_skipped_and_counted() -> None:
    for java in (r"\p{javaLowerCase}+", "[a-z&&[^b]]", "[a-z[A-Z]]"):
        assert validation._pattern(java) is None
        assert java in validation.SKIPPED_PATTERNS
