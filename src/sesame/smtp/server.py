"""The SMTP listeners of one door: submission's STARTTLS (``smtp``) and implicit TLS (``smtps``), or
the MX (``mx``, STARTTLS offered); their connection limits, the slowing of credential guessing, and a
graceful stop.

One process's sessions of a door share one ``SmtpServer``; its counts are per process, as its sockets are.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import time
from collections import Counter

from sesame.config import Settings
from sesame.metrics import SMTP_SESSIONS
from sesame.smtp.door import Door, Reply
from sesame.smtp.session import SmtpSession
from sesame.smtp.tls import server_context

TOO_MANY_CONNECTIONS = Reply(421, "Too many concurrent SMTP connections")
#: Failed AUTH from one address: each failure within FAILURE_MEMORY seconds of the previous one waits
#: FAILURE_DELAY more seconds before its 535 (up to MAX_FAILURE_DELAY), the waits of one address one
#: after the other, so a password is guessed at a few tries a minute, not at line speed; an honest typo
#: costs a second.
FAILURE_DELAY, MAX_FAILURE_DELAY, FAILURE_MEMORY = 1.0, 15.0, 600.0
#: Seconds sessions get to finish what they are doing when the server stops, before they are cut.
GRACE_SECONDS = 10.0


class SmtpServer:
    def __init__(self, settings: Settings, door: Door) -> None:
        self.settings = settings
        self.door = door
        self.hostname = settings.smtp.hostname or socket.gethostname()
        self.idle_timeout = settings.smtp.idle_timeout
        self.dev = settings.mode == "dev"
        #: dev is a local catcher: AUTH (optional there) is offered in clear too.
        self.plaintext_auth = settings.smtp.allow_plaintext_auth or self.dev
        self.tls_context: ssl.SSLContext = server_context(settings, self.hostname)
        self.closing = False
        self._servers: list[asyncio.Server] = []
        self._sessions: set[SmtpSession] = set()
        self._per_address: Counter[str] = Counter()
        self._failures: dict[str, tuple[int, float]] = {}

    async def start(self, sockets: dict[str, socket.socket]) -> None:
        """Serve on bound sockets: "smtp" speaks STARTTLS, "smtps" TLS from the first byte."""
        loop = asyncio.get_running_loop()
        for name, sock in sockets.items():
            implicit = name == "smtps"
            factory = functools.partial(SmtpSession, self, implicit_tls=implicit)
            server = await loop.create_server(
                factory,
                sock=sock,
                ssl=self.tls_context if implicit else None,
                ssl_handshake_timeout=self.idle_timeout if implicit else None,
            )
            self._servers.append(server)

    def admit(self, session: SmtpSession) -> Reply | None:
        """Count a new session in, or the refusal when it is one too many (in all or from its address)."""
        limits = self.settings.smtp
        self._per_address[session.peer] += 1
        self._sessions.add(session)
        SMTP_SESSIONS.inc()
        if len(self._sessions) > limits.max_connections or (
            self._per_address[session.peer] > limits.max_connections_per_ip
        ):
            return TOO_MANY_CONNECTIONS
        return None

    def release(self, session: SmtpSession) -> None:
        if session in self._sessions:
            self._sessions.discard(session)
            SMTP_SESSIONS.dec()
            self._per_address[session.peer] -= 1
            if self._per_address[session.peer] <= 0:
                del self._per_address[session.peer]

    async def failed_login(self, address: str) -> None:
        """Wait before answering a failed AUTH: a second more for each failure of the address within
        FAILURE_MEMORY, and after the address's earlier failures have had their wait, so parallel
        sessions from one address queue up instead of guessing side by side."""
        now = time.monotonic()
        count, until = self._failures.get(address, (0, now))
        count = count + 1 if now - until < FAILURE_MEMORY else 1
        until = max(until, now) + min(MAX_FAILURE_DELAY, FAILURE_DELAY * count)
        if len(self._failures) > 10_000:  # forget the oldest half rather than grow without bound
            for key in sorted(self._failures, key=lambda k: self._failures[k][1])[:5_000]:
                del self._failures[key]
        self._failures[address] = (count, until)
        await asyncio.sleep(until - now)

    async def close(self) -> None:
        """Stop listening; idle sessions are told 421 at once, the others get GRACE_SECONDS to finish
        their transaction (a message being committed gets its 250). Once is enough: later calls return."""
        if self.closing:
            return
        self.closing = True
        for server in self._servers:
            server.close()
        for session in list(self._sessions):
            session.shutdown()
        tasks = [s.task for s in self._sessions if s.task is not None]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=GRACE_SECONDS)
            for task in pending:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        for server in self._servers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 1)
