"""The background loop that runs bulk jobs, in ``sesame dev`` and ``sesame serve`` alike (``jobs.enabled``).

Each process claims jobs with leases (jobs/store.py), up to ``jobs.concurrency`` at a time, and looks
for more every ``jobs.poll_interval`` seconds or when a job is created in it. A job whose process died
is claimed again once its lease has run out, and resumes where its last batch left it. A job that keeps
failing (its process dying with it, its source unreadable) is FAILED after ``jobs.max_attempts`` tries.
"""

from __future__ import annotations

import asyncio
import logging

from sesame.config import JobsSettings
from sesame.integrations.objects import ObjectStoreError
from sesame.jobs.exports import Exporter
from sesame.jobs.imports import Importer
from sesame.jobs.store import Claimed, JobLost, JobStore

log = logging.getLogger(__name__)

#: Seconds before a job whose run failed unexpectedly is tried again (by any process).
RETRY_SECONDS = 5.0


class JobRunner:
    def __init__(
        self, store: JobStore, importer: Importer, exporter: Exporter, settings: JobsSettings
    ) -> None:
        self.store = store
        self.importer = importer
        self.exporter = exporter
        self.settings = settings
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()

    def wake(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        try:
            while True:
                free = self.settings.concurrency - len(self._running)
                if free > 0:
                    try:
                        claimed = await self.store.claim(free, self.settings.lease_seconds)
                    except Exception:
                        log.exception("claiming jobs failed")
                        claimed = []
                    for job in claimed:
                        task = asyncio.create_task(self._run(job), name=f"sesame-job-{job.id}")
                        self._running.add(task)
                        task.add_done_callback(self._done)
                    if claimed:
                        continue  # there may be more
                try:
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_interval)
                except TimeoutError:
                    pass
                self._wake.clear()
        finally:
            for task in list(self._running):  # a job cut short keeps its lease; another run resumes it
                task.cancel()
            await asyncio.gather(*self._running, return_exceptions=True)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # room for another job

    async def _run(self, job: Claimed) -> None:
        if job.attempts > self.settings.max_attempts:
            last = f" The last try: {job.error_message}" if job.error_message else ""
            await self.store.finish(
                job.id,
                "FAILED",
                error_message=f"The job was tried {job.attempts - 1} times without finishing.{last}",
            )
            return
        try:
            if job.kind == "import":
                await self.importer.run(job)
            else:
                await self.exporter.run(job)
        except JobLost:
            log.info("job %s is no longer this process's (cancelled, or taken over)", job.id)
        except ObjectStoreError as exc:
            log.warning("job %s: %s; trying again later", job.id, exc)
            await self.store.release(job.id, RETRY_SECONDS, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("job %s failed", job.id)
            await self.store.release(job.id, RETRY_SECONDS, f"{type(exc).__name__}: {exc}")
