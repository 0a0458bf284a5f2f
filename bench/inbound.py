"""Inbound benchmark: messages received per second through Sesame's MX into a receipt rule with an S3
action (the local object store), beside Postfix's smtpd receiving the same load into its queue.

    python bench/inbound.py [--targets sqlite,postgresql,postfix] [--messages 5000] [--seconds 60]
                            [--sessions 20]

The load: bench/smtp.py's 2,048-byte message to someone@sink.test, over --sessions concurrent SMTP
sessions, from Postfix's smtp-source (C, one process, no pipelining) for every target, in two rows:
"reuse" (each session sends message after message) and "per-session" (one message per connection).
Each row is bounded by --messages and --seconds.

* sesame-sqlite, sesame-postgresql: `sesame serve` on a fresh database with its MX on a free loopback
  port; one account whose active rule set has one enabled rule for the domain sink.test with one
  S3Action into the bucket "bench-mail" (no S3 endpoint configured: the local object store,
  DATA_DIR/objects/bench-mail/<messageId>). The MX's 250 comes after the message is committed; its
  verdicts and the S3 action run after, in the background. Measured: accepted/s (smtp-source), and
  "stored/s": from the row's start until every message of the row is an object in the bucket. DNS goes
  to a DNS server on loopback where the sender's domain (bench.test) publishes SPF and DMARC records,
  so every message gets SPF PASS and DMARC PASS (answers cached within their TTL, as a busy MX would).
* postfix: a private Postfix instance (bench/smtp.py's), every message held in its hold queue: what its
  smtpd and cleanup do to take a message into the queue, fsync included. Nothing is delivered.

CPU ms/msg is the server's process tree's user + system CPU during the row (for PostgreSQL, its backends'
beside it), over the messages accepted. Client and server share this machine's cores, so every figure is
a floor. The goal (issue 10): Sesame's received/s at least Postfix's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from delivery import PrivatePostfix, run_postfix_command, tool
from send import DOMAIN, boto_client
from smtp import (  # bench/, beside us
    HOLD_EVERYTHING,
    MESSAGE,
    WARMUP,
    CpuMeter,
    Row,
    master_pid,
    print_row,
    smtp_source,
)

from sesame.testing.databases import temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess, free_port

BUCKET = "bench-mail"
HEADER = (f"{'target':>17} {'row':>11} {'client':>11} {'accepted':>8} {'errors':>6} {'accepted/s':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'CPU ms/msg':>10} {'db ms/msg':>9}")  # fmt: skip


def configure_rules(endpoint: str) -> None:
    """sink.test becomes a verified domain of the account (at once, in dev mode) with a rule storing
    its mail in the bucket."""
    boto_client("sesv2", endpoint, "111111111111", "secret").create_email_identity(EmailIdentity="sink.test")
    ses = boto_client("ses", endpoint, "111111111111", "secret")
    ses.create_receipt_rule_set(RuleSetName="bench")
    ses.create_receipt_rule(
        RuleSetName="bench",
        Rule={
            "Name": "store",
            "Enabled": True,
            "Recipients": ["sink.test"],
            "Actions": [{"S3Action": {"BucketName": BUCKET}}],
        },
    )
    ses.set_active_receipt_rule_set(RuleSetName="bench")


def stored(bucket: Path) -> int:
    try:
        return sum(1 for p in bucket.iterdir() if not p.name.startswith("."))
    except FileNotFoundError:
        return 0


def wait_stored(bucket: Path, want: int, seconds: float) -> int:
    """Wait (at most ``seconds``) until ``want`` objects are in the bucket; how many there are."""
    deadline = time.monotonic() + seconds
    while (n := stored(bucket)) < want and time.monotonic() < deadline:
        time.sleep(0.05)
    return n


def bench_sesame(backend: str, args: argparse.Namespace, message_file: Path) -> list[Row]:
    target = f"sesame-{backend}"
    with (
        tempfile.TemporaryDirectory() as tmp,
        temporary_database(backend, Path(tmp)) as url,
        DnsServer() as dns,
    ):
        env = {"SESAME_DNS__NAMESERVERS": dns.address}
        # The sender publishes SPF and DMARC, as senders mostly do: the MX checks them for every message.
        dns.add(DOMAIN, "TXT", '"v=spf1 ip4:127.0.0.0/8 -all"')
        dns.add(f"_dmarc.{DOMAIN}", "TXT", '"v=DMARC1; p=reject"')
        data_dir = Path(tmp) / "data"
        config = Path(tmp) / "sesame.toml"
        config.write_text('[smtp]\nhostname = "mx.bench.test"\n\n[delivery]\nenabled = false\n')
        with SesameProcess("dev", data_dir=data_dir, database=url, config_file=config, env=env) as sesame:
            configure_rules(sesame.endpoint)
            port = sesame.listeners["mx"][1]
            assert sesame.proc is not None
            meter = CpuMeter(sesame.proc.pid, url if backend == "postgresql" else None)
            bucket = data_dir / "objects" / BUCKET
            print(f"{target}: mx 127.0.0.1:{port}, S3Action into the local store {bucket}", flush=True)
            warm = smtp_source(port, message_file, WARMUP, args.sessions, True, 30)
            print(f"{target}: warm-up {warm.accepted}/{WARMUP} accepted {warm.note}".rstrip(), flush=True)
            if warm.accepted == 0:
                print("\n".join(sesame.stderr_lines[-20:]))
                return []
            done = wait_stored(bucket, warm.accepted, 60)
            rows = []
            for reuse in (True, False):
                before, start = meter.sample(), time.perf_counter()
                row = smtp_source(port, message_file, args.messages, args.sessions, reuse, args.seconds)
                row.target = target
                n = wait_stored(bucket, done + row.accepted, args.seconds * 4)
                stored_seconds = time.perf_counter() - start
                after = meter.sample()
                row.cpu, row.db_cpu = after[0] - before[0], after[1] - before[1]
                rate = (n - done) / stored_seconds
                note = f"{n - done} stored in {stored_seconds:.1f} s = {rate:.0f} stored/s"
                row.note = f"{row.note}; {note}" if row.note else note
                done = n
                print_row(row)
                rows.append(row)
            return rows


def bench_postfix(args: argparse.Namespace, message_file: Path) -> list[Row]:
    if tool("postfix") is None:
        print("postfix: skipped: not found (apt-get install -y postfix)")
        return []
    rc, version = run_postfix_command([tool("postconf") or "postconf", "-d", "-h", "mail_version"], 10)
    with tempfile.TemporaryDirectory() as tmp:
        instance = PrivatePostfix(Path(tmp) / "postfix", free_port(), HOLD_EVERYTHING)
        try:
            instance.start()
            print(f"postfix {version if rc == 0 else ''}: smtpd on 127.0.0.1:{instance.port}, mail held")
            meter = CpuMeter(master_pid(instance))
            smtp_source(instance.port, message_file, WARMUP, args.sessions, True, 30)
            rows = []
            for reuse in (True, False):
                before = meter.sample()
                row = smtp_source(
                    instance.port, message_file, args.messages, args.sessions, reuse, args.seconds
                )
                after = meter.sample()
                row.target, row.cpu = "postfix", after[0] - before[0]
                print_row(row)
                rows.append(row)
            return rows
        finally:
            instance.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", default="sqlite,postgresql,postfix")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    if tool("smtp-source") is None:
        sys.exit("smtp-source (Debian's postfix package) is the load generator: apt-get install -y postfix")
    with tempfile.TemporaryDirectory() as tmp:
        message_file = Path(tmp) / "message.eml"
        message_file.write_bytes(MESSAGE.replace(b"\r\n", b"\n"))  # smtp-source adds CRLF to each line
        print(HEADER, flush=True)
        results: list[Row] = []
        for t in args.targets.split(","):
            results += (
                bench_postfix(args, message_file) if t == "postfix" else bench_sesame(t, args, message_file)
            )
        print("\n" + HEADER)
        for r in results:
            print_row(r)


if __name__ == "__main__":
    main()
