"""Running an import job (CreateImportJob): its source streamed from the object store, its records
parsed on a worker thread and written a batch per transaction by the destination's sink, with the
job's progress in the same transaction.

Memory stays bounded whatever the source's size: one batch of records at a time (``jobs.batch``), and
the failed records go to the database as they are found, to be written out as a file at the end.
A job picked up after its worker died starts at the byte offset its last batch saved.

Counts, as GetImportJob shows them: ProcessedRecordsCount is every record read (those imported and
those that failed); FailedRecordsCount those that failed, each of them in the failed-records file
(CSV: ``line,record,error``), whose URL FailureInfo.FailedRecordsS3Url gives.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import logging
import tempfile
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import IO

from sesame.config import JobsSettings
from sesame.integrations.objects import (
    InvalidObjectName,
    NoSuchBucket,
    NoSuchKey,
    ObjectStore,
    ObjectStoreError,
)
from sesame.jobs.records import RecordReader
from sesame.jobs.sinks import DESTINATIONS, ImportSink, ImportTarget
from sesame.jobs.store import Claimed, JobLost, JobStore

log = logging.getLogger(__name__)

#: Failed records read back per query when the failed-records file is written.
_FAILURE_PAGE = 10_000


def split_s3_url(url: str) -> tuple[str, str]:
    """``s3://bucket/key`` → (bucket, key)."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    return bucket, key


def failed_records_key(account_id: str, job_id: str) -> str:
    return f"imports/{account_id}/{job_id}/failed-records.csv"


class Importer:
    def __init__(
        self, store: JobStore, objects: ObjectStore, sinks: Mapping[str, ImportSink], settings: JobsSettings
    ) -> None:
        self.store = store
        self.db = store.db
        self.objects = objects
        self.sinks = sinks
        self.settings = settings

    async def run(self, job: Claimed) -> None:
        member, action_member = DESTINATIONS[job.source_type]
        destination = dict(job.spec["ImportDestination"][member])
        target = ImportTarget(job.id, job.account_id, job.region, destination, destination[action_member])
        sink = self.sinks.get(job.source_type)
        if sink is None:
            await self.store.finish(
                job.id,
                "FAILED",
                error_message=f"This server cannot import into a {job.source_type} destination: it has no "
                "such destination.",
            )
            return
        source = job.spec["ImportDataSource"]
        bucket, key = split_s3_url(source["S3Url"])
        try:
            stream, total, header = await asyncio.to_thread(
                self._open, bucket, key, job, source["DataFormat"] == "CSV" and sink.csv_header
            )
        except (NoSuchKey, NoSuchBucket, InvalidObjectName) as exc:
            await self.store.finish(job.id, "FAILED", error_message=f"Cannot read {source['S3Url']}: {exc}")
            return
        with contextlib.closing(stream):
            reader = RecordReader(
                stream, source["DataFormat"], position=job.position, line=job.line, header=header
            )
            await self.store.heartbeat(job.id, self.settings.lease_seconds, total_bytes=total)
            processed, failed = job.processed, job.failed
            parse = partial(reader.read, self.settings.batch, lambda record: sink.parse(target, record))
            # The next batch is read and parsed (on a thread) while this one is written.
            ahead = asyncio.ensure_future(asyncio.to_thread(parse))
            try:
                while True:
                    batch = await ahead
                    if not batch.done:
                        ahead = asyncio.ensure_future(asyncio.to_thread(parse))
                    processed += batch.records
                    failed += len(batch.failures)
                    async with self.db.write() as s:
                        # The job's row first: on PostgreSQL its lock keeps a cancel from crossing the batch.
                        await self.store.guard(
                            s, job.id, self.settings.lease_seconds,
                            processed=processed, failed=failed, position=batch.position, line=batch.line,
                        )  # fmt: skip
                        if batch.rows:
                            await sink.apply(s, target, batch.rows)
                        await self.store.add_failures(s, job.id, batch.failures)
                    if batch.done:
                        break
            finally:
                # The reading thread must be done with the stream before it is closed.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(ahead)
        failed_key = await self._failed_records(job) if failed else None
        if not await self.store.finish(job.id, "COMPLETED", failed_key=failed_key):
            raise JobLost(job.id)

    def _open(
        self, bucket: str, key: str, job: Claimed, wants_header: bool
    ) -> tuple[IO[bytes], int | None, bool | list[str]]:
        """(the source from the job's position, its size if known, the header or whether to read one).
        Blocking."""
        try:
            total: int | None = self.objects.size(bucket, key, region=job.region)
        except NoSuchKey:
            raise
        except ObjectStoreError:
            total = None  # no HEAD allowed, say: the progress bar goes without a total
        header: bool | list[str] = wants_header
        if wants_header and job.position > 0:  # resumed: the header is at the start of the file
            with contextlib.closing(self.objects.open_read(bucket, key, region=job.region)) as start:
                header = RecordReader(start, "CSV").first_record() or []
        return self.objects.open_read(bucket, key, job.position, region=job.region), total, header

    async def _failed_records(self, job: Claimed) -> str:
        """Write the failed records, in line order, to the jobs bucket; the object's key."""
        with tempfile.TemporaryDirectory(prefix="sesame-job-") as tmp:
            path = Path(tmp) / "failed-records.csv"
            with path.open("w", newline="", encoding="utf-8") as f:
                out = csv.writer(f)
                out.writerow(["line", "record", "error"])
                after = 0
                while rows := await self.store.failures(job.id, after, _FAILURE_PAGE):
                    await asyncio.to_thread(out.writerows, rows)
                    after = rows[-1][0]
            key = failed_records_key(job.account_id, job.id)
            await self.objects.put_file(self.settings.bucket, key, path, region=job.region)
        return key
