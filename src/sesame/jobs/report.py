"""``sesame jobs``: bulk jobs as text (a progress bar for running imports) or as JSON."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sesame.storage.models import BulkJob

BAR = 24


def describe(row: BulkJob) -> dict[str, Any]:
    out: dict[str, Any] = {
        "JobId": row.id,
        "AccountId": row.account_id,
        "Region": row.region,
        "Kind": row.kind,
        "Type": row.source_type,
        "Status": row.status,
        "CreatedTimestamp": row.created_at.isoformat(),
        "CompletedTimestamp": row.completed_at.isoformat() if row.completed_at else None,
        "ProcessedRecordsCount": row.processed,
        "FailedRecordsCount": row.failed,
        "ExportedRecordsCount": row.exported,
        "Progress": progress(row),
        "Worker": row.locked_by,
        "ErrorMessage": row.error_message,
    }
    return out


def progress(row: BulkJob) -> float | None:
    """How far a job is, 0 to 1: an import by the bytes of its source read; None when unknown."""
    if row.status == "COMPLETED":
        return 1.0
    if row.kind == "import" and row.total_bytes:
        return min(1.0, row.position / row.total_bytes)
    return None


def bar(fraction: float | None) -> str:
    if fraction is None:
        return "[" + "?" * BAR + "]    "
    done = int(fraction * BAR)
    return f"[{'#' * done}{'.' * (BAR - done)}] {fraction * 100:3.0f}%"


def render(rows: Sequence[BulkJob]) -> str:
    lines = []
    for row in rows:
        what = f"{row.kind:<6} {row.source_type:<17} {row.status:<10}"
        if row.kind == "import":
            counts = f"{row.processed:,} processed, {row.failed:,} failed"
        else:
            counts = f"{row.processed:,} processed, {row.exported:,} exported"
        if row.status in ("CREATED", "PROCESSING"):
            line = f"{row.id}  {what} {bar(progress(row))}  {counts}"
        else:
            when = (row.completed_at or row.created_at).strftime("%Y-%m-%d %H:%M:%S")
            line = f"{row.id}  {what} {when}  {counts}"
            if row.status == "FAILED" and row.error_message:
                line += f"  ({row.error_message})"
        lines.append(f"{line}  account {row.account_id} {row.region}")
    return "\n".join(lines)
