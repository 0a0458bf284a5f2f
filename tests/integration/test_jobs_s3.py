"""Bulk jobs with an S3-compatible endpoint configured (moto's S3 as the external AWS): the import's
S3Url is read from it, and the failed-records and export files are written to its jobs bucket (made
on first use) and fetched through S3's own pre-signed URLs."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from sesame.testing.moto import moto_server
from sesame.testing.servers import SesameProcess
from tests.conftest import client
from tests.integration.test_jobs import fetch, finished, import_job


@pytest.fixture(scope="module")
def moto(module_database: str) -> Iterator[str]:
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def ses(module_database: str, moto: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    env = {"SESAME_AWS__ENDPOINTS": f"s3={moto}", "SESAME_JOBS__POLL_INTERVAL": "0.2"}
    data_dir = tmp_path_factory.mktemp("jobs-s3")
    with SesameProcess("dev", data_dir=data_dir, database=module_database, env=env) as proc:
        yield client("sesv2", proc.endpoint, key="400000000777")


def s3(moto: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=moto, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )


def test_import_from_and_files_to_an_external_store(ses: Any, moto: str) -> None:
    bucket = s3(moto)
    bucket.create_bucket(Bucket="lists")
    body = "".join(f"s{i}@example.com,BOUNCE\n" for i in range(2000)) + "broken,BOUNCE\n"
    bucket.put_object(Bucket="lists", Key="in/list.csv", Body=body.encode())
    job = import_job(ses, "s3://lists/in/list.csv", "CSV")
    assert (job["JobStatus"], job["ProcessedRecordsCount"], job["FailedRecordsCount"]) == (
        "COMPLETED",
        2001,
        1,
    )
    url = job["FailureInfo"]["FailedRecordsS3Url"]
    assert url.startswith(f"{moto}/sesame-jobs/") and "X-Amz-Signature=" in url
    rows = list(csv.reader(io.StringIO(fetch(url).decode())))
    assert rows[1][:2] == ["2001", "broken,BOUNCE"]
    assert ses.get_suppressed_destination(EmailAddress="s1999@example.com")["SuppressedDestination"]

    missing = import_job(ses, "s3://lists/in/none.csv", "CSV")
    assert missing["JobStatus"] == "FAILED" and "none.csv" in missing["FailureInfo"]["ErrorMessage"]

    now = dt.datetime.now(dt.UTC)
    job_id = ses.create_export_job(
        ExportDataSource={
            "MessageInsightsDataSource": {"StartDate": now - dt.timedelta(hours=1), "EndDate": now}
        },
        ExportDestination={"DataFormat": "CSV"},
    )["JobId"]
    export = finished(lambda: ses.get_export_job(JobId=job_id))
    assert export["JobStatus"] == "COMPLETED"
    assert fetch(export["ExportDestination"]["S3Url"]).startswith(b"MessageId,Timestamp,")
