"""Run the listeners: bind first (port 0 allowed), announce each real address, then ``ready``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import ClassVar

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sesame.config import ROLES, Settings
from sesame.http.app import create_app
from sesame.nodes import NodeInfo
from sesame.runtime import Sesame
from sesame.smtp.server import SmtpServer
from sesame.smtp.submission import Submission


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY only on sockets that say they are TCP, and
    # without it every keep-alive response waits ~40 ms for the client's delayed ACK (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


def _dev_banner(host: str, port: int, settings: Settings, smtp: dict[str, tuple[str, int]]) -> str:
    endpoint = f"http://{host}:{port}"
    mail = "".join(f"\n  {name}://{h}:{p}" for name, (h, p) in smtp.items() if name != "mx")
    mx = f"smtp://{smtp['mx'][0]}:{smtp['mx'][1]}" if "mx" in smtp else "off"
    return f"""
Sesame dev server: {endpoint}  (data in {settings.data_dir}, any access key works)
Console: {endpoint}/  (captured mail, the account's pages, the queue)
SMTP (any credentials or none; mail is captured: see the console, or {endpoint}/_aws/ses):{mail or " off"}
MX (every domain receives; mail is shown at {endpoint}/_sesame/inbound): {mx}

  aws sesv2 get-account --endpoint-url {endpoint} --region us-east-1

  import boto3
  ses = boto3.client("sesv2", endpoint_url="{endpoint}", region_name="us-east-1",
                     aws_access_key_id="test", aws_secret_access_key="test")
  print(ses.get_account()["SendQuota"])
"""


#: The most a request's head (request line and header fields) may take before it is refused.
MAX_HEAD_BYTES = 64 * 1024


class _HttpProtocol(HttpToolsProtocol):
    """uvicorn on httptools (llhttp), about 15% less CPU per request than h11, with what h11 or a
    front proxy would otherwise bound:

    - a request's head may take at most MAX_HEAD_BYTES: without it a client could stream header lines
      into memory for as long as it likes. Bytes are counted once parsed, so a head and a large body
      arriving in one read are not mistaken for a large head.
    - and at most ``head_timeout`` seconds, from the connection's opening or the end of the previous
      response until the head is complete, however the bytes trickle in (uvicorn's keep-alive timeout
      restarts at each byte, and nothing at all bounds a fresh connection that sends nothing). An idle
      connection is then closed, one with part of a head answered 408 (RFC 9110 §15.5.9) and closed.
    - connections are counted per client address: past ``max_connections_per_address``, a
      connection's requests are answered 503 and it is closed (uvicorn's own answer past its
      concurrency limit), so that one client cannot take every connection the process can hold.

    ``configured`` makes the subclass with a process's settings and its own count.
    """

    per_address_limit: ClassVar[int] = 0  # 0: no limit
    head_timeout: ClassVar[float] = 0.0  # 0: none
    _open: ClassVar[Counter[str]] = Counter()
    _in_head = False  # from a request's first byte until its head is complete
    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None

    @classmethod
    def configured(cls, settings: Settings) -> type[_HttpProtocol]:
        attrs = {
            "per_address_limit": settings.max_connections_per_address,
            "head_timeout": settings.head_timeout,
            "_open": Counter(),
        }
        return type("HttpProtocol", (cls,), attrs)

    def _address(self) -> str:
        return self.client[0] if self.client else ""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._open[self._address()] += 1
        if self.per_address_limit and self._open[self._address()] > self.per_address_limit:
            self.limit_concurrency = 0  # every request on this connection: 503, then close
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        address = self._address()
        self._open[address] -= 1
        if self._open[address] <= 0:
            del self._open[address]
        if self._head_timer is not None:
            self._head_timer.cancel()
        super().connection_lost(exc)

    def _await_head(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        if self.head_timeout > 0:
            self._head_timer = self.loop.call_later(self.head_timeout, self._head_too_slow)

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or not (self.cycle is None or self.cycle.response_complete):
            return  # a request is being answered, so its head came in time
        if self._in_head:
            self._send_and_close(408, "Request Timeout")
        else:
            self.transport.close()

    def _send_and_close(self, status: int, text: str) -> None:
        body = text.encode()
        self.transport.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
            b"connection: close\r\n\r\n%s" % (status, HTTPStatus(status).phrase.encode(), len(body), body)
        )
        self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head, self._head_bytes = True, 0

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()  # the next request's head, unless it already came (pipelining)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._in_head and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES:
                self.send_400_response("Request header section too large.")


class _Server(uvicorn.Server):
    """uvicorn's server, but a SIGTERM/SIGINT ends in a clean exit (status 0) after the graceful stop.

    uvicorn re-raises the signal once it has stopped, so the process would die by it (status -15);
    a supervisor should see an orderly shutdown as one. The process's own handlers (``run``) pass each
    signal on to ``handle_exit``; a second one still forces the exit.
    """

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def listen(settings: Settings) -> dict[str, socket.socket]:
    """Bind this process's listeners (by their names: "http", "smtp", "smtps", "mx"), before anything
    else, so that port 0 is resolved once and ``--workers`` can share them."""
    sockets = {"http": _bind(*settings.http_address())} if settings.http_enabled else {}
    sockets |= {name: _bind(*address) for name, address in settings.smtp_addresses().items()}
    if "http" in sockets and not settings.public_url:  # links in mail must carry the port really bound
        host, port = sockets["http"].getsockname()[:2]
        settings.public_url = f"http://{host}:{port}"
    return sockets


def announce(settings: Settings, sockets: dict[str, socket.socket]) -> None:
    bound = {name: s.getsockname()[:2] for name, s in sockets.items()}
    for name, (host, port) in bound.items():
        print(f"listening {name} {host}:{port}", file=sys.stderr, flush=True)
    if settings.mode == "dev" and "http" in bound:
        smtp = {name: address for name, address in bound.items() if name != "http"}
        host, port = bound["http"]
        print(_dev_banner(host, port, settings, smtp), file=sys.stderr, flush=True)


async def run(
    settings: Settings,
    sockets: dict[str, socket.socket] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Run this process's roles until SIGTERM or SIGINT. Alone, it binds and announces its listeners
    and says ``ready``; as one of ``--workers`` it is given the supervisor's sockets and ``on_ready``."""
    alone = sockets is None
    if sockets is None:
        sockets = listen(settings)
    sesame = Sesame(settings)
    await sesame.open()
    stop = asyncio.Event()
    http: _Server | None = None
    loop = asyncio.get_running_loop()

    def on_signal(sig: int) -> None:
        stop.set()
        if http is not None:
            http.handle_exit(sig, None)

    smtp = SmtpServer(settings, Submission(settings, sesame.accounts, sesame.sending))
    mx = SmtpServer(settings, sesame.inbound)
    # The SMTP listeners stop at the signal, with the HTTP one, not after its graceful stop.
    background = [asyncio.create_task(_close_on(stop, smtp, mx), name="sesame-smtp-stop")]
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        serving: asyncio.Task[None] | None = None
        if "http" in sockets:
            http = _Server(_http_config(settings, sesame))
            serving = asyncio.create_task(http.serve(sockets=[sockets["http"]]))
            while not http.started:
                if serving.done():
                    await serving  # uvicorn could not start: its error, or its exit
                    return
                await asyncio.sleep(0.01)
        await smtp.start({n: s for n, s in sockets.items() if n in ("smtp", "smtps")})
        await mx.start({n: s for n, s in sockets.items() if n == "mx"})
        # What start-up made (modules, service models, mappers, caches) lives as long as the process: the
        # cyclic garbage collector need not walk it again in every full collection. Those walks stopped
        # the loop for tens of milliseconds: send.py at c=32 on SQLite, p99 106-124 ms before, 50-57 after.
        gc.collect()
        gc.freeze()
        if alone:
            announce(settings, sockets)
            print("ready", file=sys.stderr, flush=True)
        elif on_ready is not None:
            on_ready()
        for name, work in sesame.loops().items():
            background.append(asyncio.create_task(work, name=f"sesame-{name}"))
        listeners = {n: "{}:{}".format(*s.getsockname()[:2]) for n, s in sockets.items()}
        node = NodeInfo(settings.node_name, settings.mode, _roles(sesame, listeners), listeners)
        background.append(asyncio.create_task(sesame.nodes.run(node), name="sesame-node"))
        if serving is not None:
            await serving  # SIGTERM/SIGINT: stops accepting, finishes requests, returns
        else:
            await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        await asyncio.gather(smtp.close(), mx.close())
        for job in background:  # a delivery cut short keeps its lease; another run picks it up
            job.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await job
        await sesame.close()


async def _close_on(stop: asyncio.Event, *servers: SmtpServer) -> None:
    await stop.wait()
    await asyncio.gather(*(s.close() for s in servers))


def _http_config(settings: Settings, sesame: Sesame) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(sesame),
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=10,
        # A runaway header block gets 400 and the connection closed, never a hang.
        http=_HttpProtocol.configured(settings),
        limit_concurrency=settings.max_connections or None,
    )


def _roles(sesame: Sesame, listeners: dict[str, str]) -> list[str]:
    """What this process does, in the words of ``--roles``: a listener role only if its listener is
    open, "capture" for a delivery role that keeps mail instead of sending it."""
    opened = {"api": "http" in listeners, "smtp": bool({"smtp", "smtps"} & set(listeners))}
    opened["mx"] = "mx" in listeners
    roles = [r for r in ROLES if sesame.settings.runs(r) and opened.get(r, True)]
    return ["capture" if r == "delivery" and sesame.engine is None else r for r in roles]


def configure_logging(settings: Settings) -> None:
    """Every line names the node, for logs gathered from several nodes in one place."""
    node = settings.node_name.replace("%", "%%")
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s %(levelname)s {node} %(name)s: %(message)s", force=True
    )


def main(settings: Settings) -> None:
    configure_logging(settings)
    if settings.workers > 1:
        from sesame.cli.workers import supervise

        sys.exit(supervise(settings))
    asyncio.run(run(settings))
