"""The per-type objects of SES event records, against the shapes of the SES Developer Guide's examples."""

from __future__ import annotations

import datetime as dt
import json
import re

from sesame.events import details

SENT = dt.datetime(2017, 8, 5, 0, 40, 2, 12_000, tzinfo=dt.UTC)
AT = dt.datetime(2017, 8, 5, 0, 41, 2, 669_999, tzinfo=dt.UTC)
SES_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    assert details.iso(AT) == "2017-08-05T00:41:02.669Z"
    later_zone = AT.astimezone(dt.timezone(dt.timedelta(hours=-7)))
    assert details.iso(later_zone) == "2017-08-05T00:41:02.669Z"
    assert details.iso(dt.datetime(2020, 1, 1, tzinfo=dt.UTC)) == "2020-01-01T00:00:00.000Z"


def test_delivery_has_the_fields_of_the_example() -> None:
    d = details.delivery(
        ["success@simulator.amazonses.com"],
        timestamp=AT,
        sent_at=SENT,
        smtp_response="250 ok:  Message 64111812 accepted",
        reporting_mta="a8-70.smtp-out.example.test",
        remote_mta_ip="127.0.2.0",
    )
    assert (d.event_type, d.key) == ("Delivery", "delivery")
    assert d.body == {
        "timestamp": "2017-08-05T00:41:02.669Z",
        "processingTimeMillis": 60_657,
        "recipients": ["success@simulator.amazonses.com"],
        "smtpResponse": "250 ok:  Message 64111812 accepted",
        "reportingMTA": "a8-70.smtp-out.example.test",
        "remoteMtaIp": "127.0.2.0",
    }


def test_bounce_has_the_fields_of_the_example_and_recipients_leave_out_what_is_unknown() -> None:
    d = details.bounce(
        "Permanent",
        "General",
        [
            details.BouncedRecipient(
                "recipient@example.com", "failed", "5.1.1", "smtp; 550 5.1.1 user unknown"
            ),
            details.BouncedRecipient("other@example.com"),
        ],
        timestamp=AT,
        feedback_id="0100-feedback-000000",
        reporting_mta="dsn; mta.example.com",
    )
    assert (d.event_type, d.key) == ("Bounce", "bounce")
    assert d.body == {
        "bounceType": "Permanent",
        "bounceSubType": "General",
        "bouncedRecipients": [
            {
                "emailAddress": "recipient@example.com",
                "action": "failed",
                "status": "5.1.1",
                "diagnosticCode": "smtp; 550 5.1.1 user unknown",
            },
            {"emailAddress": "other@example.com"},
        ],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "0100-feedback-000000",
        "reportingMTA": "dsn; mta.example.com",
    }


def test_delivery_delay_names_its_reporting_mta_only_when_one_answered() -> None:
    unreached = "smtp; 421 4.4.1 Unable to connect"
    delayed = [details.DelayedRecipient("recipient@example.com", "4.4.1", unreached)]
    d = details.delivery_delay("TransientCommunicationFailure", delayed, timestamp=SENT, expiration_time=AT)
    assert (d.event_type, d.key) == ("DeliveryDelay", "deliveryDelay")
    assert d.body == {
        "timestamp": "2017-08-05T00:40:02.012Z",
        "delayType": "TransientCommunicationFailure",
        "expirationTime": "2017-08-05T00:41:02.669Z",
        "delayedRecipients": [
            {
                "emailAddress": "recipient@example.com",
                "status": "4.4.1",
                "diagnosticCode": unreached,
            }
        ],
    }
    answered = details.delivery_delay(
        "MailboxFull", delayed, timestamp=SENT, expiration_time=AT, reporting_mta="192.0.2.1"
    )
    assert answered.body["reportingMTA"] == "192.0.2.1"


def test_complaint_always_has_a_subtype_and_the_arf_fields_when_given() -> None:
    plain = details.complaint(["recipient@example.com"], timestamp=AT, feedback_id="f-000000")
    assert (plain.event_type, plain.key) == ("Complaint", "complaint")
    assert plain.body == {
        "complainedRecipients": [{"emailAddress": "recipient@example.com"}],
        "timestamp": "2017-08-05T00:41:02.669Z",
        "feedbackId": "f-000000",
        "complaintSubType": None,
    }
    arf = details.complaint(
        ["recipient@example.com"],
        timestamp=AT,
        feedback_id="f-000000",
        feedback_type="abuse",
        user_agent="Mozilla/5.0 (compatible; AOL)",
        arrival_date=SENT,
    )
    assert arf.body["complaintFeedbackType"] == "abuse"
    assert arf.body["userAgent"] == "Mozilla/5.0 (compatible; AOL)"
    assert arf.body["arrivalDate"] == "2017-08-05T00:40:02.012Z"
    assert json.loads(json.dumps(arf.body)) == arf.body  # stored as JSON as it is


def test_feedback_ids_name_the_message_and_differ_per_event() -> None:
    first, second = details.feedback_id("0100abc"), details.feedback_id("0100abc")
    assert first != second
    assert first.startswith("0100abc-") and first.endswith("-000000")
    assert SES_TIMESTAMP.fullmatch(details.iso(dt.datetime.now(dt.UTC)))
