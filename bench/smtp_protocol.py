"""SMTP protocol layer alone: Sesame's own asyncio session against aiosmtpd's, with no database behind.

    python bench/smtp_protocol.py [--messages 20000] [--seconds 60] [--sessions 20] [--runs 3]

Issue 8 asks whether the submission server should run on aiosmtpd or on our own asyncio server. The
full-stack benchmark (bench/smtp.py) measures Sesame with its database commit, which hides the
protocol layer's own cost; this one takes the database away, so only the SMTP dialogue is compared:

* ours: ``SmtpServer`` / ``SmtpSession`` (settings in ``serve`` mode, a self-signed certificate in a
  temp dir), with a stub in place of ``Submission``: every client is trusted as one fixed account (so
  no AUTH), and ``submit`` answers ``250 Ok <id>`` at once.
* aiosmtpd: its ``SMTP`` protocol on a plain ``loop.create_server``, the same size limit (40 MB), no
  authenticator and AUTH not required, a handler whose ``handle_DATA`` answers ``250 Ok <id>`` at once.

Each server runs alone in a subprocess of its own (this script with ``--serve``), on the standard
asyncio loop, so its CPU time is read from /proc/PID/stat. The load is Postfix's smtp-source with
bench/smtp.py's arguments and message (2,048 bytes, one recipient, no pipelining): --sessions
sessions, in the rows "reuse" (-d, sessions stay open) and "per-session" (one message per
connection), each run bounded by --messages and --seconds. Every server process first takes an
uncounted warm-up of 100 messages. The servers take turns (ours, aiosmtpd, then aiosmtpd, ours ...)
for --runs rounds; the table shows the median of the runs of each server and row:

    accepted/s   messages smtp-source counted as accepted, over the wall time of its run
    CPU us/msg   user + system CPU time of the server process during the run, per accepted message

Then a few robustness probes, on raw sockets against each server with the same stubs: bare-LF
smuggling, commands pipelined after STARTTLS, an over-long command line, and SIZE over the limit.

Client and server share this machine's cores: a figure is a floor, and the CPU per message the
better comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

SERVERS = ("ours", "aiosmtpd")
ACCOUNT = "123456789012"
HOSTNAME = "proto.bench.test"
_ids = itertools.count(1)


def message_id() -> str:
    return f"{next(_ids):016x}-bench"  # the same cheap id for both servers


# -- the servers (child processes) ---------------------------------------------------------------------


class StubSubmission:
    """The submission door with nothing behind it: every client is trusted, every message taken."""

    requires_account = True
    max_recipients = 50

    def first_account(self, peer: str) -> str | None:
        return ACCOUNT

    async def authenticate(self, username: str, password: str) -> str | None:
        return None

    async def connect(self, peer: str) -> Any:
        return None

    async def recipient(self, envelope: Any, address: str) -> Any:
        from sesame.smtp.door import OK

        return OK

    async def accept(self, envelope: Any, data: bytes) -> Any:
        from sesame.smtp.door import Reply

        return Reply(250, f"Ok {message_id()}")


class StubHandler:
    """aiosmtpd's handler: every message taken at once."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        return f"250 Ok {message_id()}"


async def serve(kind: str) -> None:
    """Serve on a free loopback port, print it, and run until SIGTERM."""
    from sesame.config import Settings
    from sesame.smtp.submission import MAX_MESSAGE_BYTES
    from sesame.smtp.tls import server_context

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(mode="serve", data_dir=Path(tmp))
        settings.smtp.hostname = HOSTNAME
        if kind == "ours":
            from sesame.smtp.server import SmtpServer

            server = SmtpServer(settings, StubSubmission())  # type: ignore[arg-type]
            await server.start({"smtp": sock})
        else:
            from aiosmtpd.smtp import SMTP

            context = server_context(settings, HOSTNAME)  # the same certificate, for STARTTLS
            handler = StubHandler()
            listener = await loop.create_server(
                lambda: SMTP(
                    handler,
                    hostname=HOSTNAME,  # not the default socket.getfqdn() per connection
                    data_size_limit=MAX_MESSAGE_BYTES,
                    tls_context=context,
                    auth_require_tls=True,
                ),
                sock=sock,
            )
        print(sock.getsockname()[1], flush=True)
        await stop.wait()
        if kind == "ours":
            await server.close()
        else:
            listener.close()


# -- the load (parent process) -------------------------------------------------------------------------


class ServerProcess:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the port, once listening
        if not line.strip().isdigit():
            self.stop()
            raise RuntimeError(f"{kind}: the server did not start")
        self.port = int(line)

    def cpu(self) -> float:
        from smtp import proc_stat  # bench/smtp.py

        stat = proc_stat(self.proc.pid)
        assert stat is not None
        return stat[1]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def run_server(
    kind: str, args: argparse.Namespace, message_file: Path
) -> dict[str, tuple[int, float, float]]:
    """One server process: warm-up, then both rows; per row (accepted, seconds, CPU seconds)."""
    from smtp import WARMUP, smtp_source

    server = ServerProcess(kind)
    try:
        warm = smtp_source(server.port, message_file, WARMUP, args.sessions, True, 30)
        if warm.accepted != WARMUP:
            raise RuntimeError(f"{kind}: warm-up accepted {warm.accepted}/{WARMUP} {warm.note}")
        out = {}
        for row in ("reuse", "per-session"):
            before = server.cpu()
            r = smtp_source(
                server.port, message_file, args.messages, args.sessions, row == "reuse", args.seconds
            )
            cpu = server.cpu() - before
            per_message = cpu * 1e6 / max(r.accepted, 1)
            print(
                f"  {kind:>8} {row:>11}: {r.accepted:>6} accepted in {r.seconds:6.2f} s, "
                f"{r.rate:7.0f}/s, {per_message:6.0f} us CPU/msg {r.note}".rstrip(),
                flush=True,
            )
            out[row] = (r.accepted, r.seconds, cpu)
        return out
    finally:
        server.stop()


# -- robustness probes -----------------------------------------------------------------------------------


class Raw:
    """A blocking SMTP client on a raw socket, to send exactly the bytes a probe needs."""

    def __init__(self, port: int) -> None:
        self.sock: socket.socket = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.buf = b""
        self.replies()  # the greeting

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def replies(self, wait: float = 2.0) -> list[str]:
        """The complete replies that arrive within ``wait`` seconds of quiet (last line of each)."""
        self.sock.settimeout(wait)
        try:
            while chunk := self.sock.recv(65536):
                self.buf += chunk
                if self.buf.endswith(b"\r\n"):
                    self.sock.settimeout(0.3)  # more may follow a pipelined batch
        except (TimeoutError, ConnectionError, ssl.SSLError):
            pass
        *lines, self.buf = self.buf.split(b"\r\n")
        return [x.decode(errors="replace")[:90] for x in lines if x[3:4] != b"-"]

    def close(self) -> None:
        self.sock.close()


def probe_smuggling(port: int) -> str:
    c = Raw(port)
    c.send(b"EHLO probe\r\nMAIL FROM:<a@probe.test>\r\nRCPT TO:<b@probe.test>\r\nDATA\r\n")
    c.replies()
    c.send(
        b"Subject: one\r\n\r\nfirst\n.\nMAIL FROM:<evil@probe.test>\r\nRCPT TO:<victim@probe.test>\r\n"
        b"DATA\r\nSubject: smuggled\r\n\r\nsecond\r\n.\r\n"
    )
    got = c.replies()
    c.close()
    return " | ".join(got) or "(no reply)"


def probe_starttls(port: int) -> str:
    c = Raw(port)
    c.send(b"EHLO probe\r\n")
    c.replies()
    c.send(b"STARTTLS\r\nMAIL FROM:<injected@probe.test>\r\n")  # the second line in clear, same packet
    first = c.replies(1.0)
    if not first or not first[0].startswith("220"):
        return f"STARTTLS answered {first}"
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    try:
        c.sock.settimeout(5)
        c.sock = context.wrap_socket(c.sock)
    except (OSError, ssl.SSLError) as exc:
        return f"220, then the handshake failed: {exc}"
    early = c.replies(1.0)  # anything here answers the injected command
    c.send(b"EHLO probe\r\nMAIL FROM:<real@probe.test>\r\n")
    after = c.replies()
    c.close()
    return f"before STARTTLS: {first}; over TLS unasked: {early}; after EHLO + MAIL: {after}"


def probe_long_line(port: int) -> str:
    c = Raw(port)
    c.send(b"EHLO probe\r\n")
    c.replies()
    c.send(b"MAIL FROM:<" + b"a" * 1976 + b"@probe.test>\r\n")  # 2,000 bytes with its CRLF
    got = c.replies()
    c.send(b"NOOP\r\n")
    got += c.replies()
    c.close()
    return "long MAIL, then NOOP: " + " | ".join(got)


def probe_size(port: int) -> str:
    c = Raw(port)
    c.send(b"EHLO probe\r\n")
    c.replies()
    c.send(b"MAIL FROM:<a@probe.test> SIZE=50000000\r\n")
    got = c.replies()
    c.close()
    return f"MAIL SIZE=50000000 (limit 40 MB): {' | '.join(got)}"


PROBES = {
    "bare-LF smuggling (\\n.\\n in DATA)": probe_smuggling,
    "pipelined after STARTTLS": probe_starttls,
    "2,000-byte command line": probe_long_line,
    "SIZE over the limit": probe_size,
}


def probes() -> None:
    for kind in SERVERS:
        server = ServerProcess(kind)
        try:
            print(f"{kind}:")
            for name, probe in PROBES.items():
                try:
                    print(f"  {name}: {probe(server.port)}", flush=True)
                except OSError as exc:
                    print(f"  {name}: {type(exc).__name__}: {exc}", flush=True)
        finally:
            server.stop()


# -- main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", choices=SERVERS, help=argparse.SUPPRESS)  # a child process
    parser.add_argument("--messages", type=int, default=20000, help="count bound per run")
    parser.add_argument("--seconds", type=float, default=60.0, help="time bound per run")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent SMTP sessions")
    parser.add_argument("--runs", type=int, default=3, help="rounds; each server runs once per round")
    parser.add_argument("--no-probes", action="store_true", help="skip the robustness probes")
    args = parser.parse_args()
    if args.serve:
        logging.getLogger("sesame.smtp.tls").setLevel(logging.ERROR)  # the self-signed warning
        asyncio.run(serve(args.serve))
        return

    from importlib.metadata import version

    from smtp import MESSAGE

    print(
        f"aiosmtpd {version('aiosmtpd')}, Python {sys.version.split()[0]}; {len(MESSAGE)}-byte "
        f"messages, {args.sessions} sessions, {args.messages} messages / {args.seconds:g} s per run"
    )
    results: dict[tuple[str, str], list[tuple[int, float, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        message_file = Path(tmp) / "message.eml"
        message_file.write_bytes(MESSAGE.replace(b"\r\n", b"\n"))  # smtp-source adds CRLF to each line
        Path(tmp).chmod(0o755)
        for n in range(args.runs):
            print(f"round {n + 1}", flush=True)
            for kind in SERVERS if n % 2 == 0 else SERVERS[::-1]:
                for row, result in run_server(kind, args, message_file).items():
                    results.setdefault((kind, row), []).append(result)

    print(f"\nMedian of {args.runs} runs")
    print(f"{'server':>9} {'row':>11} {'accepted/s':>10} {'CPU us/msg':>10}   runs (accepted/s)")
    for row in ("reuse", "per-session"):
        for kind in SERVERS:
            runs = results[(kind, row)]
            rates = [a / s for a, s, _ in runs]
            cpus = [c * 1e6 / a for a, _, c in runs if a]
            print(
                f"{kind:>9} {row:>11} {statistics.median(rates):>10.0f} {statistics.median(cpus):>10.0f}   "
                + " ".join(f"{r:.0f}" for r in rates)
            )
    if not args.no_probes:
        print("\nRobustness probes")
        probes()


if __name__ == "__main__":
    main()
