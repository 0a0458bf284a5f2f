"""Send benchmark: SES v2 SendEmail (Simple content, ~2 KB text body) accepted per second, durably.

    python bench/send.py [--targets sqlite,postgresql,moto] [--seconds 5] [--max-requests 20000]
                         [--concurrency 8,32] [--tracking]

For each target it keeps that many requests in flight over keep-alive connections and reports accepted
sends per second, p50/p99 latency and (Sesame targets) the server's CPU time per accepted send (user +
system from /proc/PID/stat over the level; steadier than the rate on shared cores):

* sesame-sqlite, sesame-postgresql: `sesame serve` on a free port with a fresh database. The sender
  domain is verified for real: its DKIM records are published on a DNS server on loopback that the
  server resolves through. The account is out of the sandbox with no sending limits. A 200 from Sesame
  means the message and its queue entry are committed (SQLite with synchronous=FULL).
* moto: `python -m moto.server` on a free port, same client, same request body (moto keeps messages in
  memory; it verifies nothing, so its figures are an in-memory ceiling, not durable sends).

Every request is one SigV4-signed POST /v2/email/outbound-emails, built and signed once per target
before the clock starts (a signature stays valid for 15 minutes), then sent unchanged. A response
counts as accepted only if it is a 200 whose body contains "MessageId"; anything else is an error
(the first error body per target is printed once). Latencies are over every completed request; a
server that closes the connection after each response (moto's werkzeug does) also pays, in the next
request's latency, the new connection the client must open.
With ``--tracking`` (Sesame targets only) the message is HTML (~2 KB, ten links) sent through a
configuration set with an OPEN and CLICK event destination, so each send also has its pixel placed and
its links rewritten and signed.
Each level is bounded both in time and in request count; every wait has a time bound. Client and
servers share this machine's cores, so the figures are a floor. The goals this reports against, at
concurrency 32: Sesame at least 3x moto's accepted rate on SQLite with p99 under 50 ms, and 2x on
PostgreSQL.

With ``--profile PATH`` (Sesame targets) py-spy (next to this Python, or on PATH) samples the server for
the first level's duration and writes PATH (speedscope JSON if PATH ends in .json, raw collapsed stacks
if .txt, else an SVG flame graph), prefixed with the target's name.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

from sesame.testing.databases import temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.moto import moto_server
from sesame.testing.servers import SesameProcess, sesame_cli

DOMAIN = "bench.test"
PATH = "/v2/email/outbound-emails"
REGION = "us-east-1"
WARMUP_SECONDS = 1.0
WARMUP_REQUESTS = 20
LEVEL_GRACE = 30.0  # seconds past a level's time bound before the level is abandoned as stuck
MAX_CHUNKS = 10_000  # bound on chunks read from one chunked response


def text_body(size: int = 2048) -> str:
    lines = []
    n = 0
    while sum(len(line) for line in lines) < size:
        n += 1
        lines.append(f"Line {n:03d} of the benchmark message: plain ASCII text, nothing to encode.\n")
    return "".join(lines)[:size]


BODY = json.dumps(
    {
        "FromEmailAddress": f"sender@{DOMAIN}",
        "Destination": {"ToAddresses": ["success@simulator.amazonses.com"]},
        "Content": {"Simple": {"Subject": {"Data": "bench"}, "Body": {"Text": {"Data": text_body()}}}},
    }
).encode()
TRACKING_SET = "tracked"


def html_body(links: int = 10) -> str:
    paragraphs = [
        f'<p>Item {n}: <a href="https://shop.{DOMAIN}/item?id={n}&amp;ref=mail" ses:tags="item:i{n};">see it'
        f"</a>. {text_body(120).strip()}</p>\n"
        for n in range(links)
    ]
    return "<html><body>\n" + "".join(paragraphs) + "</body></html>\n"


TRACKED_BODY = json.dumps(
    {
        "FromEmailAddress": f"sender@{DOMAIN}",
        "Destination": {"ToAddresses": ["success@simulator.amazonses.com"]},
        "Content": {"Simple": {"Subject": {"Data": "bench"}, "Body": {"Html": {"Data": html_body()}}}},
        "ConfigurationSetName": TRACKING_SET,
    }
).encode()


def signed_request(endpoint: str, key: str, secret: str, body: bytes = BODY) -> bytes:
    """The whole HTTP/1.1 request, signed once; the Host line matches the signed host."""
    headers = {"Content-Type": "application/json"}
    req = AWSRequest("POST", f"{endpoint}{PATH}", data=body, headers=headers)
    SigV4Auth(Credentials(key, secret), "ses", REGION).add_auth(req)
    hostport = endpoint.removeprefix("http://")
    lines = [f"POST {PATH} HTTP/1.1", f"Host: {hostport}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() not in ("host", "content-length")]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bytes, bool]:
    """One HTTP/1.1 exchange, reading the whole body; returns (status, body, connection reusable).

    Sesame always sends Content-Length; chunked and read-to-close bodies are handled for other servers.
    """
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = -1
    chunked = False
    keep_alive = head[:8] == b"HTTP/1.1"
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
        elif name == b"connection":
            token = value.strip().lower()
            keep_alive = token == b"keep-alive" or (keep_alive and token != b"close")
    if chunked:
        parts = []
        for _ in range(MAX_CHUNKS):
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                for _ in range(100):  # trailer fields, up to the blank line
                    if await reader.readuntil(b"\r\n") == b"\r\n":
                        break
                break
            parts.append((await reader.readexactly(size + 2))[:size])
        body = b"".join(parts)
    elif length >= 0:
        body = await reader.readexactly(length)
    else:
        body = await reader.read()
        keep_alive = False
    return status, body, keep_alive


def py_spy(pid: int, seconds: float, out: str) -> subprocess.Popen[bytes] | None:
    """py-spy sampling ``pid`` for ``seconds`` into ``out``; None (with a note) if py-spy is missing."""
    exe = Path(sys.executable).with_name("py-spy")
    found = str(exe) if exe.exists() else shutil.which("py-spy")
    if found is None:
        print("  --profile: py-spy not found; not profiling", flush=True)
        return None
    fmt = "speedscope" if out.endswith(".json") else "raw" if out.endswith(".txt") else "flamegraph"
    cmd = [found, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", "200",
           "--format", fmt, "--output", out, "--nonblocking"]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Client:
    """Connections to one target, each reopened if the server will not keep it alive."""

    def __init__(self, endpoint: str, request: bytes, server: SesameProcess | None = None) -> None:
        host, port = endpoint.removeprefix("http://").split(":")
        self.host, self.port = host, int(port)
        self.request = request
        self.server = server  # ours, for its CPU time (workers included); None for other targets
        self.first_error: bytes | None = None

    def note_error(self, what: bytes) -> None:
        if self.first_error is None:  # printed once per target
            self.first_error = what[:1000]
            print(f"  first error: {self.first_error.decode(errors='replace')}", flush=True)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    async def send(
        self, conn: tuple[asyncio.StreamReader, asyncio.StreamWriter]
    ) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        """One request; returns (accepted, the connection if still usable)."""
        status, body, keep_alive = await exchange(*conn, self.request)
        accepted = status == 200 and b"MessageId" in body
        if not accepted:
            self.note_error(f"HTTP {status}: ".encode() + body)
        if not keep_alive:
            conn[1].close()
            return accepted, None
        return accepted, conn


async def warm_up(client: Client) -> tuple[int, int]:
    """A few requests on one connection, at most WARMUP_SECONDS; returns (sent, accepted)."""
    sent = accepted = 0
    conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def run() -> None:
        nonlocal sent, accepted, conn
        deadline = time.perf_counter() + WARMUP_SECONDS
        while sent < WARMUP_REQUESTS and time.perf_counter() < deadline:
            ok, conn = await client.send(conn or await client.connect())
            sent += 1
            accepted += ok

    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(run(), WARMUP_SECONDS + LEVEL_GRACE)
    if conn is not None:
        conn[1].close()
    return sent, accepted


async def level(client: Client, concurrency: int, seconds: float, cap: int, profile: str = "") -> dict:
    """Keep ``concurrency`` requests in flight, one per connection, until the time or count bound."""
    latencies: list[float] = []
    accepted = 0
    conns = [await client.connect() for _ in range(concurrency)]
    for i, conn in enumerate(conns):  # open each connection with one untimed exchange
        _, kept = await client.send(conn)
        conns[i] = kept or await client.connect()
    server = client.server
    pid = server.proc.pid if server is not None and server.proc is not None else None
    spy = py_spy(pid, seconds, profile) if profile and pid else None  # the supervisor, with --workers
    cpu_before = server.cpu_seconds() if server else 0.0
    deadline = time.perf_counter() + seconds
    open_conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def worker(conn: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None) -> None:
        nonlocal accepted
        while time.perf_counter() < deadline and len(latencies) < cap:
            t0 = time.perf_counter()
            try:
                if conn is None:  # the server closed it (moto does after every response): reconnecting
                    conn = await client.connect()  # is part of what the client waits for, so it is timed
                ok, conn = await client.send(conn)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
                client.note_error(f"{type(exc).__name__}: {exc}".encode())
                if conn is not None:
                    conn[1].close()
                ok, conn = False, None
            latencies.append(time.perf_counter() - t0)
            accepted += ok
        if conn is not None:
            open_conns.append(conn)

    start = time.perf_counter()
    stuck = False
    try:
        await asyncio.wait_for(asyncio.gather(*(worker(c) for c in conns)), seconds + LEVEL_GRACE)
    except TimeoutError:
        stuck = True
    elapsed = time.perf_counter() - start
    cpu = server.cpu_seconds() - cpu_before if server else float("nan")
    if spy is not None:
        try:
            spy.wait(timeout=LEVEL_GRACE)
            print(f"  profile written to {profile}", flush=True)
        except subprocess.TimeoutExpired:
            spy.kill()
    for _, writer in set(open_conns) | set(conns):
        writer.close()
    latencies.sort()
    if len(latencies) >= 2:
        q = statistics.quantiles(latencies, n=100)
        p50, p99 = q[49] * 1000, q[98] * 1000
    else:
        p50 = p99 = float("nan")
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": len(latencies) - accepted,
        "rps": accepted / elapsed,
        "p50_ms": p50,
        "p99_ms": p99,
        "cpu_ms": cpu / accepted * 1000 if accepted else float("nan"),
        "stuck": stuck,
    }


def run_levels(name: str, client: Client, args: argparse.Namespace) -> list[dict] | None:
    sent, accepted = asyncio.run(warm_up(client))
    print(f"{name}: warm-up {accepted}/{sent} accepted", flush=True)
    if accepted == 0:
        return None
    print(f"{'target':>17} {'concurrency':>11} {'requests':>9} {'errors':>6} {'accepted/s':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'server cpu ms/send':>18}")  # fmt: skip
    results = []
    for i, c in enumerate(args.concurrency):
        profile = (
            f"{Path(args.profile).parent / (name + '-' + Path(args.profile).name)}" if args.profile else ""
        )
        r = asyncio.run(level(client, c, args.seconds, args.max_requests, profile if i == 0 else ""))
        print(
            f"{name:>17} {r['concurrency']:>11} {r['requests']:>9} {r['errors']:>6} {r['rps']:>10.0f} "
            f"{r['p50_ms']:>7.2f} {r['p99_ms']:>7.2f} {r['cpu_ms']:>18.2f}"
            + ("  (stuck: level abandoned)" if r["stuck"] else ""),
            flush=True,
        )
        results.append(r)
    return results


def boto_client(service: str, endpoint: str, key: str, secret: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, connect_timeout=10, read_timeout=30),
    )


def bench_sesame(backend: str, args: argparse.Namespace) -> list[dict] | None:
    env = {
        "SESAME_DNS__NAMESERVERS": "",
        "SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0",
        "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024",
        # Acceptance alone: delivery is bench/delivery.py's subject, and would share these two cores.
        "SESAME_DELIVERY__ENABLED": "false",
    }
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_database(backend, Path(tmp)) as url,
        DnsServer() as dns,
    ):
        env["SESAME_DNS__NAMESERVERS"] = dns.address
        data_dir = Path(tmp) / "data"
        flags = ["--workers", str(args.workers)] if args.workers > 1 else []
        with SesameProcess("serve", data_dir=data_dir, database=url, env=env, args=flags) as sesame:
            account = json.loads(sesame_cli("accounts", "create", "bench", data_dir=data_dir, database=url))
            account_id = account["AccountId"]
            sesame_cli(
                "accounts", "update", account_id, "--production", "--max-send-rate=-1",
                "--max-24-hour-send=-1", data_dir=data_dir, database=url,
            )  # fmt: skip
            v2 = boto_client("sesv2", sesame.endpoint, account["AccessKeyId"], account["SecretAccessKey"])
            v2.create_email_identity(EmailIdentity=DOMAIN)
            records = sesame_cli(
                "identities", "records", DOMAIN, "--account", account_id, data_dir=data_dir, database=url
            )
            dns.add_zone_lines(records)
            status = ""
            for _ in range(20):  # bounded: 20 lookups, about 10 s at most
                status = v2.get_email_identity(EmailIdentity=DOMAIN)["VerificationStatus"]
                if status == "SUCCESS":
                    break
                time.sleep(0.5)
            if status != "SUCCESS":
                print(f"sesame-{backend}: {DOMAIN} not verified ({status}); skipped")
                return None
            body = BODY
            if args.tracking:
                v2.create_configuration_set(ConfigurationSetName=TRACKING_SET)
                v2.create_configuration_set_event_destination(
                    ConfigurationSetName=TRACKING_SET,
                    EventDestinationName="engagement",
                    EventDestination={
                        "Enabled": True,
                        "MatchingEventTypes": ["OPEN", "CLICK"],
                        "SnsDestination": {"TopicArn": f"arn:aws:sns:{REGION}:{account_id}:engagement"},
                    },
                )
                body = TRACKED_BODY
            key, secret = account["AccessKeyId"], account["SecretAccessKey"]
            request = signed_request(sesame.endpoint, key, secret, body)
            name = f"sesame-{backend}" + ("-tracked" if args.tracking else "")
            return run_levels(name, Client(sesame.endpoint, request, sesame), args)


def bench_moto(args: argparse.Namespace) -> list[dict] | None:
    try:
        with moto_server() as endpoint:
            v2 = boto_client("sesv2", endpoint, "test", "test")
            v2.create_email_identity(EmailIdentity=DOMAIN)  # moto verifies at once
            request = signed_request(endpoint, "test", "test")
            results = run_levels("moto", Client(endpoint, request), args)
            if results is None:
                print("moto: sesv2 SendEmail did not accept the request; reporting Sesame only")
            return results
    except Exception as exc:  # moto missing, failing to start, or rejecting setup: report Sesame alone
        print(f"moto: unavailable ({type(exc).__name__}: {exc}); reporting Sesame only")
        return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", default="sqlite,postgresql,moto", help="comma-separated: "
                        "sqlite, postgresql (sesame serve on that database), moto")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=5.0, help="time bound per concurrency level")
    parser.add_argument("--max-requests", type=int, default=20000, help="count bound per concurrency level")
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--tracking", action="store_true", help="HTML with ten links, sent through a "
                        "configuration set with open and click tracking (Sesame targets)")  # fmt: skip
    parser.add_argument("--workers", type=int, default=1, help="sesame serve --workers (Sesame targets)")
    parser.add_argument("--profile", default="", metavar="PATH", help="py-spy the server during the first "
                        "level into PATH (.json speedscope, .txt collapsed stacks, else SVG)")  # fmt: skip
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in ("sqlite", "postgresql", "moto"):
            parser.error(f"unknown target {t!r} (choose from sqlite, postgresql, moto)")
    args.concurrency = [int(x) for x in args.concurrency.split(",")]

    size = len(TRACKED_BODY if args.tracking else BODY)
    content = "Simple HTML content, open and click tracking" if args.tracking else "Simple content"
    print(f"SES v2 SendEmail, {content}, {size}-byte request, to success@simulator.amazonses.com; "
          f"{args.seconds:g} s / {args.max_requests} requests per level")  # fmt: skip
    results: dict[str, list[dict] | None] = {}
    for t in targets:
        if t == "moto":
            results["moto"] = bench_moto(args)
        else:
            results[f"sesame-{t}"] = bench_sesame(t, args)
        print(flush=True)

    moto = {r["concurrency"]: r for r in results.get("moto") or []}
    for name, rows in results.items():
        if name == "moto" or not rows:
            continue
        for r in rows:
            c = r["concurrency"]
            if c in moto and moto[c]["rps"] > 0:
                print(f"{name} / moto at c={c}: {r['rps'] / moto[c]['rps']:.1f}x")
            if c == 32:
                times = 3 if name == "sesame-sqlite" else 2
                ok_rate = c in moto and moto[c]["rps"] > 0 and r["rps"] >= times * moto[c]["rps"]
                rate = "n/a (no moto figure)" if c not in moto else ("met" if ok_rate else "NOT met")
                line = f"  goal at c=32 ({name}): >={times}x moto {rate}"
                if name == "sesame-sqlite":
                    ok_p99 = r["p99_ms"] < 50
                    line += f"; p99 < 50 ms {'met' if ok_p99 else 'NOT met'} ({r['p99_ms']:.1f} ms)"
                print(line)


if __name__ == "__main__":
    main()
