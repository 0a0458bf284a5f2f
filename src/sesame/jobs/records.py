"""Reading an import's source: records, one at a time, with the byte offset after each, so that a job
can save where it stopped and a resumed job can start there (reference §7.2, §11.2).

Two formats, as SES takes them:

- ``CSV``: one record per line, fields separated by commas; a field in double quotes may hold commas,
  doubled quotes and line breaks (RFC 4180), so a quoted record may span lines. Whether the first line
  is a header is the destination's to say (contact lists: yes; the suppression list: no).
- ``JSON``: newline-delimited JSON, one object per line.

Blank lines are skipped. A record that cannot be read (not UTF-8, not JSON, not an object, a quote
never closed) is a failure of its own; reading goes on with the next line.

Blocking: a reader runs on a worker thread (the importer hands it ``asyncio.to_thread``).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

#: The most one record may take (a quoted field never closed would otherwise swallow the file).
MAX_RECORD_BYTES = 1 << 20
#: The most of a failed record kept for the failed-records file.
MAX_KEPT_CHARS = 10_000


class RecordError(ValueError):
    """A record the destination cannot take; its message goes to the failed-records file."""


@dataclass(frozen=True, slots=True)
class Record:
    """One record of the source, as the destination's ``parse`` gets it."""

    #: The line the record starts on (1 is the file's first line).
    line: int
    #: The record as written in the file, without its line break.
    text: str
    #: CSV: the record's fields, unstripped. None for JSON.
    fields: list[str] | None = None
    #: CSV with a header line: the header's fields (stripped). None otherwise.
    header: list[str] | None = None
    #: JSON: the record's object. None for CSV.
    object: dict[str, Any] | None = None


@dataclass(slots=True)
class Batch:
    """What one ``RecordReader.read`` gave: parsed rows and failures, and where the source now stands."""

    rows: list[Any] = field(default_factory=list)
    #: (line, record text, error message) of each record that failed
    failures: list[tuple[int, str, str]] = field(default_factory=list)
    #: Records read: rows, failures, and records the destination skipped (a header it recognised)
    records: int = 0
    position: int = 0
    line: int = 0
    done: bool = False


Parse = Callable[[Record], Any]


class RecordReader:
    """Records of ``stream`` (opened at byte ``position``, which is after line ``line``)."""

    def __init__(
        self, stream: IO[bytes], data_format: str, *, position: int = 0, line: int = 0,
        header: bool | list[str] = False,
    ) -> None:  # fmt: skip
        self.stream = stream
        self.json = data_format == "JSON"
        self.position = position
        self.line = line
        #: True: the first CSV record is the header, still to read; a list: the header, read already.
        self.header: list[str] | None = header if isinstance(header, list) else None
        self._header_pending = header is True and position == 0

    def read(self, limit: int, parse: Parse) -> Batch:
        """Up to ``limit`` records, each handed to ``parse`` (a row; None to skip it; RecordError for a
        failure)."""
        out = Batch()
        while out.records < limit:
            got = self._next()
            if got is None:
                out.done = True
                break
            start, text, error = got
            if error is not None:
                out.failures.append((start, text[:MAX_KEPT_CHARS], error))
                out.records += 1
                continue
            try:
                if self.json:
                    record = self._json(start, text)
                else:
                    fields = next(csv.reader([text])) if '"' in text else text.split(",")
                    if self._header_pending:
                        self.header = [f.strip() for f in fields]
                        self._header_pending = False
                        continue
                    record = Record(start, text, fields=fields, header=self.header)
                row = parse(record)
            except (RecordError, csv.Error) as exc:
                out.failures.append((start, text[:MAX_KEPT_CHARS], str(exc)))
                out.records += 1
                continue
            out.records += 1
            if row is not None:
                out.rows.append(row)
        out.position, out.line = self.position, self.line
        return out

    def first_record(self) -> list[str] | None:
        """The first CSV record's fields (the header of a file read from its start), or None."""
        got = self._next()
        if got is None or got[2] is not None:
            return None
        return [f.strip() for f in next(csv.reader([got[1]]))]

    @staticmethod
    def _json(start: int, text: str) -> Record:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise RecordError(f"not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise RecordError("not a JSON object")
        return Record(start, text, object=value)

    def _next(self) -> tuple[int, str, str | None] | None:
        """(start line, text, None) of the next record, (start line, text, error) of one that cannot be
        read, None at the end. Blank lines are passed over."""
        while True:
            raw = self.stream.readline()
            if not raw:
                return None
            if self.position == 0 and raw.startswith(b"\xef\xbb\xbf"):  # a byte-order mark (Excel's CSV)
                raw = raw[3:]
                self.position += 3
            self.position += len(raw)
            self.line += 1
            start = self.line
            if not self.json and raw.count(b'"') % 2:  # a quoted field goes on past this line
                parts = [raw]
                size, quotes = len(raw), raw.count(b'"')
                while quotes % 2 and size <= MAX_RECORD_BYTES:
                    more = self.stream.readline()
                    if not more:
                        break
                    parts.append(more)
                    self.position += len(more)
                    self.line += 1
                    size, quotes = size + len(more), quotes + more.count(b'"')
                raw = b"".join(parts)
                if quotes % 2:
                    return start, _text(raw), "a quoted field is not closed"
            try:
                text = raw.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError:
                return start, _text(raw), "not UTF-8 text"
            if text.strip():
                return start, text, None


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace").rstrip("\r\n")
