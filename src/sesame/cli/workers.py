"""``sesame serve --workers N``: N processes of the same roles on one machine, sharing the listeners, so
that a machine's cores are used beyond one interpreter's lock.

The supervisor brings the schema to head and checks the secret key once, binds the listeners (port 0
resolved once, announced once), then forks the workers: each inherits the listening sockets and the
kernel hands every new connection to one of them. Forking happens before anything else runs in the
supervisor (no event loop, no database connection, no thread), so a worker starts as clean as a new
process. A worker that dies is started again; SIGTERM or SIGINT is passed to every worker, and the
supervisor exits once they all have.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import os
import select
import shutil
import signal
import socket
import sys
import time

from prometheus_client import multiprocess

from sesame import metrics
from sesame.cli import server
from sesame.config import Settings
from sesame.runtime import Sesame
from sesame.smtp.tls import server_context

log = logging.getLogger(__name__)

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
#: A worker that dies sooner than this after its start is not restarted at once (a crash loop).
RESTART_BACKOFF_SECONDS = 1.0
#: How long the workers have to say they are ready before the supervisor gives up.
STARTUP_SECONDS = 60.0


def supervise(settings: Settings) -> int:
    asyncio.run(_prepare(settings))
    sockets = server.listen(settings)
    ready_r, ready_w = os.pipe()
    workers: dict[int, int] = {}  # pid -> worker number
    started: dict[int, float] = {}
    for number in range(1, settings.workers + 1):
        pid = _fork(settings, number, sockets, ready_w, ready_r)
        workers[pid], started[number] = number, time.monotonic()
    os.close(ready_w)
    stopping = False

    def stop(sig: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            _signal(pid, sig)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if not _await_ready(ready_r, settings.workers):
        stop(signal.SIGTERM, None)
        status = 1
    else:
        server.announce(settings, sockets)
        print("ready", file=sys.stderr, flush=True)
        status = 0
    while workers:
        try:
            pid, code = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid not in workers or stopping:
            workers.pop(pid, None)
            continue
        number = workers.pop(pid)
        if os.environ.get(metrics.MULTIPROCESS):  # its live gauges (SMTP sessions) end with it
            multiprocess.mark_process_dead(pid)
        log.warning("worker %d (pid %d) ended (%s); starting it again", number, pid, _status(code))
        time.sleep(max(0.0, started[number] + RESTART_BACKOFF_SECONDS - time.monotonic()))
        if stopping:  # a signal came meanwhile
            continue
        started[number] = time.monotonic()
        workers[_fork(settings, number, sockets)] = number
    if directory := os.environ.get(metrics.MULTIPROCESS):
        shutil.rmtree(directory, ignore_errors=True)
    return status


async def _prepare(settings: Settings) -> None:
    """Migrate, check the key and make the SMTP listeners' self-signed certificate (if one is needed)
    once, here, rather than N times at once in the workers."""
    sesame = Sesame(settings)
    await sesame.open()
    await sesame.close()
    server_context(settings, settings.smtp.hostname or socket.gethostname())


def _fork(
    settings: Settings, number: int, sockets: dict[str, socket.socket], ready: int | None = None, *unused: int
) -> int:
    supervisor = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code = 0
    try:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        _stop_with(supervisor)
        for fd in unused:
            os.close(fd)
        if settings.node_id:  # else each worker is HOST:PID, like any process
            settings.node_id = f"{settings.node_id}/{number}"
        server.configure_logging(settings)

        def on_ready() -> None:
            if ready is not None:
                os.write(ready, b"r")
                os.close(ready)

        asyncio.run(server.run(settings, sockets, on_ready))
    except BaseException:
        log.exception("worker %d failed", number)
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)  # never return into the supervisor's code


def _stop_with(supervisor: int) -> None:
    """Linux: this worker gets SIGTERM when the supervisor dies, even by SIGKILL, rather than keep the
    listeners open as an orphan (a new supervisor could not bind them)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a supervisor killed outright leaves its workers
        return
    if os.getppid() != supervisor:  # it died before the request was made
        os.kill(os.getpid(), signal.SIGTERM)


def _await_ready(pipe: int, count: int) -> bool:
    """Wait for ``count`` workers to say ready; False if one dies first or time runs out."""
    deadline = time.monotonic() + STARTUP_SECONDS
    got = 0
    while got < count and (left := deadline - time.monotonic()) > 0:
        if not select.select([pipe], [], [], left)[0]:
            break
        chunk = os.read(pipe, count - got)
        if not chunk:  # every write end closed: a worker died before it was ready
            break
        got += len(chunk)
    os.close(pipe)
    if got < count:
        log.error("%d of %d workers started; stopping", got, count)
    return got == count


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _status(code: int) -> str:
    if os.WIFSIGNALED(code):
        return f"signal {signal.Signals(os.WTERMSIG(code)).name}"
    return f"exit status {os.waitstatus_to_exitcode(code)}"
