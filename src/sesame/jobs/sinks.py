"""Where an import's records go: one ``ImportSink`` per ImportDestinationType.

The import pipeline (jobs/imports.py) reads the source, hands each record to the sink's ``parse`` on
a worker thread, and hands the parsed rows, a batch at a time, to the sink's ``apply`` inside the
transaction that also saves the job's progress; so a batch is written, and counted, once. Adding a
destination is one class with the members below, registered in ``Sesame.import_sinks`` (runtime.py).

A destination type the registry lacks can still be named in CreateImportJob (the model allows it);
such a job FAILS with an ErrorMessage saying that this server cannot import there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from sesame.jobs.records import Record, RecordError

__all__ = ["ImportSink", "ImportTarget", "Record", "RecordError", "DESTINATIONS"]

#: ImportDestination's members, by the ImportDestinationType they stand for, and each one's action
#: member (PUT | DELETE).
DESTINATIONS = {
    "SUPPRESSION_LIST": ("SuppressionListDestination", "SuppressionListImportAction"),
    "CONTACT_LIST": ("ContactListDestination", "ContactListImportAction"),
}


@dataclass(frozen=True)
class ImportTarget:
    """The job a sink works for: whose, and the ImportDestination member it was given."""

    job_id: str
    account_id: str
    region: str
    #: The ImportDestination member as the request gave it, e.g.
    #: {"ContactListName": "news", "ContactListImportAction": "PUT"}
    destination: dict[str, Any]
    #: "PUT" (add, or replace what is there) or "DELETE" (remove)
    action: str


class ImportSink(Protocol):
    #: The ImportDestinationType this sink serves ("SUPPRESSION_LIST", "CONTACT_LIST").
    destination_type: str
    #: Whether a CSV source starts with a header line (given to ``parse`` as ``Record.header``).
    csv_header: bool

    async def check(self, target: ImportTarget) -> None:
        """At CreateImportJob: raise a DomainError (NotFound for a missing contact list, …) when the
        destination cannot take this import; the caller gets it as the API's error."""
        ...

    def parse(self, target: ImportTarget, record: Record) -> Any:
        """One record → the row ``apply`` takes, or None to skip it silently (a header line the sink
        recognises). Raise RecordError(message) for a malformed record: it is counted in
        FailedRecordsCount and written, with the message, to the failed-records file. Runs on a worker
        thread: no database, no event loop."""
        ...

    async def apply(self, s: AsyncSession, target: ImportTarget, rows: list[Any]) -> None:
        """Write one batch of rows (1 to ``jobs.batch`` of them, in file order) in ``s``, the job's
        write transaction, which also saves the job's progress: a batch is written, and counted,
        once, even when its worker dies (the transaction then rolls back and the resumed job reads
        the batch again). Write the batch in a few statements, never a round trip per row:
        storage/bulk.py's BulkUpsert and BulkDelete do it the fastest way on each database. The same
        key twice in a batch is the caller's to resolve (the last one wins, as it would row by row)."""
        ...
