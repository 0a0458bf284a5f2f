"""Sink SMTP servers for end-to-end tests of delivery: they accept (or refuse, as told) and record.

    with SinkServer("127.0.0.2", tls=True, replies={"full@x.test": (452, "4.2.2 Mailbox full")}) as sink:
        ...  # point the delivery engine's MX for x.test at sink.address
        [message] = sink.wait_for(1)
        assert message.rcpt_tos == ["ok@x.test"] and message.tls

Each sink is an aiosmtpd server running its own event loop in a thread (``aiosmtpd.controller``),
listening on a loopback address, port 0 picking a free one. ``data`` is byte-exact: what came between
DATA and the final dot, dot-stuffing undone, CRLF line ends as sent. With ``tls`` the sink offers
STARTTLS with a self-signed certificate made for it (``certificate_path`` holds the PEM, for clients
that want to verify it); ``require_tls`` refuses everything but EHLO, STARTTLS, NOOP and QUIT before TLS.

Every attribute may be read from any thread; ``messages`` and ``rejected`` are snapshots.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import itertools
import shutil
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from cryptography.hazmat.primitives.asymmetric import ec

from sesame.smtp.tls import self_signed_pem


@dataclass(frozen=True)
class Received:
    """One message the sink took in (or, in ``SinkServer.rejected``, refused at the end of DATA)."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    peer: tuple[str, int]  # the client's address and port
    connection_id: int  # 1, 2, … in the order the sink accepted the connections
    helo: str | None = None  # the EHLO/HELO name the client gave
    mail_options: list[str] = field(default_factory=list)  # MAIL FROM parameters, e.g. BODY=8BITMIME
    received_at: float = field(default_factory=time.monotonic)  # when the data came (time.monotonic)


class SinkServer:
    """An SMTP server that records what it is sent; a context manager (``start``/``stop``)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        tls: bool = False,
        require_tls: bool = False,
        hostname: str = "sink.test",
        replies: dict[str, tuple[int, str]] | None = None,
        data_reply: tuple[int, str] | None = None,
        data_delay: float = 0.0,
        size_limit: int | None = None,
        max_messages_per_connection: int | None = None,
        auth: dict[str, str] | None = None,
        pipelining: bool = True,
    ) -> None:
        """``replies``: the reply to RCPT TO per recipient (case-insensitive), others get 250; a 2xx reply
        accepts the recipient. ``data_reply``: the reply to every message's final dot instead of 250; a
        message refused with it goes to ``rejected``. ``size_limit``: advertised as SIZE and enforced
        (552); None advertises no SIZE and takes any size. ``max_messages_per_connection``: after that
        many messages a connection's next MAIL FROM gets 421 and the connection is closed.
        ``data_delay``: seconds a message waits, recorded already, for the reply to its final dot (a
        slow server). ``pipelining``: advertise PIPELINING (RFC 2920), as Postfix and Exim do;
        aiosmtpd reads pipelined commands in order either way."""
        if require_tls and not tls:
            raise ValueError("require_tls needs tls=True")
        #: username → password: AUTH PLAIN/LOGIN is then required (after STARTTLS when ``tls``).
        self.auth = auth
        self.pipelining = pipelining
        self.logins: list[str] = []  # the usernames that authenticated, in order
        self.host = host
        self.hostname = hostname
        self.tls = tls
        self.require_tls = require_tls
        self.size_limit = size_limit
        self.max_messages_per_connection = max_messages_per_connection
        self.data_reply = data_reply
        self.data_delay = data_delay
        self.certificate_path: Path | None = None
        self._requested_port = port
        self._port = port
        self._replies = {rcpt.lower(): reply for rcpt, reply in (replies or {}).items()}
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._messages: list[Received] = []
        self._rejected: list[Received] = []
        self._connections = 0
        self._last_connection_id = 0  # not reset by clear(): ids stay unique over the sink's life
        self._queue_ids = itertools.count(1)
        self._live: set[_SinkSMTP] = set()  # touched only in the server's thread
        self._controller: _Controller | None = None
        self._tempdir: str | None = None

    # -- what the sink saw ------------------------------------------------------------------------

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self._port)

    @property
    def port(self) -> int:
        return self._port

    @property
    def messages(self) -> list[Received]:
        """The messages accepted so far, oldest first."""
        with self._lock:
            return list(self._messages)

    @property
    def rejected(self) -> list[Received]:
        """The messages refused at the end of DATA (``data_reply`` not 2xx), oldest first."""
        with self._lock:
            return list(self._rejected)

    @property
    def connections(self) -> int:
        """SMTP connections accepted since start (or ``clear``); STARTTLS does not make a new one."""
        with self._lock:
            return self._connections

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """All the messages accepted so far, once there are at least ``n``; TimeoutError after
        ``timeout`` seconds otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._messages) >= n, max(0.0, timeout)):
                raise TimeoutError(
                    f"{len(self._messages)} of {n} messages reached {self.hostname} within {timeout}s"
                    f" ({len(self._rejected)} refused, {self._connections} connections)"
                )
            return list(self._messages)

    def clear(self) -> None:
        """Forgets the messages, refusals and connection count; the configured replies stay."""
        with self._lock:
            self._messages.clear()
            self._rejected.clear()
            self._connections = 0

    # -- behaviour --------------------------------------------------------------------------------

    def reply_for(self, rcpt: str, code: int, text: str) -> None:
        """From now on, RCPT TO ``rcpt`` gets ``code text`` (a 2xx code accepts the recipient)."""
        with self._lock:
            self._replies[rcpt.lower()] = (code, text)

    def _rcpt_reply(self, rcpt: str) -> tuple[int, str] | None:
        with self._lock:
            return self._replies.get(rcpt.lower())

    # -- lifetime ---------------------------------------------------------------------------------

    def start(self) -> SinkServer:
        if self._controller is not None:
            raise RuntimeError("the sink is already running")
        tls_context = None
        if self.tls:
            self._tempdir = tempfile.mkdtemp(prefix="sesame-sink-")
            cert_pem, key_pem = _self_signed(self.hostname, self.host)
            self.certificate_path = Path(self._tempdir, "cert.pem")
            key_path = Path(self._tempdir, "key.pem")
            self.certificate_path.write_bytes(cert_pem)
            key_path.write_bytes(key_pem)
            tls_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)  # no client certificates asked
            tls_context.load_cert_chain(self.certificate_path, key_path)
        controller = _Controller(
            self,
            _Handler(self),
            hostname=self.host,
            port=self._requested_port,
            ready_timeout=10.0,
            server_hostname=self.hostname,
            tls_context=tls_context,
            require_starttls=self.require_tls,
            data_size_limit=self.size_limit,
            enable_SMTPUTF8=True,
            **(self._auth_options() if self.auth is not None else {}),
        )
        with self._lock:
            counters = (self._connections, self._last_connection_id)
        try:
            controller.start()
        except BaseException:
            self._remove_tempdir()
            raise
        self._controller = controller
        self._port = controller.port
        # start() opens and drops one connection of its own to see the server answer: not a client's.
        with self._lock:
            self._connections, self._last_connection_id = counters
        return self

    def _auth_options(self) -> dict[str, Any]:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            if not isinstance(data, LoginPassword) or self.auth is None:
                return AuthResult(success=False, handled=False)
            login, password = data.login.decode(), data.password.decode()
            if self.auth.get(login) != password:
                return AuthResult(success=False, handled=False)  # not handled: aiosmtpd answers 535
            with self._lock:
                self.logins.append(login)
            return AuthResult(success=True)

        return {"authenticator": authenticator, "auth_required": True, "auth_require_tls": self.tls}

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is None:
            return
        # Close the clients' connections first: the server then stops at once (Python 3.12's
        # Server.wait_closed waits for them) and no transport is left open for the GC to warn about.
        try:
            asyncio.run_coroutine_threadsafe(self._close_connections(), controller.loop).result(5)
        except (TimeoutError, RuntimeError):
            pass  # the loop is gone or stuck: stop() below still ends the thread
        controller.stop()
        self._port = self._requested_port
        self._remove_tempdir()

    async def _close_connections(self) -> None:
        for smtp in list(self._live):
            smtp.close_connection()
        for _ in range(10):  # connection_lost runs on a later turn of the loop
            if not self._live:
                break
            await asyncio.sleep(0.01)

    def _remove_tempdir(self) -> None:
        if self._tempdir is not None:
            shutil.rmtree(self._tempdir, ignore_errors=True)
            self._tempdir = None
            self.certificate_path = None

    def __enter__(self) -> SinkServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- called from the server's thread ----------------------------------------------------------

    def _connection_opened(self) -> int:
        with self._lock:
            self._connections += 1
            self._last_connection_id += 1
            return self._last_connection_id

    def _record(self, received: Received, accepted: bool) -> int:
        with self._changed:
            (self._messages if accepted else self._rejected).append(received)
            self._changed.notify_all()
            return next(self._queue_ids)


class _SinkSMTP(SMTP):
    """One connection's protocol: knows its number and how many messages it carried."""

    def __init__(self, sink: SinkServer, handler: Any, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink = sink
        self.connection_id = sink._connection_opened()
        self.messages_sent = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.sink._live.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.sink._live.discard(self)
        super().connection_lost(error)

    def close_connection(self) -> None:
        transport = self._original_transport or self.transport  # under TLS, the socket's own
        if isinstance(transport, asyncio.Transport):
            transport.abort()
        elif transport is not None:
            transport.close()

    async def smtp_MAIL(self, arg: str | None) -> None:
        limit = self.sink.max_messages_per_connection
        if limit is not None and self.messages_sent >= limit:
            await self.push(f"421 4.7.0 {self.hostname} Too many messages on one connection, closing")
            if self._handler_coroutine is not None:
                self._handler_coroutine.cancel()
            if self.transport is not None:
                self.transport.close()
            return
        await super().smtp_MAIL(arg)


class _Controller(Controller):
    def __init__(self, sink: SinkServer, handler: _Handler, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.sink = sink

    def factory(self) -> SMTP:
        return _SinkSMTP(self.sink, self.handler, **self.SMTP_kwargs)

    def _trigger_server(self) -> None:
        # aiosmtpd connects to self.port to check the server answers: with port 0, the bound one.
        if self.port == 0 and isinstance(self.server, asyncio.Server):
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


class _Handler:
    """aiosmtpd's hooks, run in the server's thread."""

    def __init__(self, sink: SinkServer) -> None:
        self.sink = sink

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # aiosmtpd leaves it to the hook once there is one
        if self.sink.pipelining:
            responses.insert(len(responses) - 1, "250-PIPELINING")
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        reply = self.sink._rcpt_reply(address)
        if reply is None or 200 <= reply[0] < 300:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK" if reply is None else f"{reply[0]} {reply[1]}"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(server, _SinkSMTP)
        server.messages_sent += 1
        peer = session.peer if isinstance(session.peer, tuple) else (str(session.peer), 0)
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            data=envelope.original_content or b"",
            tls=session.ssl is not None,
            peer=(str(peer[0]), int(peer[1])),
            connection_id=server.connection_id,
            helo=session.host_name,
            mail_options=list(envelope.mail_options),
        )
        reply = self.sink.data_reply
        accepted = reply is None or 200 <= reply[0] < 300
        queue_id = self.sink._record(received, accepted)
        if self.sink.data_delay:
            await asyncio.sleep(self.sink.data_delay)
        return f"250 2.0.0 Ok: queued as {queue_id}" if reply is None else f"{reply[0]} {reply[1]}"


@functools.lru_cache(maxsize=16)
def _self_signed(hostname: str, host: str) -> tuple[bytes, bytes]:
    """A certificate for ``hostname`` (and ``host`` if it is an IP address) and its key, both PEM; tests
    trust it as their own authority."""
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        addresses = []
    return self_signed_pem(ec.generate_private_key(ec.SECP256R1()), [hostname], addresses, days=365, ca=True)
