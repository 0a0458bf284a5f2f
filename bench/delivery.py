"""Delivery benchmark: messages accepted through SES v2 SendEmail and delivered over SMTP, against Postfix.

    python bench/delivery.py [--messages 2000] [--database sqlite|postgresql] [--concurrency 16]
                             [--clients 16] [--seconds 300] [--no-postfix] [--drain [--events]]
    python bench/delivery.py --memory|--memory-only [--memory-messages 100000] [--memory-seconds 600]

Sesame: `sesame serve` on a free port with a fresh database. The sender domain is verified for real with
Easy DKIM (2048-bit keys, records published on a DNS server on loopback the server resolves through), so
every message is DKIM-signed on its way out. The account is out of the sandbox with no sending limits. The
transport map (delivery.routes) sends sink.test straight to a local sink. N SendEmail requests (Simple
content, ~2 KB text body, to someone@sink.test) go over --clients keep-alive connections, each one the
same SigV4-signed raw HTTP/1.1 request, built before the clock starts. Delivery (--concurrency messages
at once) runs while the requests are still arriving.

Postfix: a private instance (main.cf, master.cf, queue and data directories in a temp dir; loopback
only; relayhost the same kind of sink; destination concurrency the same as Sesame's, from the first
message; everything else Postfix's defaults, queue files fsynced) takes the same number of messages from
smtp-source over --clients SMTP sessions that each stay open. Each message is the bytes Sesame delivered
(the DKIM-Signature header included, which Postfix passes along unchanged): Postfix signs nothing here.

The sink is Postfix's smtp-sink, a fresh one per side; its running counter (-c) tells when each message
arrived. Before each timed run one probe message goes through each side to a second sink (aiosmtpd)
that keeps it: this warms the path and shows the bytes as delivered (their size; Sesame's signature is
verified with dkimpy against the DNS server). Without smtp-sink (it comes with Postfix) the Sesame side
uses the aiosmtpd sink, which is slower, and the Postfix side is skipped.

    accepted/s   messages accepted / (last accept - start of sending); an accept is a 200 with a MessageId
                 for Sesame, a completed DATA (smtp-source -c) for Postfix
    delivered/s  messages at the sink / (last message at the sink - first accept)

--drain: each side also delivers N messages that were queued before delivery started, which times the
delivery engine alone (no API or SMTP intake competing for the cores). Sesame: a server with delivery
off queues them, then a server with delivery on starts; the clock runs from its "ready" (so its start-up
is included) to the last message at the sink. Postfix: `defer_transports = smtp` holds them in the
deferred queue, then `postqueue -f` releases them; the clock runs from the flush. Sesame's server CPU
ms/msg is the delivering process's user + system time from its "ready" to the last message at the sink
(signing, SMTP, settling and event records), per message; its start-up is left out.

--events (with --drain): a third drain in which the sender's default configuration set publishes every
event record to two destinations: a Firehose stream (JSON-lines files in the data dir) and an SNS topic of
Sesame's own with an HTTP subscription to a receiver on loopback. Reported: its delivered/s against the
drain without destinations (the goal: at most 10% lower), and the records published per second, counted
from the drain's start to the moment none is left waiting.

--drain-only: skip the timed runs (Sesame's and Postfix's) and run only the drains. --profile PATH (with
--drain): py-spy samples the delivering server of the first drain from its "ready" to the last message
at the sink, into PATH (.json speedscope, .txt collapsed stacks, else an SVG flame graph).

--memory (slow, off by default): a separate `sesame serve` with delivery disabled queues up to
--memory-messages through the API, bounded by --memory-seconds, and reports the server process's
VmRSS (/proc/PID/status) before and after and its peak (VmHWM). The target: under 300 MB. The messages
go in by SES v2 SendBulkEmail, 50 destinations a request (SES's most), from a stored template, so that
a million fit in minutes; each destination is a message of its own in the queue, as with SendEmail.

Every loop is bounded in count and in time. Clients, servers and sink share this machine's cores, and
Sesame's client is Python where Postfix's is C, so Sesame's figures are a floor.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dkim
import dns.resolver
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from send import DOMAIN, PATH, REGION, boto_client, exchange, py_spy, text_body  # bench/, beside us

from sesame.testing.databases import temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess, free_port, sesame_cli
from sesame.testing.smtp import SinkServer

SENDER = f"sender@{DOMAIN}"
SINK_DOMAIN = "sink.test"
PROBE_DOMAIN = "probe.test"
RECIPIENT = f"someone@{SINK_DOMAIN}"
DKIM_BITS = 2048
RSS_TARGET_MB = 300
INSTALL = "apt-get install -y postfix"
SBIN = "/usr/sbin"
RESIGN_AFTER = 600.0  # seconds; a SigV4 signature stays valid for 15 minutes
GRACE = 30.0  # seconds past a time bound before a stuck step is abandoned
BULK_PATH = "/v2/email/outbound-bulk-emails"
BULK_ENTRIES = 50  # SES's most destinations in one SendBulkEmail
COUNTER = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)")


def request_body(recipient: str) -> bytes:
    return json.dumps(
        {
            "FromEmailAddress": SENDER,
            "Destination": {"ToAddresses": [recipient]},
            "Content": {"Simple": {"Subject": {"Data": "bench"}, "Body": {"Text": {"Data": text_body()}}}},
        }
    ).encode()


def bulk_request_body() -> bytes:
    """SendBulkEmail to ``BULK_ENTRIES`` recipients of the sink domain, from the template "bench"."""
    entries = [
        {
            "Destination": {"ToAddresses": [f"someone{i}@{SINK_DOMAIN}"]},
            "ReplacementEmailContent": {
                "ReplacementTemplate": {"ReplacementTemplateData": json.dumps({"n": i})}
            },
        }
        for i in range(BULK_ENTRIES)
    ]
    return json.dumps(
        {
            "FromEmailAddress": SENDER,
            "DefaultContent": {"Template": {"TemplateName": "bench", "TemplateData": '{"n": 0}'}},
            "BulkEmailEntries": entries,
        }
    ).encode()


def tool(name: str) -> str | None:
    """A Postfix program, on PATH or in /usr/sbin (which a non-root PATH often lacks)."""
    return shutil.which(name) or shutil.which(name, path=SBIN)


def wait_listening(port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
        time.sleep(0.05)
    return False


def stop_process(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)


# -- sinks ---------------------------------------------------------------------------------------------


class CounterReader(threading.Thread):
    """Reads a program's running counter ("...\\r" updates) and notes when each increment was read."""

    def __init__(self, stream: Any, parse: Callable[[bytes], tuple[int, int] | None]) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.parse = parse
        self.changed = threading.Condition()
        self.count = 0
        self.sessions = 0
        self.times: list[float] = []  # perf_counter when message i + 1 was counted

    def run(self) -> None:
        pending = b""
        while True:  # ends at EOF, when the program exits
            chunk = self.stream.read1(65536)
            if not chunk:
                return
            now = time.perf_counter()
            *updates, pending = (pending + chunk).replace(b"\n", b"\r").split(b"\r")
            parsed = [p for p in map(self.parse, updates) if p is not None]
            if not parsed:
                continue
            with self.changed:
                count, self.sessions = parsed[-1]
                if count > self.count:
                    self.times += [now] * (count - self.count)
                    self.count = count
                self.changed.notify_all()

    def wait_for(self, n: int, timeout: float) -> float | None:
        """When the nth message was counted, or None if it was not within ``timeout`` seconds."""
        with self.changed:
            if not self.changed.wait_for(lambda: self.count >= n, max(0.0, timeout)):
                return None
            return self.times[n - 1]


class SmtpSink:
    """Postfix's smtp-sink on a free loopback port, counting (-c) the messages it throws away."""

    name = "smtp-sink"

    def __init__(self, program: str) -> None:
        self.port = free_port()
        cmd = [program, "-c"] + (["-u", "nobody"] if os.geteuid() == 0 else [])
        self.proc = subprocess.Popen(
            [*cmd, f"127.0.0.1:{self.port}", "256"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

        def parse(update: bytes) -> tuple[int, int] | None:
            m = COUNTER.search(update)
            return (int(m[2]), int(m[1])) if m else None

        self.counter = CounterReader(self.proc.stdout, parse)
        self.counter.start()
        if not wait_listening(self.port, 10, lambda: self.proc.poll() is None):
            stop_process(self.proc)
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
            raise RuntimeError(f"smtp-sink did not start: {err.strip()}")

    def count(self) -> int:
        return self.counter.count

    def sessions(self) -> int:
        return max(0, self.counter.sessions - 1)  # not the connection that saw it listening

    def wait_for(self, n: int, timeout: float) -> float | None:
        return self.counter.wait_for(n, timeout)

    def close(self) -> None:
        stop_process(self.proc)
        self.counter.join(5)


class PythonSink:
    """Fallback when smtp-sink is missing: the project's aiosmtpd sink (slower; keeps every message)."""

    name = "aiosmtpd sink"

    def __init__(self) -> None:
        self.server = SinkServer("127.0.0.1", hostname=SINK_DOMAIN).start()
        self.port = self.server.port

    def count(self) -> int:
        return len(self.server.messages)

    def sessions(self) -> int:
        return self.server.connections

    def wait_for(self, n: int, timeout: float) -> float | None:
        try:
            self.server.wait_for(n, timeout)
        except TimeoutError:
            return None
        return time.perf_counter()  # just after it was told: close enough to the arrival

    def close(self) -> None:
        self.server.stop()


@contextlib.contextmanager
def sink() -> Iterator[SmtpSink | PythonSink]:
    program = tool("smtp-sink")
    s: SmtpSink | PythonSink = SmtpSink(program) if program else PythonSink()
    try:
        yield s
    finally:
        s.close()


# -- the HTTP client (as in bench/send.py: raw asyncio over keep-alive sockets, pre-signed request) ------


class Signer:
    """The whole HTTP/1.1 request, SigV4-signed once and again only when the signature is getting old."""

    def __init__(self, endpoint: str, key: str, secret: str, body: bytes, path: str = PATH) -> None:
        self.endpoint, self.key, self.secret, self.body, self.path = endpoint, key, secret, body, path
        self.signed_at = -float("inf")  # monotonic time starts near 0 on a freshly booted machine
        self.request = b""
        self.current()

    def current(self) -> bytes:
        if time.monotonic() - self.signed_at > RESIGN_AFTER:
            headers = {"Content-Type": "application/json"}
            req = AWSRequest("POST", f"{self.endpoint}{self.path}", data=self.body, headers=headers)
            SigV4Auth(Credentials(self.key, self.secret), "ses", REGION).add_auth(req)
            hostport = self.endpoint.removeprefix("http://")
            lines = [f"POST {self.path} HTTP/1.1", f"Host: {hostport}", f"Content-Length: {len(self.body)}"]
            lines += [
                f"{k}: {v}" for k, v in req.headers.items() if k.lower() not in ("host", "content-length")
            ]
            self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body
            self.signed_at = time.monotonic()
        return self.request


async def inject(
    endpoint: str,
    signer: Signer,
    n: int,
    clients: int,
    seconds: float,
    progress: float = 0.0,
    note: Callable[[], str] = str,
    per_request: int = 1,
) -> dict[str, Any]:
    """Send requests over ``clients`` connections until ``n`` messages are accepted, for at most
    ``seconds``. A request accepts as many messages as its answer has MessageIds (SendBulkEmail: one per
    destination).

    With ``progress`` > 0, prints a line that often, ending with ``note()`` (the memory run is long).
    """
    host, port = endpoint.removeprefix("http://").split(":")
    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = [
        await asyncio.open_connection(host, int(port)) for _ in range(clients)
    ]
    issued = accepted = errors = 0
    first_error = ""
    first_accept = last_accept = 0.0
    start = time.perf_counter()
    deadline = start + seconds

    async def worker(i: int) -> None:
        nonlocal issued, accepted, errors, first_error, first_accept, last_accept
        while issued < n and time.perf_counter() < deadline:
            issued += per_request
            conn = conns[i]
            try:
                if conn is None:
                    conn = conns[i] = await asyncio.open_connection(host, int(port))
                status, body, keep_alive = await exchange(*conn, signer.current())
                if not keep_alive:
                    conn[1].close()
                    conns[i] = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                status, body = 0, f"{type(exc).__name__}: {exc}".encode()
                if conn is not None:
                    conn[1].close()
                conns[i] = None
                await asyncio.sleep(0.01)  # a refused connection must not spin
            if status == 200 and b"MessageId" in body:
                last_accept = time.perf_counter()
                first_accept = first_accept or last_accept
                accepted += body.count(b'"MessageId"')
            else:
                errors += 1
                if not first_error:
                    first_error = f"HTTP {status}: {body[:500].decode(errors='replace')}"
                    print(f"  first error: {first_error}", flush=True)

    async def report() -> None:
        for _ in range(int(seconds / progress) + 1):
            await asyncio.sleep(progress)
            print(f"  {time.perf_counter() - start:6.0f} s: {accepted} accepted {note()}", flush=True)

    reporter = asyncio.create_task(report()) if progress > 0 else None
    stuck = False
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(i) for i in range(clients))), seconds + GRACE)
    except TimeoutError:
        stuck = True
    if reporter is not None:
        reporter.cancel()
    for conn in conns:
        if conn is not None:
            conn[1].close()
    return {
        "accepted": accepted,
        "errors": errors,
        "start": start,
        "first_accept": first_accept,
        "last_accept": last_accept,
        "stuck": stuck,
    }


# -- Sesame ------------------------------------------------------------------------------------------------


def dns_txt(dns_server: DnsServer) -> Callable[..., bytes]:
    """dkimpy's DNS hook, asking the benchmark's DNS server."""
    host, port = dns_server.address.split(":")
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [host]
    resolver.port = int(port)

    def lookup(name: bytes, timeout: int = 5) -> bytes:
        answer = resolver.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
        return b"".join(b"".join(r.strings) for r in answer)

    return lookup


def set_up_sender(sesame: SesameProcess, dns_server: DnsServer, data_dir: Path, url: str) -> dict | None:
    """A production account without limits and a verified, DKIM-enabled sender domain."""
    account = json.loads(sesame_cli("accounts", "create", "bench", data_dir=data_dir, database=url))
    account_id = account["AccountId"]
    sesame_cli(
        "accounts", "update", account_id, "--production", "--max-send-rate=-1", "--max-24-hour-send=-1",
        data_dir=data_dir, database=url,
    )  # fmt: skip
    v2 = boto_client("sesv2", sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"])
    v2.create_email_identity(EmailIdentity=DOMAIN)
    records = sesame_cli(
        "identities", "records", DOMAIN, "--account", account_id, data_dir=data_dir, database=url
    )
    dns_server.add_zone_lines(records)
    status = dkim_status = ""
    for _ in range(20):  # bounded: 20 lookups, about 10 s at most
        got = v2.get_email_identity(EmailIdentity=DOMAIN)
        status, dkim_status = got["VerificationStatus"], got.get("DkimAttributes", {}).get("Status", "")
        if status == "SUCCESS" and dkim_status == "SUCCESS":
            return {**account, "v2": v2}
        time.sleep(0.5)
    print(f"  {DOMAIN} not ready: VerificationStatus {status}, DkimAttributes.Status {dkim_status}")
    return None


def sesame_env(dns_server: DnsServer, concurrency: int, routes: str, delivery: bool) -> dict[str, str]:
    return {
        "SESAME_DNS__NAMESERVERS": dns_server.address,
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": str(DKIM_BITS),
        "SESAME_DELIVERY__ENABLED": "true" if delivery else "false",
        "SESAME_DELIVERY__ROUTES": routes,
        "SESAME_DELIVERY__POLL_INTERVAL": "0.2",
        "SESAME_DELIVERY__CONCURRENCY": str(concurrency),
        "SESAME_DELIVERY__HELO_NAME": "sesame.bench.test",
    }


def bench_sesame(args: argparse.Namespace) -> tuple[dict | None, bytes | None]:
    """The timed run; returns (result, the probe message as delivered)."""
    name = f"sesame-{args.database}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_database(args.database, Path(tmp)) as url,
        DnsServer() as dns_server,
        SinkServer("127.0.0.1", hostname=PROBE_DOMAIN) as probe_sink,
        sink() as the_sink,
    ):
        routes = f"{SINK_DOMAIN}=127.0.0.1:{the_sink.port},{PROBE_DOMAIN}=127.0.0.1:{probe_sink.port}"
        env = sesame_env(dns_server, args.concurrency, routes, delivery=True)
        data_dir = Path(tmp) / "data"
        with SesameProcess("serve", data_dir=data_dir, database=url, env=env, args=workers(args)) as sesame:
            account = set_up_sender(sesame, dns_server, data_dir, url)
            if account is None:
                return None, None
            account["v2"].send_email(
                FromEmailAddress=SENDER,
                Destination={"ToAddresses": [f"someone@{PROBE_DOMAIN}"]},
                Content={"Simple": {"Subject": {"Data": "bench"}, "Body": {"Text": {"Data": text_body()}}}},
            )
            try:
                [probe] = probe_sink.wait_for(1, 30)
            except TimeoutError:
                print(f"{name}: the probe message was not delivered within 30 s; skipped")
                print("\n".join(sesame.stderr_lines[-20:]))
                return None, None
            signed = probe.data.startswith(b"DKIM-Signature:")
            verified = signed and dkim.verify(probe.data, dnsfunc=dns_txt(dns_server))
            dkim_note = "verifies" if verified else "DOES NOT verify" if signed else "MISSING"
            print(f"{name}: probe delivered, {len(probe.data)} bytes, DKIM-Signature {dkim_note}; "
                  f"sink: {the_sink.name}", flush=True)  # fmt: skip
            signer = Signer(
                sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"], request_body(RECIPIENT)
            )
            assert sesame.proc is not None
            cpu_before = sesame.cpu_seconds()
            sent = asyncio.run(inject(sesame.endpoint, signer, args.messages, args.clients, args.seconds))
            n = sent["accepted"]
            left = args.seconds + GRACE - (time.perf_counter() - sent["start"])
            last = the_sink.wait_for(n, left) if n else None
            delivered = the_sink.count()
            cpu = sesame.cpu_seconds() - cpu_before
            wall = (last or time.perf_counter()) - sent["start"]
            print(f"{name}: the server used {cpu:.1f} s of CPU in {wall:.1f} s from the first request to the "
                  f"last delivery ({cpu / wall:.0%} of one core)", flush=True)  # fmt: skip
            if last is None:
                print(f"{name}: only {delivered} of {n} accepted messages reached the sink in time")
                print("\n".join(sesame.stderr_lines[-20:]))
        time.sleep(0.2)  # the server is gone: its last sessions are counted
        return {
            "name": name,
            "signed": verified,
            "bytes": len(probe.data),
            "accepted": n,
            "errors": sent["errors"],
            "delivered": delivered,
            "sessions": the_sink.sessions(),
            "accepted_s": n / (sent["last_accept"] - sent["start"]) if n else 0.0,
            "delivered_s": n / (last - sent["first_accept"]) if last else float("nan"),
            "span": (last or time.perf_counter()) - sent["first_accept"] if n else float("nan"),
            "lag": last - sent["last_accept"] if last else float("nan"),
            "stuck": sent["stuck"],
        }, probe.data


def workers(args: argparse.Namespace) -> list[str]:
    return ["--workers", str(args.workers)] if args.workers > 1 else []


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm(pid: int, field: str) -> float:
    """A /proc/PID/status field (VmRSS, VmHWM) in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class SnsReceiver:
    """An HTTP endpoint subscribed to an SNS topic: confirms the subscription (GET SubscribeURL) and
    counts the notifications that reach it."""

    def __init__(self) -> None:
        import http.server

        receiver = self
        self.notifications = 0

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(200)
                self.end_headers()
                if body.get("Type") == "SubscriptionConfirmation":
                    threading.Thread(target=urllib_get, args=(body["SubscribeURL"],), daemon=True).start()
                elif body.get("Type") == "Notification":
                    receiver.notifications += 1

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/sns"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def urllib_get(url: str) -> None:
    import urllib.request

    with urllib.request.urlopen(url, timeout=10) as resp:
        resp.read()


def add_event_destinations(sesame: SesameProcess, account: dict, receiver: SnsReceiver | None) -> list[str]:
    """A configuration set, the sender's default, with a Firehose destination (files in the data dir, no
    AWS endpoint) and, when Sesame serves SNS, an SNS topic with an HTTP subscription; what was set up."""
    v2 = account["v2"]
    v2.create_configuration_set(ConfigurationSetName="events")
    every = ["SEND", "DELIVERY", "BOUNCE", "COMPLAINT", "DELIVERY_DELAY", "REJECT", "RENDERING_FAILURE"]
    stream = f"arn:aws:firehose:{REGION}:{account['AccountId']}:deliverystream/bench"
    role = f"arn:aws:iam::{account['AccountId']}:role/firehose"
    v2.create_configuration_set_event_destination(
        ConfigurationSetName="events",
        EventDestinationName="files",
        EventDestination={"Enabled": True, "MatchingEventTypes": every,
                          "KinesisFirehoseDestination": {"IamRoleArn": role, "DeliveryStreamArn": stream}},
    )  # fmt: skip
    made = ["firehose files"]
    if receiver is not None:
        sns = boto_client("sns", sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"])
        try:
            topic = sns.create_topic(Name="bench-events")["TopicArn"]
        except Exception as exc:  # an older Sesame without its own SNS
            print(f"  no SNS destination: {exc}")
        else:
            sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=receiver.url)
            v2.create_configuration_set_event_destination(
                ConfigurationSetName="events",
                EventDestinationName="sns",
                EventDestination={"Enabled": True, "MatchingEventTypes": every,
                                  "SnsDestination": {"TopicArn": topic}},
            )  # fmt: skip
            made.append("SNS http subscription")
    v2.put_email_identity_configuration_set_attributes(EmailIdentity=DOMAIN, ConfigurationSetName="events")
    return made


def publications(sesame: SesameProcess, data_dir: Path) -> dict[str, int]:
    """Publications by state, and records not yet dispatched, from the server's admin API."""
    import urllib.request

    from sesame.domain.secrets import admin_token

    req = urllib.request.Request(
        f"{sesame.endpoint}/_sesame/admin/events",
        headers={"Authorization": f"Bearer {admin_token(data_dir)}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        found = json.loads(resp.read())
    out = {"undispatched": found["Undispatched"]}
    for row in found["Counts"]:
        out[row["State"]] = out.get(row["State"], 0) + row["Count"]
    return out


def drain_sesame(args: argparse.Namespace, events: bool = False) -> dict | None:
    """The delivery engine alone: N messages queued by a server with delivery off, then a server with
    delivery on starts; the clock runs from its "ready" to the last message at the sink. With ``events``,
    the sender's configuration set publishes every event to two destinations meanwhile."""
    receiver = SnsReceiver() if events else None
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_database(args.database, Path(tmp)) as url,
        DnsServer() as dns_server,
        sink() as the_sink,
        contextlib.closing(receiver) if receiver else contextlib.nullcontext(),
    ):
        routes = f"{SINK_DOMAIN}=127.0.0.1:{the_sink.port}"
        data_dir = Path(tmp) / "data"
        env = sesame_env(dns_server, args.concurrency, routes, delivery=False)
        with SesameProcess("serve", data_dir=data_dir, database=url, env=env, args=workers(args)) as sesame:
            account = set_up_sender(sesame, dns_server, data_dir, url)
            if account is None:
                return None
            made = add_event_destinations(sesame, account, receiver) if events else []
            signer = Signer(
                sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"], request_body(RECIPIENT)
            )
            n = asyncio.run(inject(sesame.endpoint, signer, args.messages, args.clients, args.seconds))[
                "accepted"
            ]
        env = sesame_env(dns_server, args.concurrency, routes, delivery=True)
        with SesameProcess("serve", data_dir=data_dir, database=url, env=env, args=workers(args)) as sesame:
            start = time.perf_counter()
            assert sesame.proc is not None
            # From "ready": the process's start-up (imports, migrations check) is not a message's cost.
            cpu_start = sesame.cpu_seconds()
            spy = py_spy(sesame.proc.pid, args.seconds, args.profile) if args.profile and not events else None
            last = the_sink.wait_for(n, args.seconds) if n else None
            cpu = sesame.cpu_seconds() - cpu_start
            if spy is not None:  # py-spy writes its output when interrupted
                spy.send_signal(signal.SIGINT)
                try:
                    spy.wait(30)
                    print(f"  profile written to {args.profile}", flush=True)
                except subprocess.TimeoutExpired:
                    spy.kill()
            result = {"name": f"sesame-{args.database}" + (" + events" if events else ""), "queued": n,
                      "delivered": the_sink.count(),
                      "delivered_s": n / (last - start) if last else float("nan"),
                      "cpu_ms": cpu / n * 1000 if n else float("nan")}  # fmt: skip
            if events:
                # Every record published: the Send records of intake and the Delivery records of the drain.
                deadline = time.perf_counter() + args.seconds
                while (found := publications(sesame, data_dir)).get("pending") or found["undispatched"]:
                    if time.perf_counter() > deadline:
                        break
                    time.sleep(0.1)
                done = time.perf_counter()
                result.update(destinations=", ".join(made), published=found.get("published", 0),
                              failed=found.get("failed", 0), pending=found.get("pending", 0),
                              published_s=found.get("published", 0) / (done - start),
                              sns_received=receiver.notifications if receiver else 0)  # fmt: skip
        return result


def bench_memory(args: argparse.Namespace) -> dict | None:
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_database(args.database, Path(tmp)) as url,
        DnsServer() as dns_server,
    ):
        env = sesame_env(dns_server, args.concurrency, f"{SINK_DOMAIN}=127.0.0.1:9", delivery=False)
        data_dir = Path(tmp) / "data"
        with SesameProcess("serve", data_dir=data_dir, database=url, env=env, args=workers(args)) as sesame:
            assert sesame.proc is not None
            pid = sesame.proc.pid
            account = set_up_sender(sesame, dns_server, data_dir, url)
            if account is None:
                return None
            before = vm(pid, "VmRSS")
            print(f"memory: sesame serve (pid {pid}, delivery disabled) VmRSS {before:.1f} MB; queueing "
                  f"up to {args.memory_messages} messages for at most {args.memory_seconds:g} s",
                  flush=True)  # fmt: skip
            key, secret = account["AccessKeyId"], account["SecretAccessKey"]
            boto_client("sesv2", sesame.endpoint, key, secret).create_email_template(
                TemplateName="bench",
                TemplateContent={"Subject": "bench {{n}}", "Text": text_body() + "\n{{n}}\n"},
            )
            signer = Signer(sesame.endpoint, key, secret, bulk_request_body(), path=BULK_PATH)
            sent = asyncio.run(
                inject(
                    sesame.endpoint,
                    signer,
                    args.memory_messages,
                    args.clients,
                    args.memory_seconds,
                    progress=30,
                    note=lambda: f"(VmRSS {vm(pid, 'VmRSS'):.1f} MB)",
                    per_request=BULK_ENTRIES,
                )
            )
            return {
                "queued": sent["accepted"],
                "errors": sent["errors"],
                "seconds": (sent["last_accept"] or time.perf_counter()) - sent["start"],
                "before": before,
                "after": vm(pid, "VmRSS"),
                "peak": vm(pid, "VmHWM"),
                "stuck": sent["stuck"],
            }


# -- Postfix -----------------------------------------------------------------------------------------------


def run_postfix_command(cmd: list[str], timeout: float = 60.0) -> tuple[int, str]:
    """Postfix's commands print their errors only to a terminal (else to syslog, which may be missing):
    run one with a pseudo-terminal as its stdout and stderr and return (exit status, what it printed)."""
    try:
        master_fd, slave_fd = pty.openpty()
    except OSError:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stdout + done.stderr
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=slave_fd, stderr=slave_fd)
    os.close(slave_fd)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            exited = proc.poll() is not None
            ready, _, _ = select.select([master_fd], [], [], 0.05 if exited else 0.2)
            if not ready:
                if exited:
                    break
                continue
            try:
                data = os.read(master_fd, 4096)
            except OSError:  # EIO: nobody holds the terminal any more
                break
            if not data or len(out) > 1_000_000:
                break
            out += data
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
    finally:
        os.close(master_fd)
    return proc.returncode, out.decode(errors="replace").replace("\r\n", "\n").strip()


SERVICES = """\
pickup unix n - n 60 1 pickup
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
smtp unix - - n - - smtp
relay unix - - n - - smtp
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""


class PrivatePostfix:
    """A Postfix instance of its own in ``root``: nothing outside it is read or written but the programs.
    Its smtpd listens on 127.0.0.1:``port`` and takes mail from loopback; ``settings`` are the main.cf
    lines of the benchmark's own (where mail goes, or that it is held)."""

    def __init__(self, root: Path, port: int, settings: dict[str, str]) -> None:
        self.root = root
        self.port = port
        self.config = root / "etc"
        self.maillog = root / "maillog"
        self.spool = spool = root / "spool"
        data = root / "data"
        for d in (self.config, spool, data):
            d.mkdir(parents=True)
        for d in (root, root.parent):  # Postfix's daemons, running as postfix, go through them
            d.chmod(0o755)
        shutil.chown(data, "postfix")
        main_cf = {
            "compatibility_level": "3.6",
            "myhostname": "postfix.bench.test",
            "mydestination": "",
            "relay_domains": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "loopback-only",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            **settings,
            "queue_directory": str(spool),
            "data_directory": str(data),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(root),
            "biff": "no",
        }
        (self.config / "main.cf").write_text("".join(f"{k} = {v}\n" for k, v in main_cf.items()))
        (self.config / "master.cf").write_text(f"127.0.0.1:{port} inet n - n - - smtpd\n" + SERVICES)

    def start(self) -> None:
        rc, out = run_postfix_command([tool("postfix") or "postfix", "-c", str(self.config), "start"])
        if rc != 0:
            raise RuntimeError(f"postfix start exited with {rc}:\n{out}\n{self.log_tail()}")
        if not wait_listening(self.port, 30):
            raise RuntimeError(
                f"postfix's smtpd is not listening on 127.0.0.1:{self.port}\n{self.log_tail()}"
            )

    def stop(self) -> None:
        rc, out = run_postfix_command([tool("postfix") or "postfix", "-c", str(self.config), "stop"])
        if rc != 0:
            print(f"postfix: stop exited with {rc}: {out}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.maillog.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no maillog)"


def postfix_missing() -> str | None:
    """Why a private Postfix instance cannot run here, or None."""
    missing = [p for p in ("postfix", "smtp-source", "smtp-sink") if tool(p) is None]
    if missing:
        return f"{', '.join(missing)} not found; install them with: {INSTALL}"
    if os.geteuid() != 0:
        return "a private Postfix instance needs root (its daemons run as the postfix user)"
    return None


def smtp_source(port: int, message: Path, n: int, clients: int, recipient: str) -> subprocess.Popen[bytes]:
    cmd = [tool("smtp-source") or "smtp-source", "-c", "-d", "-s", str(clients), "-m", str(n)]
    cmd += ["-F", str(message), "-f", SENDER, "-t", recipient, f"127.0.0.1:{port}"]
    return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def bench_postfix(args: argparse.Namespace, message: bytes) -> dict | None:
    if why := postfix_missing():
        print(f"postfix: skipped: {why}")
        return None
    rc, version = run_postfix_command([tool("postconf") or "postconf", "-d", "-h", "mail_version"], 10)
    with (
        tempfile.TemporaryDirectory() as tmp,
        SinkServer("127.0.0.1", hostname=PROBE_DOMAIN) as probe_sink,
        sink() as the_sink,
    ):
        concurrency = str(args.concurrency)
        relaying = {
            "relayhost": f"[127.0.0.1]:{the_sink.port}",
            "transport_maps": f"inline:{{ {PROBE_DOMAIN}=smtp:[127.0.0.1]:{probe_sink.port} }}",
            "default_destination_concurrency_limit": concurrency,
            "initial_destination_concurrency": concurrency,
        }
        instance = PrivatePostfix(Path(tmp) / "postfix", free_port(), relaying)
        # smtp-source sends the file as it is, adding CRLF to each line and stuffing dots.
        message_file = Path(tmp) / "message.eml"
        message_file.write_bytes(message.replace(b"\r\n", b"\n"))
        try:
            instance.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"postfix: a private instance could not run here, so no Postfix figures:\n{exc}")
            instance.stop()
            return None
        try:
            print(f"postfix {version if rc == 0 else '(version unknown)'}: private instance on "
                  f"127.0.0.1:{instance.port}, relayhost [127.0.0.1]:{the_sink.port}",
                  flush=True)  # fmt: skip
            probe_proc = smtp_source(instance.port, message_file, 1, 1, f"someone@{PROBE_DOMAIN}")
            try:
                probe_proc.wait(30)
                [probe] = probe_sink.wait_for(1, 30)
            except (TimeoutError, subprocess.TimeoutExpired):
                stop_process(probe_proc)
                print(f"postfix: the probe message was not relayed within 30 s; no Postfix figures\n"
                      f"{instance.log_tail()}")  # fmt: skip
                return None
            print(f"postfix: probe relayed, {len(probe.data)} bytes (Received: added); no DKIM signing",
                  flush=True)  # fmt: skip

            start = time.perf_counter()
            source = smtp_source(instance.port, message_file, args.messages, args.clients, RECIPIENT)
            accepts = CounterReader(source.stdout, lambda u: (int(u), 0) if u.strip().isdigit() else None)
            accepts.start()
            try:
                source.wait(args.seconds)
            except subprocess.TimeoutExpired:
                print(f"postfix: smtp-source still running after {args.seconds:g} s; stopped")
                stop_process(source)
            accepts.join(5)
            if source.returncode != 0 and source.stderr is not None:
                print(f"postfix: smtp-source exited with {source.returncode}: "
                      f"{source.stderr.read(2000).decode(errors='replace').strip()}")  # fmt: skip
            n = accepts.count
            first_accept = accepts.times[0] if n else start
            left = args.seconds + GRACE - (time.perf_counter() - start)
            last = the_sink.wait_for(n, left) if n else None
            delivered = the_sink.count()
            if last is None:
                print(f"postfix: only {delivered} of {n} accepted messages reached the sink in time\n"
                      f"{instance.log_tail()}")  # fmt: skip
            drained = drain_postfix(args, instance, message_file, the_sink) if args.drain else None
        finally:
            instance.stop()
        time.sleep(0.2)  # cached sessions are closed by the stop: now they are counted
        return {
            "name": "postfix",
            "signed": False,
            "bytes": len(probe.data),
            "accepted": n,
            "errors": args.messages - n,
            "delivered": delivered,
            "sessions": the_sink.sessions(),
            "accepted_s": n / (accepts.times[-1] - start) if n else 0.0,
            "delivered_s": n / (last - first_accept) if last else float("nan"),
            "span": (last or time.perf_counter()) - first_accept if n else float("nan"),
            "lag": last - accepts.times[-1] if last else float("nan"),
            "stuck": False,
            "drain": drained,
        }


def drain_postfix(
    args: argparse.Namespace, instance: PrivatePostfix, message_file: Path, the_sink: SmtpSink | PythonSink
) -> dict | None:
    """Postfix's queue manager and smtp clients alone: with ``defer_transports = smtp`` the messages
    wait in the queue; ``postqueue -f`` then sends them all, and the clock runs from there."""
    postconf, postfix = tool("postconf") or "postconf", tool("postfix") or "postfix"
    conf = ["-c", str(instance.config)]
    run_postfix_command([postconf, *conf, "-e", "defer_transports = smtp"])
    run_postfix_command([postfix, *conf, "reload"])
    time.sleep(1.0)  # the reload is asynchronous
    before = the_sink.count()
    source = smtp_source(instance.port, message_file, args.messages, args.clients, RECIPIENT)
    try:
        source.wait(args.seconds)
    except subprocess.TimeoutExpired:
        stop_process(source)
    deferred = spool_count(instance.spool / "deferred")
    for _ in range(int(args.seconds * 10)):  # until every message has reached the deferred queue
        if deferred >= args.messages:
            break
        time.sleep(0.1)
        deferred = spool_count(instance.spool / "deferred")
    start = time.perf_counter()
    run_postfix_command([tool("postqueue") or "postqueue", *conf, "-f"])
    last = the_sink.wait_for(before + deferred, args.seconds) if deferred else None
    return {"name": "postfix", "queued": deferred, "delivered": the_sink.count() - before,
            "delivered_s": deferred / (last - start) if last else float("nan"),
            "cpu_ms": float("nan")}  # fmt: skip


def spool_count(directory: Path) -> int:
    """Queue files under a Postfix queue directory (hashed into subdirectories)."""
    return sum(1 for f in directory.rglob("*") if f.is_file()) if directory.exists() else 0


# -- main --------------------------------------------------------------------------------------------------


def report_memory(args: argparse.Namespace) -> None:
    m = bench_memory(args)
    if m is None:
        print("memory: no figures")
    else:
        short = m["queued"] < args.memory_messages
        print(f"memory: queued {m['queued']} of {args.memory_messages} in {m['seconds']:.0f} s "
              f"({m['queued'] / m['seconds']:.0f}/s, {m['errors']} errors)"
              + (" - time ran out" if short else ""))  # fmt: skip
        print(f"{'VmRSS before':>13} {'VmRSS after':>12} {'VmHWM (peak)':>13}")
        print(f"{m['before']:>10.1f} MB {m['after']:>9.1f} MB {m['peak']:>10.1f} MB")
        met = m["peak"] < RSS_TARGET_MB
        print(f"  goal: RSS under {RSS_TARGET_MB} MB with {m['queued']} queued: "
              f"{'met' if met else 'NOT met'} (peak {m['peak']:.1f} MB)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=2000, help="messages per side")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=16,
                        help="deliveries at once: Sesame's delivery.concurrency, Postfix's destination "
                        "concurrency limit")  # fmt: skip
    parser.add_argument("--clients", type=int, default=16,
                        help="connections sending (HTTP to Sesame, SMTP sessions to Postfix)")  # fmt: skip
    parser.add_argument(
        "--seconds", type=float, default=300.0, help="time bound per side (sending + delivery)"
    )
    parser.add_argument("--no-postfix", action="store_true", help="Sesame only")
    parser.add_argument("--workers", type=int, default=1, help="sesame serve --workers")
    parser.add_argument(
        "--events",
        action="store_true",
        help="with --drain: also a drain publishing every event to two destinations",
    )
    parser.add_argument("--drain", action="store_true",
                        help="also time each side delivering N messages already queued")  # fmt: skip
    parser.add_argument("--drain-only", action="store_true", help="only the drains (implies --drain)")
    parser.add_argument("--profile", default="", metavar="PATH",
                        help="with --drain: py-spy the first Sesame drain into PATH")  # fmt: skip
    parser.add_argument("--memory", action="store_true", help="also the (slow) queue-memory run")
    parser.add_argument("--memory-only", action="store_true", help="only the queue-memory run")
    parser.add_argument("--memory-messages", type=int, default=100_000)
    parser.add_argument("--memory-seconds", type=float, default=600.0)
    args = parser.parse_args()
    if min(args.messages, args.concurrency, args.clients, args.memory_messages) < 1:
        parser.error("--messages, --concurrency, --clients and --memory-messages must be at least 1")

    if args.memory_only:
        report_memory(args)
        return
    if tool("smtp-sink") is None:
        print(f"smtp-sink not found (install it with: {INSTALL}); Sesame delivers to an aiosmtpd sink "
              "instead, and Postfix is skipped")  # fmt: skip
    print(f"{args.messages} messages per side, ~2 KB text body to {RECIPIENT}; delivery concurrency "
          f"{args.concurrency}, {args.clients} sending connections; {os.cpu_count()} cores shared by all",
          flush=True)  # fmt: skip
    args.drain = args.drain or args.drain_only
    results = []
    sesame, message = bench_sesame(args) if not args.drain_only else (None, None)
    if sesame is not None:
        results.append(sesame)
    print(flush=True)
    if args.drain_only:
        pass
    elif message is not None and not args.no_postfix:
        postfix = bench_postfix(args, message)
        if postfix is not None:
            results.append(postfix)
        print(flush=True)
    elif not args.no_postfix:
        print("postfix: skipped (no Sesame message to relay)")

    if args.drain_only:
        pass
    elif results:
        print(f"{'target':>17} {'DKIM':>5} {'msg bytes':>9} {'accepted':>8} {'delivered':>9} {'sessions':>8} "
              f"{'accepted/s':>10} {'delivered/s':>11} {'span s':>7} {'lag s':>6}")  # fmt: skip
        for r in results:
            print(
                f"{r['name']:>17} {'yes' if r['signed'] else 'no':>5} {r['bytes']:>9} {r['accepted']:>8} "
                f"{r['delivered']:>9} {r['sessions']:>8} {r['accepted_s']:>10.0f} {r['delivered_s']:>11.0f} "
                f"{r['span']:>7.2f} {r['lag']:>6.2f}"
                + ("  (sending abandoned as stuck)" if r["stuck"] else "")
            )
        print("  sessions: SMTP sessions the sink saw; span: first accept to last message at the sink; "
              "lag: last accept to last message at the sink")  # fmt: skip
        by_name = {r["name"]: r for r in results}
        print(
            f"  DKIM: Sesame signs every message (RSA {DKIM_BITS})"
            + ("; Postfix relays Sesame's signed bytes and signs nothing" if "postfix" in by_name else "")
        )
        if sesame is not None and "postfix" in by_name:
            p = by_name["postfix"]
            for key, label in (("accepted_s", "accepted/s"), ("delivered_s", "delivered/s")):
                ratio = sesame[key] / p[key] if p[key] and p[key] == p[key] else float("nan")
                print(f"{sesame['name']} / postfix, {label}: {ratio:.2f}x")
    else:
        print("no figures")

    if args.drain:
        print(flush=True)
        drains = [drain_sesame(args)] + [r.get("drain") for r in results if r["name"] == "postfix"]
        if args.events:
            drains.insert(1, drain_sesame(args, events=True))
        print(
            f"drain: {args.messages} messages queued first, then delivered (concurrency {args.concurrency})"
        )
        print(f"{'target':>17} {'queued':>7} {'delivered':>9} {'delivered/s':>11} {'server CPU ms/msg':>17}")
        for d in drains:
            if d is not None:
                print(f"{d['name']:>17} {d['queued']:>7} {d['delivered']:>9} {d['delivered_s']:>11.0f} "
                      f"{d['cpu_ms']:>17.2f}")  # fmt: skip
        postfix = [d for d in drains if d and d["name"] == "postfix"]
        if drains[0] and postfix and postfix[0]["delivered_s"]:
            print(f"{drains[0]['name']} / postfix, drain delivered/s: "
                  f"{drains[0]['delivered_s'] / postfix[0]['delivered_s']:.2f}x")  # fmt: skip
        with_events = [d for d in drains if d and "published" in d]
        if drains[0] and with_events:
            e = with_events[0]
            print(f"with event destinations ({e['destinations']}): delivered/s "
                  f"{e['delivered_s'] / drains[0]['delivered_s']:.2f}x the run without; {e['published']} "
                  f"records published ({e['published_s']:.0f}/s from the drain's start), "
                  f"{e['failed']} failed, {e['pending']} still pending; "
                  f"the SNS receiver got {e['sns_received']}")  # fmt: skip

    if args.memory:
        print(flush=True)
        report_memory(args)


if __name__ == "__main__":
    main()
