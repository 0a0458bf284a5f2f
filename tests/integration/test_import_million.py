"""The import at the size SES allows: 1,000,000 records in one CSV, into a contact list and into the
suppression list, with a malformed record every 100,000, on both databases. The counts and the
failed-records file must come out exact; speed and memory are bench/import.py's to report."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sesame.testing.servers import SesameProcess
from tests.conftest import Serve, client, query
from tests.integration.test_jobs import fetch, finished

ROWS = 1_000_000
BAD_EVERY = 100_000


@pytest.fixture(scope="module")
def dev(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("million")
    with SesameProcess(
        "dev", data_dir=data_dir, database=module_database, env={"SESAME_JOBS__POLL_INTERVAL": "0.2"}
    ) as proc:
        yield Serve(proc, data_dir, module_database)


def write_csv(path: Path, header: str | None, good: Any, bad: str) -> list[int]:
    """ROWS records, every BAD_EVERY-th one ``bad``; the file lines of the bad ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    first = 2 if header else 1
    bad_lines = []
    with path.open("w", buffering=1 << 20) as f:
        if header:
            f.write(header + "\n")
        for i in range(ROWS):
            if i % BAD_EVERY == BAD_EVERY - 1:
                f.write(bad + "\n")
                bad_lines.append(first + i)
            else:
                f.write(good(i) + "\n")
    return bad_lines


def run_import(ses: Any, destination: dict[str, Any], url: str) -> dict[str, Any]:
    job_id = ses.create_import_job(
        ImportDestination=destination, ImportDataSource={"S3Url": url, "DataFormat": "CSV"}
    )["JobId"]
    return finished(lambda: ses.get_import_job(JobId=job_id), timeout=600)


def failed_lines(job: dict[str, Any]) -> list[int]:
    rows = list(csv.reader(io.StringIO(fetch(job["FailureInfo"]["FailedRecordsS3Url"]).decode())))
    return [int(r[0]) for r in rows[1:]]


def test_a_million_contacts(dev: Serve) -> None:
    ses = client("sesv2", dev.endpoint, key="410000000001")
    ses.create_contact_list(
        ContactListName="readers",
        Topics=[{"TopicName": "news", "DisplayName": "News", "DefaultSubscriptionStatus": "OPT_IN"}],
    )
    bad = write_csv(
        dev.data_dir / "objects" / "imports" / "contacts.csv",
        "emailAddress,unsubscribeAll,topicPreferences.news",
        lambda i: f"reader{i}@example.com,false,{'OPT_OUT' if i % 2 else 'OPT_IN'}",
        "not-an-address,false,OPT_IN",
    )
    job = run_import(
        ses,
        {"ContactListDestination": {"ContactListName": "readers", "ContactListImportAction": "PUT"}},
        "s3://imports/contacts.csv",
    )
    assert job["JobStatus"] == "COMPLETED", job
    assert (job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (ROWS, len(bad))
    assert failed_lines(job) == bad
    [row] = query(dev, "SELECT count(*) AS n FROM contacts WHERE account_id = '410000000001'")
    assert row["n"] == ROWS - len(bad)
    got = ses.get_contact(ContactListName="readers", EmailAddress="reader999998@example.com")
    assert got["TopicPreferences"] == [{"TopicName": "news", "SubscriptionStatus": "OPT_IN"}]


def test_a_million_suppressed_addresses(dev: Serve) -> None:
    ses = client("sesv2", dev.endpoint, key="410000000002")
    bad = write_csv(
        dev.data_dir / "objects" / "imports" / "suppressed.csv",
        None,
        lambda i: f"gone{i}@example.com,{'BOUNCE' if i % 3 else 'COMPLAINT'}",
        "gone@example.com,SPAM",
    )
    job = run_import(
        ses,
        {"SuppressionListDestination": {"SuppressionListImportAction": "PUT"}},
        "s3://imports/suppressed.csv",
    )
    assert job["JobStatus"] == "COMPLETED", job
    assert (job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (ROWS, len(bad))
    assert failed_lines(job) == bad
    [row] = query(dev, "SELECT count(*) AS n FROM suppressed_destinations WHERE account_id = '410000000002'")
    assert row["n"] == ROWS - len(bad)
    assert (
        ses.get_suppressed_destination(EmailAddress="gone3@example.com")["SuppressedDestination"]["Reason"]
        == "COMPLAINT"
    )
