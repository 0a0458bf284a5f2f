"""Bulk jobs through boto3 against ``sesame dev`` on both databases: suppression-list imports from the
local object store (CSV and JSON lines, malformed records counted and written to a failed-records file
read back through its URL, DELETE), export jobs of message insights and VDM metrics read back through
ExportDestination.S3Url, cancelling, and a job taken over from a dead worker once its lease ran out,
resuming where that worker's last batch left it."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from botocore.exceptions import ClientError

from sesame.storage.models import BulkJob, DeliveryEvent, utcnow
from sesame.testing.servers import SesameProcess, sesame_cli
from tests.conftest import Serve, client, query
from tests.e2e.test_delivery import write

ROWS = 20_000


@pytest.fixture(scope="module")
def dev(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("jobs")
    env = {
        "SESAME_JOBS__POLL_INTERVAL": "0.2",
        "SESAME_JOBS__BATCH": "1000",
        "SESAME_JOBS__LEASE_SECONDS": "5",
        "SESAME_EVENTS__POLL_INTERVAL": "0.1",
    }
    with SesameProcess("dev", data_dir=data_dir, database=module_database, env=env) as proc:
        yield Serve(proc, data_dir, module_database)


_accounts = iter(range(100))


def v2(dev: Serve) -> tuple[Any, str]:
    """A client of an account of its own, and the account's id (dev mode: a 12-digit key id is that
    account)."""
    account = f"{400000000000 + next(_accounts)}"
    ses = client("sesv2", dev.endpoint, key=account)
    ses.get_account()  # the account exists from its first call
    return ses, account


def put_object(dev: Serve, bucket: str, key: str, data: bytes) -> str:
    path = dev.data_dir / "objects" / bucket / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return f"s3://{bucket}/{key}"


def finished(get: Any, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = get()
        if job["JobStatus"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return dict(job)
        assert time.monotonic() < deadline, job
        time.sleep(0.1)


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as resp:
        body: bytes = resp.read()
        return body


def import_job(ses: Any, url: str, data_format: str, action: str = "PUT") -> dict[str, Any]:
    job_id = ses.create_import_job(
        ImportDestination={"SuppressionListDestination": {"SuppressionListImportAction": action}},
        ImportDataSource={"S3Url": url, "DataFormat": data_format},
    )["JobId"]
    return finished(lambda: ses.get_import_job(JobId=job_id))


def suppressed(dev: Serve, account: str) -> dict[str, str]:
    rows = query(
        dev, "SELECT email_address, reason FROM suppressed_destinations WHERE account_id = :a", a=account
    )
    return {r["email_address"]: r["reason"] for r in rows}


# -- imports ----------------------------------------------------------------------------------------


def test_csv_import_counts_malformed_records_and_writes_them_to_a_file(dev: Serve, tmp_path: Path) -> None:
    ses, account = v2(dev)
    lines = [f"User{i}@Example.com,{'BOUNCE' if i % 3 else ' COMPLAINT'}" for i in range(ROWS)]
    lines[10] = "no-at-sign,BOUNCE"
    lines[500] = "x@example.com,MAYBE"
    lines[7000] = "a@example.com,BOUNCE,extra"
    lines[19_999] = '"quoted@example.com",COMPLAINT'
    source = tmp_path / "list.csv"
    source.write_text("\n".join(lines[:100]) + "\n\n" + "\r\n".join(lines[100:]) + "\n")
    assert sesame_cli("objects", "put", "imports/list.csv", str(source), data_dir=dev.data_dir,
                      database=dev.database).strip() == "s3://imports/list.csv"  # fmt: skip
    job = import_job(ses, "s3://imports/list.csv", "CSV")
    assert job["JobStatus"] == "COMPLETED"
    assert (job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (ROWS, 3)
    failed = list(csv.reader(io.StringIO(fetch(job["FailureInfo"]["FailedRecordsS3Url"]).decode())))
    assert failed[0] == ["line", "record", "error"]
    assert [(line, record) for line, record, _ in failed[1:]] == [
        ("11", "no-at-sign,BOUNCE"),
        ("502", "x@example.com,MAYBE"),  # line 101 is the blank one
        ("7002", "a@example.com,BOUNCE,extra"),
    ]
    assert "BOUNCE or COMPLAINT" in failed[2][2]
    listed = suppressed(dev, account)
    assert len(listed) == ROWS - 3
    assert listed["user1@example.com"] == "BOUNCE" and listed["user3@example.com"] == "COMPLAINT"
    assert listed["quoted@example.com"] == "COMPLAINT"
    got = ses.get_suppressed_destination(EmailAddress="user19997@example.com")["SuppressedDestination"]
    assert got["Reason"] == "BOUNCE"
    shown = sesame_cli("jobs", data_dir=dev.data_dir, database=dev.database)
    assert f"{job['JobId']}  import SUPPRESSION_LIST  COMPLETED" in shown


def test_json_lines_import_then_delete(dev: Serve) -> None:
    ses, account = v2(dev)
    records = [json.dumps({"emailAddress": f"j{i}@example.org", "reason": "BOUNCE"}) for i in range(50)]
    records += ['{"emailAddress": "broken@example.org", ', "[1, 2]", '{"reason": "BOUNCE"}',
                '{"emailAddress": "c@example.org", "reason": "COMPLAINT"}']  # fmt: skip
    job = import_job(ses, put_object(dev, "imports", "list.json", "\n".join(records).encode()), "JSON")
    assert (job["JobStatus"], job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == ("COMPLETED", 54, 3)
    errors = [
        row[2] for row in csv.reader(io.StringIO(fetch(job["FailureInfo"]["FailedRecordsS3Url"]).decode()))
    ]
    assert errors[1].startswith("not valid JSON") and errors[2] == "not a JSON object"
    assert "emailAddress is missing" in errors[3]
    assert len(suppressed(dev, account)) == 51

    gone = "\n".join(f"J{i}@example.org" for i in range(0, 50, 2)) + "\nnever-listed@example.org\n"
    job = import_job(ses, put_object(dev, "imports", "gone.csv", gone.encode()), "CSV", "DELETE")
    assert (job["JobStatus"], job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == ("COMPLETED", 26, 0)
    assert "FailureInfo" not in job
    left = suppressed(dev, account)
    assert sorted(left) == sorted(["c@example.org", *(f"j{i}@example.org" for i in range(1, 50, 2))])


def test_import_of_a_missing_object_fails_with_a_message(dev: Serve) -> None:
    ses, account = v2(dev)
    job = import_job(ses, "s3://imports/nothing-here.csv", "CSV")
    assert job["JobStatus"] == "FAILED"
    assert "nothing-here.csv" in job["FailureInfo"]["ErrorMessage"]


TOPICS = [
    {"TopicName": "Sports", "DisplayName": "Sports", "DefaultSubscriptionStatus": "OPT_OUT"},
    {"TopicName": "Cycling", "DisplayName": "Cycling", "DefaultSubscriptionStatus": "OPT_IN"},
]


def contact_import(ses: Any, url: str, data_format: str, action: str = "PUT") -> dict[str, Any]:
    job_id = ses.create_import_job(
        ImportDestination={
            "ContactListDestination": {"ContactListName": "members", "ContactListImportAction": action}
        },
        ImportDataSource={"S3Url": url, "DataFormat": data_format},
    )["JobId"]
    return finished(lambda: ses.get_import_job(JobId=job_id))


def test_contact_list_import_csv_json_and_delete(dev: Serve) -> None:
    ses, account = v2(dev)
    url = put_object(dev, "imports", "none.csv", b"emailAddress\na@example.com\n")
    with pytest.raises(ses.exceptions.NotFoundException):  # the list must exist
        contact_import(ses, url, "CSV")
    ses.create_contact_list(ContactListName="members", Topics=TOPICS)
    ses.create_contact(
        ContactListName="members",
        EmailAddress="keep@example.com",
        TopicPreferences=[{"TopicName": "Sports", "SubscriptionStatus": "OPT_IN"}],
    )
    # The layout of SES's documented example; the columns in another order; malformed records.
    rows = [
        "unsubscribeAll,emailAddress,attributesData,topicPreferences.Sports,topicPreferences.Cycling",
        'false,c0@example.com,"{""Name"": ""John""}",OPT_IN,OPT_OUT',
        "true,c1@example.com,,OPT_OUT,OPT_OUT",
        *[f"false,bulk{i}@example.com,,,OPT_IN" for i in range(2500)],
        "false,not-an-address,,OPT_IN,OPT_IN",
        "maybe,c2@example.com,,OPT_IN,OPT_IN",
        "false,c3@example.com,[1],OPT_IN,OPT_IN",
        "false,c4@example.com,,SOMETIMES,OPT_IN",
        "false,c5@example.com,,OPT_IN",
        "false,Keep@Example.com,,,OPT_OUT",  # replaces the contact that exists: its Sports choice goes
    ]
    url = put_object(dev, "imports", "contacts.csv", ("\n".join(rows) + "\n").encode())
    job = contact_import(ses, url, "CSV")
    assert job["JobStatus"] == "COMPLETED", job
    assert (job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (2508, 5)
    failed = list(csv.reader(io.StringIO(fetch(job["FailureInfo"]["FailedRecordsS3Url"]).decode())))
    assert [int(r[0]) for r in failed[1:]] == [2504, 2505, 2506, 2507, 2508]
    c0 = ses.get_contact(ContactListName="members", EmailAddress="c0@example.com")
    assert json.loads(c0["AttributesData"]) == {"Name": "John"}
    assert {p["TopicName"]: p["SubscriptionStatus"] for p in c0["TopicPreferences"]} == {
        "Sports": "OPT_IN",
        "Cycling": "OPT_OUT",
    }
    assert ses.get_contact(ContactListName="members", EmailAddress="c1@example.com")["UnsubscribeAll"]
    kept = ses.get_contact(ContactListName="members", EmailAddress="keep@example.com")
    assert kept["TopicPreferences"] == [{"TopicName": "Cycling", "SubscriptionStatus": "OPT_OUT"}]
    cycling = {"TopicName": "Cycling", "UseDefaultIfPreferenceUnavailable": False}
    opted_in = ses.list_contacts(
        ContactListName="members", Filter={"FilteredStatus": "OPT_IN", "TopicFilter": cycling}
    )["Contacts"]
    assert len(opted_in) == 1000  # a full page of the 2,500 bulk contacts

    lines = [
        {"emailAddress": "j@example.com", "unsubscribeAll": False, "attributesData": '{"a": 1}',
         "topicPreferences": [{"topicName": "Cycling", "subscriptionStatus": "OPT_OUT"},
                              {"topicName": "Gone", "subscriptionStatus": "OPT_IN"}]},
        {"emailAddress": "k@example.com", "unsubscribeAll": "yes"},
    ]  # fmt: skip
    url = put_object(dev, "imports", "contacts.json", "\n".join(json.dumps(x) for x in lines).encode())
    job = contact_import(ses, url, "JSON")
    assert (job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (2, 1)
    j = ses.get_contact(ContactListName="members", EmailAddress="j@example.com")
    assert j["TopicPreferences"] == [{"TopicName": "Cycling", "SubscriptionStatus": "OPT_OUT"}]  # no "Gone"

    deletes = "emailAddress\n" + "".join(f"bulk{i}@example.com\n" for i in range(2500))
    job = contact_import(ses, put_object(dev, "imports", "gone.csv", deletes.encode()), "CSV", "DELETE")
    assert job["JobStatus"] == "COMPLETED"
    left = ses.list_contacts(ContactListName="members")["Contacts"]
    assert sorted(c["EmailAddress"] for c in left) == [
        "Keep@Example.com",
        "c0@example.com",
        "c1@example.com",
        "j@example.com",
    ]


def test_import_destination_must_name_one_list(dev: Serve) -> None:
    ses, account = v2(dev)
    with pytest.raises(ClientError) as err:
        ses.create_import_job(
            ImportDestination={},
            ImportDataSource={"S3Url": "s3://imports/x.csv", "DataFormat": "CSV"},
        )
    assert err.value.response["Error"]["Code"] == "BadRequestException"
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.get_import_job(JobId="no-such-job")


def test_list_import_jobs_filters_by_destination_and_pages(dev: Serve) -> None:
    ses, account = v2(dev)
    url = put_object(dev, "imports", "one.csv", b"one@example.com,BOUNCE\n")
    made = [import_job(ses, url, "CSV")["JobId"] for _ in range(3)]
    ses.create_contact_list(ContactListName="n")
    contacts = ses.create_import_job(
        ImportDestination={
            "ContactListDestination": {"ContactListName": "n", "ContactListImportAction": "PUT"}
        },
        ImportDataSource={"S3Url": url, "DataFormat": "CSV"},
    )["JobId"]
    first = ses.list_import_jobs(ImportDestinationType="SUPPRESSION_LIST", PageSize=2)
    second = ses.list_import_jobs(
        ImportDestinationType="SUPPRESSION_LIST", PageSize=2, NextToken=first["NextToken"]
    )
    assert "NextToken" not in second
    listed = [j["JobId"] for j in first["ImportJobs"] + second["ImportJobs"]]
    assert listed == made[::-1]  # newest first
    assert first["ImportJobs"][0]["ProcessedRecordsCount"] == 1
    only = ses.list_import_jobs(ImportDestinationType="CONTACT_LIST")["ImportJobs"]
    assert [j["JobId"] for j in only] == [contacts]
    assert len(ses.list_import_jobs()["ImportJobs"]) == 4


def test_a_job_whose_worker_died_is_resumed_where_its_last_batch_ended(dev: Serve) -> None:
    ses, account = v2(dev)
    lines = [f"r{i}@example.net,BOUNCE\n".encode() for i in range(3000)]
    url = put_object(dev, "imports", "resume.csv", b"".join(lines))
    done = sum(len(line) for line in lines[:1000])
    job_id = "resumed-after-a-crash"
    row = {
        "id": job_id, "account_id": account, "region": "us-east-1", "kind": "import",
        "source_type": "SUPPRESSION_LIST",
        "spec": {"ImportDestination": {"SuppressionListDestination": {"SuppressionListImportAction": "PUT"}},
                 "ImportDataSource": {"S3Url": url, "DataFormat": "CSV"}},
        "status": "PROCESSING", "created_at": utcnow(), "processed": 1000, "failed": 0, "exported": 0,
        "position": done, "line": 1000, "attempts": 1, "locked_by": "a-node-that-died",
        "locked_until": utcnow() + dt.timedelta(seconds=1),
    }  # fmt: skip
    write(dev, sa.insert(BulkJob.__table__), row)  # type: ignore[arg-type]
    time.sleep(0.5)
    assert ses.get_import_job(JobId=job_id)["JobStatus"] == "PROCESSING"  # still the dead node's
    job = finished(lambda: ses.get_import_job(JobId=job_id))
    assert (job["JobStatus"], job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (
        "COMPLETED",
        3000,
        0,
    )
    listed = suppressed(dev, account)
    # The dead node's first 1,000 records were its own to write (it saved its progress with them): the
    # job went on from record 1,001.
    assert sorted(listed) == sorted(f"r{i}@example.net" for i in range(1000, 3000))


# -- exports ----------------------------------------------------------------------------------------


def _send(ses: Any, to: str, subject: str) -> str:
    message_id: str = ses.send_email(
        FromEmailAddress="news@jobs.test",
        Destination={"ToAddresses": [to]},
        Content={"Simple": {"Subject": {"Data": subject}, "Body": {"Text": {"Data": "hi"}}}},
    )["MessageId"]
    return message_id


def _event(dev: Serve, account: str, message_id: str, event_type: str, detail: dict[str, Any]) -> None:
    row = {"message_id": message_id, "account_id": account,
           "region": "us-east-1", "event_type": event_type, "created_at": utcnow(), "detail": detail,
           "dispatched": False}  # fmt: skip
    write(dev, sa.insert(DeliveryEvent.__table__), row)  # type: ignore[arg-type]


def export_job(ses: Any, source: dict[str, Any], data_format: str) -> dict[str, Any]:
    job_id = ses.create_export_job(ExportDataSource=source, ExportDestination={"DataFormat": data_format})[
        "JobId"
    ]
    return finished(lambda: ses.get_export_job(JobId=job_id))


@pytest.fixture(scope="module")
def mail(dev: Serve) -> tuple[Any, dict[str, str]]:
    """An account's mail: delivered and opened, bounced, only sent."""
    ses, account = v2(dev)
    ses.create_email_identity(EmailIdentity="jobs.test")
    ids = {
        "ann": _send(ses, "ann@gmail.com", "Weekly *news*"),
        "bob": _send(ses, "bob@yahoo.com", "Weekly digest"),
        "cid": _send(ses, "cid@example.org", "Receipt"),
    }
    _event(dev, account, ids["ann"], "Delivery", {"recipients": ["ann@gmail.com"]})
    _event(dev, account, ids["ann"], "Open", {"ipAddress": "192.0.2.1"})
    bounce = {"bounceType": "Permanent", "bounceSubType": "General",
              "bouncedRecipients": [{"emailAddress": "bob@yahoo.com"}]}  # fmt: skip
    _event(dev, account, ids["bob"], "Bounce", bounce)
    return ses, ids


def _window() -> dict[str, dt.datetime]:
    now = dt.datetime.now(dt.UTC)
    return {"StartDate": now - dt.timedelta(hours=1), "EndDate": now + dt.timedelta(minutes=5)}


def test_message_insights_export_with_wildcard_filters_as_csv(mail: tuple[Any, dict[str, str]]) -> None:
    ses, ids = mail
    source = {"MessageInsightsDataSource": {
        **_window(),
        "Include": {"Destination": ["*@gmail.com", "bob@*"], "Subject": ["Weekly*"]},
        "Exclude": {"LastDeliveryEvent": ["PERMANENT_BOUNCE"]},
    }}  # fmt: skip
    job = export_job(ses, source, "CSV")
    assert job["JobStatus"] == "COMPLETED", job
    assert job["Statistics"] == {"ProcessedRecordsCount": 3, "ExportedRecordsCount": 1}
    rows = list(csv.DictReader(io.StringIO(fetch(job["ExportDestination"]["S3Url"]).decode())))
    assert [(r["MessageId"], r["Destination"], r["Isp"], r["LastDeliveryEvent"], r["LastEngagementEvent"])
            for r in rows] == [(ids["ann"], "ann@gmail.com", "Gmail", "DELIVERY", "OPEN")]  # fmt: skip
    assert rows[0]["Subject"] == "Weekly *news*"
    assert {"Name": "ses:from-domain", "Value": "jobs.test"} in json.loads(rows[0]["EmailTags"])
    # An escaped star is a star: a contains-match of "*news*" itself.
    source["MessageInsightsDataSource"]["Include"] = {"Subject": [r"*\*news\**"]}
    job = export_job(ses, source, "CSV")
    assert job["Statistics"]["ExportedRecordsCount"] == 1
    source["MessageInsightsDataSource"]["Include"] = {"Subject": [r"\*news\*"]}
    assert export_job(ses, source, "CSV")["Statistics"]["ExportedRecordsCount"] == 0


def test_message_insights_export_as_json_newest_first_up_to_max_results(
    mail: tuple[Any, dict[str, str]],
) -> None:
    ses, ids = mail
    job = export_job(ses, {"MessageInsightsDataSource": {**_window(), "MaxResults": 2}}, "JSON")
    rows = [json.loads(line) for line in fetch(job["ExportDestination"]["S3Url"]).decode().splitlines()]
    assert [r["MessageId"] for r in rows] == [ids["cid"], ids["bob"]]
    assert rows[0]["LastDeliveryEvent"] == "SEND" and rows[0]["LastEngagementEvent"] is None
    assert rows[1]["LastDeliveryEvent"] == "PERMANENT_BOUNCE"
    assert job["ExportDataSource"]["MessageInsightsDataSource"]["MaxResults"] == 2


def test_metrics_export_rate_and_volume(mail: tuple[Any, dict[str, str]]) -> None:
    ses, _ = mail
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    source = {"MetricsDataSource": {
        "Dimensions": {"EMAIL_IDENTITY": ["jobs.test"]}, "Namespace": "VDM",
        "Metrics": [{"Name": "SEND", "Aggregation": "VOLUME"}, {"Name": "DELIVERY", "Aggregation": "RATE"},
                    {"Name": "PERMANENT_BOUNCE", "Aggregation": "VOLUME"}],
        "StartDate": today - dt.timedelta(days=1), "EndDate": today + dt.timedelta(hours=1),
    }}  # fmt: skip
    job = export_job(ses, source, "JSON")
    assert job["JobStatus"] == "FAILED"
    assert "not enabled" in job["FailureInfo"]["ErrorMessage"]

    ses.put_account_vdm_attributes(VdmAttributes={"VdmEnabled": "ENABLED"})
    query = {"Id": "q", "Namespace": "VDM", "Metric": "PERMANENT_BOUNCE",
             "Dimensions": {"EMAIL_IDENTITY": "jobs.test"}, "StartDate": today, "EndDate": today}  # fmt: skip
    deadline = time.monotonic() + 20
    while ses.batch_get_metric_data(Queries=[query])["Results"][0]["Values"] != [1]:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    for data_format in ("JSON", "CSV"):
        job = export_job(ses, source, data_format)
        assert job["JobStatus"] == "COMPLETED", job
        assert job["Statistics"] == {"ProcessedRecordsCount": 6, "ExportedRecordsCount": 6}
        body = fetch(job["ExportDestination"]["S3Url"]).decode()
        if data_format == "JSON":
            rows = [json.loads(line) for line in body.splitlines()]
        else:
            rows = [{**r, "Value": float(r["Value"])} for r in csv.DictReader(io.StringIO(body))]
        got = {(r["Timestamp"][:10], r["Metric"], r["Aggregation"]): r["Value"] for r in rows}
        assert {r["EMAIL_IDENTITY"] for r in rows} == {"jobs.test"}
        day = today.date().isoformat()
        assert got[(day, "SEND", "VOLUME")] == 3
        assert got[(day, "DELIVERY", "RATE")] == pytest.approx(1 / 3, abs=1e-5)
        assert got[(day, "PERMANENT_BOUNCE", "VOLUME")] == 1
        assert got[((today - dt.timedelta(days=1)).date().isoformat(), "SEND", "VOLUME")] == 0


def test_export_links_are_signed(mail: tuple[Any, dict[str, str]]) -> None:
    ses, _ = mail
    job = export_job(ses, {"MessageInsightsDataSource": _window()}, "CSV")
    url = job["ExportDestination"]["S3Url"]
    assert fetch(url).startswith(b"MessageId,")
    for bad in (url.replace("Signature=", "Signature=x"), url.replace(".csv?", ".json?"), url.split("?")[0]):
        with pytest.raises(urllib.error.HTTPError) as err:
            fetch(bad)
        assert err.value.code == 403
        err.value.close()


def test_create_export_job_checks(mail: tuple[Any, dict[str, str]]) -> None:
    ses, _ = mail
    window = _window()
    with pytest.raises(ses.exceptions.BadRequestException):
        ses.create_export_job(
            ExportDataSource={"MessageInsightsDataSource": window},
            ExportDestination={"DataFormat": "CSV", "S3Url": "s3://mine/export.csv"},
        )
    with pytest.raises(ses.exceptions.BadRequestException):
        backwards = {"StartDate": window["EndDate"], "EndDate": window["StartDate"]}
        ses.create_export_job(
            ExportDataSource={"MessageInsightsDataSource": backwards}, ExportDestination={"DataFormat": "CSV"}
        )


def test_cancel_export_job(dev: Serve) -> None:
    ses, account = v2(dev)
    now = dt.datetime.now(dt.UTC).timestamp()
    row = {
        "id": "held-elsewhere", "account_id": account, "region": "us-east-1", "kind": "export",
        "source_type": "MESSAGE_INSIGHTS",
        "spec": {"ExportDataSource": {"MessageInsightsDataSource": {"StartDate": now - 60, "EndDate": now}},
                 "ExportDestination": {"DataFormat": "CSV"}},
        "status": "PROCESSING", "created_at": utcnow(), "processed": 0, "failed": 0, "exported": 0,
        "position": 0, "line": 0, "attempts": 1, "locked_by": "another-node",
        "locked_until": utcnow() + dt.timedelta(minutes=5),
    }  # fmt: skip
    write(dev, sa.insert(BulkJob.__table__), row)  # type: ignore[arg-type]
    ses.cancel_export_job(JobId="held-elsewhere")
    job = ses.get_export_job(JobId="held-elsewhere")
    assert job["JobStatus"] == "CANCELLED" and "CompletedTimestamp" in job
    assert "S3Url" not in job["ExportDestination"]
    listed = ses.list_export_jobs(JobStatus="CANCELLED")["ExportJobs"]
    assert [j["JobId"] for j in listed] == ["held-elsewhere"]
    with pytest.raises(ses.exceptions.BadRequestException):
        ses.cancel_export_job(JobId="held-elsewhere")
    with pytest.raises(ses.exceptions.NotFoundException):
        ses.cancel_export_job(JobId="not-a-job")
    # The node that held it finds the job is not its own any more at its next write.
    assert query(dev, "SELECT locked_by FROM bulk_jobs WHERE id = 'held-elsewhere'") == [{"locked_by": None}]
