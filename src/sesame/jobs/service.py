"""The API's side of bulk jobs: CreateImportJob, GetImportJob, ListImportJobs, CreateExportJob,
GetExportJob, ListExportJobs, CancelExportJob, their checks and their answers in the sesv2 shapes.

The work itself runs in the background (jobs/runner.py); a job created here wakes this process's runner,
and any process's runner may take it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from sesame.errors import InvalidRequest
from sesame.jobs.exports import metric_rows_count
from sesame.jobs.links import ObjectLinks
from sesame.jobs.sinks import DESTINATIONS, ImportSink, ImportTarget
from sesame.jobs.store import JobStore
from sesame.storage.models import BulkJob

#: The most rows a METRICS_DATA export may have (days × dimension values × metrics).
MAX_METRIC_ROWS = 1_000_000
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 100, 1000
_EXPORT_SOURCES = {"MetricsDataSource": "METRICS_DATA", "MessageInsightsDataSource": "MESSAGE_INSIGHTS"}


class InvalidNextToken(InvalidRequest):
    pass


def _stored(value: Any) -> Any:
    """A request's members as JSON can keep them: timestamps as epoch seconds (which the REST-JSON
    serializer gives back as they are)."""
    if isinstance(value, dt.datetime):
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).timestamp()
    if isinstance(value, dict):
        return {k: _stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_stored(v) for v in value]
    return value


def encode_token(after: tuple[dt.datetime, str] | None) -> str | None:
    if after is None:
        return None
    return base64.urlsafe_b64encode(f"{after[0].isoformat()}|{after[1]}".encode()).decode()


def decode_token(token: str | None) -> tuple[dt.datetime, str] | None:
    if not token:
        return None
    try:
        at, _, job_id = base64.urlsafe_b64decode(token.encode()).decode().partition("|")
        when = dt.datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidNextToken("The NextToken is not valid.") from None
    if not job_id or when.tzinfo is None:
        raise InvalidNextToken("The NextToken is not valid.")
    return when, job_id


def page_size(value: int | None) -> int:
    size = DEFAULT_PAGE_SIZE if value is None else value
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise InvalidRequest(f"PageSize must be between 1 and {MAX_PAGE_SIZE}.")
    return size


class Jobs:
    def __init__(
        self,
        store: JobStore,
        sinks: Mapping[str, ImportSink],
        links: ObjectLinks,
        bucket: str,
        wake: Callable[[], None] = lambda: None,
    ) -> None:
        self.store = store
        self.sinks = sinks
        self.links = links
        self.bucket = bucket
        self.wake = wake

    # -- imports ----------------------------------------------------------------------------------

    async def create_import(self, account_id: str, region: str, params: dict[str, Any]) -> str:
        destination = params["ImportDestination"]
        named = [t for t, (member, _) in DESTINATIONS.items() if destination.get(member)]
        if len(named) != 1:
            raise InvalidRequest(
                "ImportDestination must have exactly one of SuppressionListDestination and "
                "ContactListDestination."
            )
        kind = named[0]
        member, action_member = DESTINATIONS[kind]
        sink = self.sinks.get(kind)
        if sink is not None:  # a destination this server lacks fails as a job, saying so
            target = ImportTarget(
                "", account_id, region, dict(destination[member]), destination[member][action_member]
            )
            await sink.check(target)
        spec = {
            "ImportDestination": {member: destination[member]},
            "ImportDataSource": params["ImportDataSource"],
        }
        job_id = await self.store.create(account_id, region, "import", kind, _stored(spec))
        self.wake()
        return job_id

    async def get_import(self, account_id: str, region: str, job_id: str) -> dict[str, Any]:
        row = await self.store.get(account_id, region, "import", job_id)
        out = self._import_summary(row)
        out["ImportDataSource"] = row.spec["ImportDataSource"]
        failure: dict[str, Any] = {}
        if row.failed_key:
            failure["FailedRecordsS3Url"] = self.links.url(self.bucket, row.failed_key, region=region)
        if row.error_message and row.status == "FAILED":
            failure["ErrorMessage"] = row.error_message
        if failure:
            out["FailureInfo"] = failure
        if row.completed_at:
            out["CompletedTimestamp"] = row.completed_at
        return out

    async def list_imports(
        self, account_id: str, region: str, destination_type: str | None, token: str | None, size: int | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        rows, after = await self.store.page(
            account_id, region, "import", source_type=destination_type, after=decode_token(token),
            limit=page_size(size),
        )  # fmt: skip
        return [self._import_summary(r) for r in rows], encode_token(after)

    @staticmethod
    def _import_summary(row: BulkJob) -> dict[str, Any]:
        return {
            "JobId": row.id,
            "ImportDestination": row.spec["ImportDestination"],
            "JobStatus": row.status,
            "CreatedTimestamp": row.created_at,
            "ProcessedRecordsCount": row.processed,
            "FailedRecordsCount": row.failed,
        }

    # -- exports ----------------------------------------------------------------------------------

    async def create_export(self, account_id: str, region: str, params: dict[str, Any]) -> str:
        source = params["ExportDataSource"]
        named = [m for m in _EXPORT_SOURCES if source.get(m)]
        if len(named) != 1:
            raise InvalidRequest(
                "ExportDataSource must have exactly one of MetricsDataSource and MessageInsightsDataSource."
            )
        destination = params["ExportDestination"]
        if destination.get("S3Url"):
            raise InvalidRequest(
                "ExportDestination.S3Url is set by SES once the job has completed; leave it out of "
                "CreateExportJob and read it from GetExportJob."
            )
        member = named[0]
        data = source[member]
        if data["EndDate"] < data["StartDate"]:
            raise InvalidRequest("EndDate must not be before StartDate.")
        if member == "MetricsDataSource":
            stored = _stored(data)
            if metric_rows_count(stored) > MAX_METRIC_ROWS:
                raise InvalidRequest(
                    f"The export would have more than {MAX_METRIC_ROWS} rows (days × dimension values × "
                    "metrics); ask for fewer."
                )
        spec = {"ExportDataSource": {member: data}, "ExportDestination": destination}
        job_id = await self.store.create(account_id, region, "export", _EXPORT_SOURCES[member], _stored(spec))
        self.wake()
        return job_id

    async def get_export(self, account_id: str, region: str, job_id: str) -> dict[str, Any]:
        row = await self.store.get(account_id, region, "export", job_id)
        out = self._export_summary(row)
        destination = dict(row.spec["ExportDestination"])
        if row.status == "COMPLETED" and row.result_key:
            destination["S3Url"] = self.links.url(self.bucket, row.result_key, region=region)
        out["ExportDestination"] = destination
        out["ExportDataSource"] = row.spec["ExportDataSource"]
        out["Statistics"] = {"ProcessedRecordsCount": row.processed, "ExportedRecordsCount": row.exported}
        if row.error_message and row.status == "FAILED":
            out["FailureInfo"] = {"ErrorMessage": row.error_message}
        return out

    async def list_exports(
        self,
        account_id: str,
        region: str,
        source_type: str | None,
        status: str | None,
        token: str | None,
        size: int | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        rows, after = await self.store.page(
            account_id, region, "export", source_type=source_type, status=status, after=decode_token(token),
            limit=page_size(size),
        )  # fmt: skip
        return [self._export_summary(r) for r in rows], encode_token(after)

    async def cancel_export(self, account_id: str, region: str, job_id: str) -> None:
        await self.store.cancel(account_id, region, "export", job_id)

    @staticmethod
    def _export_summary(row: BulkJob) -> dict[str, Any]:
        out: dict[str, Any] = {
            "JobId": row.id,
            "ExportSourceType": row.source_type,
            "JobStatus": row.status,
            "CreatedTimestamp": row.created_at,
        }
        if row.completed_at:
            out["CompletedTimestamp"] = row.completed_at
        return out
