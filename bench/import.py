"""Import benchmark: records per second and peak memory of a Sesame process running one CreateImportJob
of N records from the local object store, on SQLite and on PostgreSQL.

    python bench/import.py [--rows 1000000] [--targets sqlite,postgresql] [--format CSV|JSON]
                           [--destination CONTACT_LIST] [--seconds 600] [--batch 5000]

For each target: a fresh data directory and database, a generated source file of --rows distinct
records written straight into the local object store (DATA_DIR/objects/bench/…), then `sesame dev` on a
free port, one CreateImportJob through boto3, and GetImportJob every half second until the job is
COMPLETED or --seconds have passed (then the figures are those of the records done so far).

Measured: records/s (ProcessedRecordsCount over the time from CreatedTimestamp to CompletedTimestamp,
the job's own clock), the server's VmRSS once ready and its peak (VmHWM, /proc/PID/status) when the job
ended, and its user + system CPU over the job. Client and server share this machine's cores.
The goals (issue 11): at least 20,000 records/s on SQLite; memory bounded whatever N (one batch of
records at a time).

--destination picks the ImportDestination and the records' shape from DESTINATIONS below: one entry per
destination type (contacts of a list with two topics, or suppression-list entries).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from sesame.testing.databases import temporary_database
from sesame.testing.servers import SesameProcess

ACCOUNT = "123456789012"


@dataclass
class Destination:
    """How to import into one destination type: the request's ImportDestination, each record as a CSV
    line and as a JSON object, a CSV header line if the destination wants one, and what to make
    before the job (a contact list, say)."""

    import_destination: dict[str, Any]
    csv: Callable[[int], str]
    json: Callable[[int], dict[str, Any]]
    header: str | None = None
    prepare: Callable[[Any], None] = field(default=lambda ses: None)


DESTINATIONS: dict[str, Destination] = {
    "SUPPRESSION_LIST": Destination(
        {"SuppressionListDestination": {"SuppressionListImportAction": "PUT"}},
        csv=lambda i: f"recipient{i}@example.com,{'BOUNCE' if i % 4 else 'COMPLAINT'}",
        json=lambda i: {
            "emailAddress": f"recipient{i}@example.com",
            "reason": "BOUNCE" if i % 4 else "COMPLAINT",
        },
    ),
    "CONTACT_LIST": Destination(
        {"ContactListDestination": {"ContactListName": "readers", "ContactListImportAction": "PUT"}},
        csv=lambda i: f"reader{i}@example.com,{'false' if i % 50 else 'true'},,OPT_IN,{_status(i)}",
        json=lambda i: {
            "emailAddress": f"reader{i}@example.com",
            "unsubscribeAll": not i % 50,
            "topicPreferences": [
                {"topicName": "news", "subscriptionStatus": "OPT_IN"},
                {"topicName": "offers", "subscriptionStatus": _status(i)},
            ],
        },
        header="emailAddress,unsubscribeAll,attributesData,topicPreferences.news,topicPreferences.offers",
        prepare=lambda ses: ses.create_contact_list(
            ContactListName="readers",
            Topics=[
                {"TopicName": t, "DisplayName": t, "DefaultSubscriptionStatus": "OPT_IN"}
                for t in ("news", "offers")
            ],
        ),
    ),
}


def _status(i: int) -> str:
    return "OPT_OUT" if i % 3 else "OPT_IN"


def write_source(path: Path, destination: Destination, rows: int, data_format: str) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", buffering=1 << 20) as f:
        if data_format == "CSV" and destination.header:
            f.write(destination.header + "\n")
        for i in range(rows):
            f.write((destination.csv(i) if data_format == "CSV" else json.dumps(destination.json(i))) + "\n")
    return path.stat().st_size


def vm(pid: int, name: str) -> float:
    """A /proc/PID/status field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench(target: str, args: argparse.Namespace) -> dict[str, Any]:
    destination = DESTINATIONS[args.destination]
    with (
        tempfile.TemporaryDirectory(prefix="sesame-bench-import-") as tmp,
        temporary_database(target, Path(tmp)) as database,
    ):
        data_dir = Path(tmp) / "data"
        key = f"import/records.{'csv' if args.format == 'CSV' else 'json'}"
        started = time.monotonic()
        size = write_source(data_dir / "objects" / "bench" / key, destination, args.rows, args.format)
        took = time.monotonic() - started
        print(
            f"{target}: {args.rows:,} records, {size / 1e6:.1f} MB written in {took:.1f} s", file=sys.stderr
        )
        env = {"SESAME_JOBS__BATCH": str(args.batch), "SESAME_JOBS__POLL_INTERVAL": "0.2"}
        with SesameProcess("dev", data_dir=data_dir, database=database, env=env) as proc:
            assert proc.proc is not None
            pid = proc.proc.pid
            ses = boto3.client(
                "sesv2", endpoint_url=proc.endpoint, region_name="us-east-1", aws_access_key_id=ACCOUNT,
                aws_secret_access_key="x", config=Config(retries={"max_attempts": 1}),
            )  # fmt: skip
            destination.prepare(ses)
            rss_ready, cpu_before = vm(pid, "VmRSS"), cpu_seconds(pid)
            job_id = ses.create_import_job(
                ImportDestination=destination.import_destination,
                ImportDataSource={"S3Url": f"s3://bench/{key}", "DataFormat": args.format},
            )["JobId"]
            deadline = time.monotonic() + args.seconds
            while True:
                job = ses.get_import_job(JobId=job_id)
                if job["JobStatus"] in ("COMPLETED", "FAILED") or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            cpu = cpu_seconds(pid) - cpu_before
            peak = vm(pid, "VmHWM")
        end = job.get("CompletedTimestamp") or datetime.datetime.now(job["CreatedTimestamp"].tzinfo)
        seconds = (end - job["CreatedTimestamp"]).total_seconds()
        done = job["ProcessedRecordsCount"]
        return {
            "target": target,
            "status": job["JobStatus"],
            "records": done,
            "failed": job["FailedRecordsCount"],
            "seconds": seconds,
            "per_second": done / seconds if seconds else 0.0,
            "rss_ready": rss_ready,
            "rss_peak": peak,
            "cpu_us_per_record": cpu / done * 1e6 if done else float("nan"),
            "error": (job.get("FailureInfo") or {}).get("ErrorMessage"),
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--targets", default="sqlite,postgresql")
    parser.add_argument("--format", choices=["CSV", "JSON"], default="CSV")
    parser.add_argument("--destination", choices=sorted(DESTINATIONS), default="CONTACT_LIST")
    parser.add_argument("--seconds", type=float, default=600.0, help="The most one import may take.")
    parser.add_argument("--batch", type=int, default=5000, help="jobs.batch: records per transaction.")
    args = parser.parse_args()
    print(f"{'target':>10} {'status':>10} {'records':>10} {'failed':>7} {'seconds':>8} {'records/s':>10} "
          f"{'RSS ready MB':>12} {'RSS peak MB':>11} {'CPU µs/rec':>10}")  # fmt: skip
    for target in args.targets.split(","):
        r = bench(target, args)
        print(f"{r['target']:>10} {r['status']:>10} {r['records']:>10,} {r['failed']:>7,} "
              f"{r['seconds']:>8.1f} {r['per_second']:>10,.0f} {r['rss_ready']:>12.1f} "
              f"{r['rss_peak']:>11.1f} {r['cpu_us_per_record']:>10.1f}", flush=True)  # fmt: skip
        if r["error"]:
            print(f"           {r['error']}")


if __name__ == "__main__":
    main()
