"""What a receipt rule set, a receipt rule and an IP filter may be: names, limits, the checks of each
action, and the errors SES answers for each (rules.py stores what passes).

Names and limits: SES API reference (ReceiptRuleSetMetadata, ReceiptRule, ReceiptFilter) and the
developer guide's quotas page: 200 rules per set, 40 rule sets and 100 IP filters per account, 100
recipients and 10 actions per rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sesame.domain.addresses import is_domain
from sesame.errors import AlreadyExists, InvalidRequest, LimitExceeded, NotFound
from sesame.receiving.matching import parse_cidr

MAX_RULES_PER_SET = 200
MAX_RULE_SETS = 40
MAX_FILTERS = 100
MAX_RECIPIENTS = 100
MAX_ACTIONS = 10

# Start and end with a letter or digit, at most 64 characters; rules may have periods too.
RULE_SET_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]{0,62}[A-Za-z0-9])?")
RULE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?")
FILTER_NAME = RULE_SET_NAME
HEADER_NAME = re.compile(r"[A-Za-z0-9-]{1,50}")
MAX_HEADER_VALUE = 2048
# RFC 5321 §4.2: a reply code; a bounce is a permanent (5yz) or transient (4yz) failure.
SMTP_REPLY_CODE = re.compile(r"[45][0-9][0-9]")
# RFC 3463 §2: class.subject.detail.
STATUS_CODE = re.compile(r"[45]\.[0-9]{1,3}\.[0-9]{1,3}")
# S3 bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a
# letter or digit.
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

_SNS_ARN = re.compile(r"arn:aws[a-z-]*:sns:([a-z0-9-]+):\d{12}:[A-Za-z0-9_-]{1,256}")
_LAMBDA_ARN = re.compile(
    r"arn:aws[a-z-]*:lambda:([a-z0-9-]+):\d{12}:function:[A-Za-z0-9_-]{1,64}(?::[A-Za-z0-9$_-]{1,128})?"
)
_KMS_ARN = re.compile(r"arn:aws[a-z-]*:kms:([a-z0-9-]+):\d{12}:(?:key/[A-Za-z0-9-]+|alias/aws/ses)")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}")
_WORKMAIL_ARN = re.compile(r"arn:aws[a-z-]*:workmail:([a-z0-9-]+):\d{12}:organization/m-[0-9a-f]+")

ACTIONS = (
    "S3Action",
    "BounceAction",
    "WorkmailAction",
    "LambdaAction",
    "StopAction",
    "AddHeaderAction",
    "SNSAction",
    "ConnectAction",
)


class _Named:
    """Error shapes of SES v1 receiving carry a member naming what was wrong (``Name``, ``Topic``,
    ``Bucket``, ``FunctionArn``); providers/errors.py passes ``fields`` on."""

    fields: dict[str, str]


class RuleSetNotFound(NotFound, _Named):
    def __init__(self, name: str) -> None:
        super().__init__(f"Rule set does not exist: {name}")
        self.fields = {"Name": name}


class RuleNotFound(NotFound, _Named):
    def __init__(self, name: str) -> None:
        super().__init__(f"Rule does not exist: {name}")
        self.fields = {"Name": name}


class ReceiptExists(AlreadyExists, _Named):
    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"{what} {name} already exists.")
        self.fields = {"Name": name}


class RuleSetInUse(InvalidRequest, _Named):
    """The active rule set cannot be deleted (SES's CannotDelete)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Cannot delete active rule set: {name}")
        self.fields = {"Name": name}


class InvalidSnsTopic(InvalidRequest, _Named):
    def __init__(self, topic: str, why: str) -> None:
        super().__init__(f"Invalid SNS topic <{topic}>: {why}")
        self.fields = {"Topic": topic}


class InvalidS3Configuration(InvalidRequest, _Named):
    def __init__(self, bucket: str, why: str) -> None:
        super().__init__(f"Invalid S3 configuration for bucket <{bucket}>: {why}")
        self.fields = {"Bucket": bucket}


class InvalidLambdaFunction(InvalidRequest, _Named):
    def __init__(self, function: str, why: str) -> None:
        super().__init__(f"Invalid Lambda function <{function}>: {why}")
        self.fields = {"FunctionArn": function}


class InvalidReceiptValue(InvalidRequest):
    """Anything else SES refuses as InvalidParameterValue."""


class TooMany(LimitExceeded):
    pass


def check_rule_set_name(name: str) -> None:
    if not RULE_SET_NAME.fullmatch(name or ""):
        raise InvalidReceiptValue(
            f"Invalid rule set name <{name}>: it must contain only ASCII letters, digits, '_' and '-', "
            "start and end with a letter or digit, and be at most 64 characters."
        )


def check_filter_name(name: str) -> None:
    if not FILTER_NAME.fullmatch(name or ""):
        raise InvalidReceiptValue(
            f"Invalid filter name <{name}>: it must contain only ASCII letters, digits, '_' and '-', "
            "start and end with a letter or digit, and be at most 64 characters."
        )


def receipt_filter(given: Mapping[str, Any]) -> dict[str, Any]:
    """The filter to store (API spelling), or the error SES answers for it."""
    name = str(given.get("Name") or "")
    check_filter_name(name)
    ip = given.get("IpFilter") or {}
    policy, cidr = str(ip.get("Policy") or ""), str(ip.get("Cidr") or "")
    if policy not in ("Block", "Allow"):
        raise InvalidReceiptValue(f"Invalid filter policy <{policy}>: it must be Block or Allow.")
    try:
        parse_cidr(cidr)
    except ValueError:
        raise InvalidReceiptValue(
            f"Invalid CIDR <{cidr}>: give an IP address (10.0.0.1) or a range (10.0.0.0/24)."
        ) from None
    return {"Name": name, "IpFilter": {"Policy": policy, "Cidr": cidr.strip()}}


def receipt_rule(given: Mapping[str, Any]) -> dict[str, Any]:
    """The rule to store, with SES's defaults filled in (Enabled false, TlsPolicy Optional, ScanEnabled
    false), or the error SES answers for it. Topics are checked against the region by ``topic_arns``
    and for existence by the caller (rules.py)."""
    name = str(given.get("Name") or "")
    if not RULE_NAME.fullmatch(name):
        raise InvalidReceiptValue(
            f"Invalid rule name <{name}>: it must contain only ASCII letters, digits, '_', '-' and '.', "
            "start and end with a letter or digit, and be at most 64 characters."
        )
    rule: dict[str, Any] = {
        "Name": name,
        "Enabled": bool(given.get("Enabled", False)),
        "TlsPolicy": given.get("TlsPolicy") or "Optional",
        "ScanEnabled": bool(given.get("ScanEnabled", False)),
    }
    recipients = [str(r).strip() for r in given.get("Recipients") or []]
    if len(recipients) > MAX_RECIPIENTS:
        raise TooMany(f"A receipt rule can have at most {MAX_RECIPIENTS} recipients.")
    for r in recipients:
        _check_recipient(r)
    if recipients:
        rule["Recipients"] = list(dict.fromkeys(recipients))
    actions = [dict(a) for a in given.get("Actions") or []]
    if len(actions) > MAX_ACTIONS:
        raise TooMany(f"A receipt rule can have at most {MAX_ACTIONS} actions.")
    for action in actions:
        _check_action(action)
    if actions:
        rule["Actions"] = actions
    return rule


def _check_recipient(condition: str) -> None:
    domain = condition.rpartition("@")[2] if "@" in condition else condition.removeprefix(".")
    local = condition.rpartition("@")[0]
    if ("@" in condition and not local) or len(condition) > 320 or not is_domain(domain):
        raise InvalidReceiptValue(
            f"Invalid recipient <{condition}>: give an address, a domain, or a domain with a leading dot "
            "for its subdomains."
        )


def _check_action(action: dict[str, Any]) -> None:
    kinds = [k for k in ACTIONS if action.get(k) is not None]
    if len(kinds) != 1:
        raise InvalidReceiptValue("Each receipt action must name one, and only one, action.")
    kind = kinds[0]
    body = action[kind]
    if kind == "S3Action":
        bucket = str(body.get("BucketName") or "")
        if not BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
            raise InvalidS3Configuration(bucket, "not a valid bucket name.")
        kms = body.get("KmsKeyArn")
        if kms is not None and not _KMS_ARN.fullmatch(str(kms)):
            raise InvalidS3Configuration(bucket, f"<{kms}> is not a KMS key ARN or alias/aws/ses.")
        role = body.get("IamRoleArn")
        if role is not None and not _ROLE_ARN.fullmatch(str(role)):
            raise InvalidS3Configuration(bucket, f"<{role}> is not an IAM role ARN.")
    elif kind == "BounceAction":
        if not SMTP_REPLY_CODE.fullmatch(str(body.get("SmtpReplyCode") or "")):
            raise InvalidReceiptValue(
                f"Invalid SMTP reply code <{body.get('SmtpReplyCode')}>: a bounce needs a 4xx or 5xx code."
            )
        status = body.get("StatusCode")
        if status is not None and not STATUS_CODE.fullmatch(str(status)):
            raise InvalidReceiptValue(f"Invalid status code <{status}>: it must look like 5.1.1.")
        sender = str(body.get("Sender") or "")
        local, at, domain = sender.rpartition("@")
        if not (local and at and is_domain(domain)):
            raise InvalidReceiptValue(f"Invalid bounce sender <{sender}>.")
    elif kind == "LambdaAction":
        function = str(body.get("FunctionArn") or "")
        if not _LAMBDA_ARN.fullmatch(function):
            raise InvalidLambdaFunction(function, "not a Lambda function ARN.")
    elif kind == "WorkmailAction":
        org = str(body.get("OrganizationArn") or "")
        if not _WORKMAIL_ARN.fullmatch(org):
            raise InvalidReceiptValue(f"Invalid WorkMail organization ARN <{org}>.")
    elif kind == "AddHeaderAction":
        header, value = str(body.get("HeaderName") or ""), str(body.get("HeaderValue") or "")
        if not HEADER_NAME.fullmatch(header):
            raise InvalidReceiptValue(
                f"Invalid header name <{header}>: 1 to 50 ASCII letters, digits and dashes."
            )
        # The value goes into the message's header section as it is: a CR or LF would end the field.
        if len(value) > MAX_HEADER_VALUE or "\r" in value or "\n" in value:
            raise InvalidReceiptValue(
                f"Invalid header value for {header}: at most {MAX_HEADER_VALUE} characters, no CR or LF."
            )
    elif kind == "SNSAction" and not body.get("TopicArn"):
        raise InvalidReceiptValue("An SNS action needs a TopicArn.")


def topic_arns(rule: Mapping[str, Any]) -> list[str]:
    """Every SNS topic a rule's actions name (each action may notify one), in order, once each."""
    arns = [
        str(body["TopicArn"])
        for action in rule.get("Actions") or []
        for body in action.values()
        if isinstance(body, Mapping) and body.get("TopicArn")
    ]
    return list(dict.fromkeys(arns))


def check_regions(rule: Mapping[str, Any], region: str) -> None:
    """SNS topics, Lambda functions, KMS keys and WorkMail organizations must be in the region that
    receives the mail (SES's guide, "Regions and Amazon SES"; S3 buckets may be elsewhere)."""
    for arn in topic_arns(rule):
        found = _SNS_ARN.fullmatch(arn)
        if not found:
            raise InvalidSnsTopic(arn, "not an SNS topic ARN.")
        if found[1] != region:
            raise InvalidSnsTopic(arn, f"the topic must be in the receiving region {region}.")
    for action in rule.get("Actions") or []:
        if (body := action.get("LambdaAction")) is not None:
            function = str(body["FunctionArn"])
            found = _LAMBDA_ARN.fullmatch(function)
            if found and found[1] != region:
                raise InvalidLambdaFunction(function, f"the function must be in {region}.")
        if (body := action.get("S3Action")) is not None and body.get("KmsKeyArn"):
            found = _KMS_ARN.fullmatch(str(body["KmsKeyArn"]))
            if found and found[1] != region:
                raise InvalidS3Configuration(str(body["BucketName"]), f"the KMS key must be in {region}.")
        if (body := action.get("WorkmailAction")) is not None:
            found = _WORKMAIL_ARN.fullmatch(str(body["OrganizationArn"]))
            if found and found[1] != region:
                raise InvalidReceiptValue(f"The WorkMail organization must be in {region}.")
