"""Firehose delivery streams with no AWS endpoint: JSON lines in files under ``DATA_DIR/firehose``.

One directory per stream, one file per hour (``2026-12-05-21.jsonl``), as Firehose's S3 prefixes
rotate by hour. Each write appends whole lines with one ``write`` on a file opened with O_APPEND, so
several processes on one machine can feed one stream without interleaving records.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
from pathlib import Path

_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


class FirehoseFiles:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, stream: str, when: dt.datetime) -> Path:
        name = _SAFE.sub("_", stream) or "_"
        return self.root / name / f"{when.astimezone(dt.UTC):%Y-%m-%d-%H}.jsonl"

    async def put(self, stream: str, records: list[bytes]) -> None:
        """Append records (each already ending in a newline, as SES writes them) to the stream."""
        path = self.path(stream, dt.datetime.now(dt.UTC))
        await asyncio.to_thread(self._append, path, b"".join(records))

    @staticmethod
    def _append(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            view = memoryview(data)
            while view:  # a regular file takes it all at once; the loop is for the rare short write
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
