"""SMTP benchmark: messages accepted per second over SMTP, durably, by Sesame and by Postfix's smtpd.

    python bench/smtp.py [--targets sqlite,postgresql,postfix] [--messages 5000] [--seconds 30]
                         [--sessions 20] [--no-tls]

The load: 2,048-byte messages (headers and body as they go on the wire), one recipient each, over
--sessions concurrent SMTP sessions, in two rows:

    reuse        each session stays open and sends message after message (smtp-source -d)
    per-session  each session sends one message and quits; the next message opens a new connection

Each row is bounded by --messages and --seconds (a run still going at the time bound is stopped and
counted as far as it got). Before the rows, a warm-up of 100 messages (uncounted) starts the servers'
processes and fills their caches.

Targets, one after the other on the same machine:

* sesame-sqlite, sesame-postgresql: `sesame serve` with a fresh database and its plain-text SMTP
  listener on a free loopback port. smtp-source speaks neither TLS nor AUTH, so `[smtp]
  trusted_networks` maps 127.0.0.1/32 to the benchmark account, which is out of the sandbox with no
  sending limits; its domain bench.test is verified for real (DKIM records on a DNS server on loopback,
  as in bench/send.py). `[delivery] enabled = false`: only accepting is measured, queued mail stays
  queued. Sesame's 250 comes after the message and its queue entry are committed (SQLite with
  synchronous=FULL).
* postfix: a private instance of Debian's Postfix (its own config_directory, queue_directory and
  data_directory in a temp dir; smtpd on a free loopback port; the system instance is not touched),
  accepting from mynetworks = 127.0.0.0/8 under the default relay restrictions, with Postfix's default
  fsynced queue files. It delivers nowhere: `smtpd_client_restrictions = check_client_access
  inline:{127.0.0.1=HOLD}` marks every message for the hold queue, so cleanup writes (and fsyncs) the
  queue file straight into hold/ and the queue manager never picks it up; nothing is tried or deferred.
  Its 250 comes after cleanup has fsynced the queue file. It logs to a file through postlogd
  (maillog_file), its usual per-message logging.

Measured, per target and row:

    accepted/s   from Postfix's smtp-source, the load generator for every target (C, one process,
                 no pipelining): messages whose DATA completed (its -c counter; without -A it stops at
                 the first reply that is not the expected one, so a refusal shows up as an error) over
                 the wall time of the smtp-source run
    CPU ms/msg   user + system CPU time the server used during that run (/proc/PID/stat of its process
                 tree: the live processes plus the reaped children's cutime/cstime) per accepted
                 message. Sesame: the `sesame serve` process; for PostgreSQL, the CPU of the
                 database's backends serving it is shown beside it (db ms/msg). Postfix: master and
                 all its children (smtpd, cleanup, trivial-rewrite, anvil, qmgr, postlogd, ...)
    p50, p99     smtp-source reports no latencies, so a second pass runs the same load (same message,
                 sessions and bound) from a small asyncio client of this script on raw streams, pipelining
                 off (each command waits for its reply): the time from writing the message's data with
                 its final dot to reading the whole reply to it. That pass's own accepted/s is shown too
                 (a Python client's figure, lower than smtp-source's)

and, for Sesame only, the same asyncio client with STARTTLS and AUTH LOGIN (the access key id and its
SES SMTP password), from 127.0.0.2 so that the session is not a trusted one: beside the plain-text
pass it shows what TLS and authentication cost.

Client and servers share this machine's cores, so every figure is a floor. The goal this reports
against (issue 8): Sesame's accepted/s at least Postfix's, in both rows.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from delivery import PrivatePostfix, run_postfix_command, spool_count, tool  # bench/, beside us
from send import DOMAIN, REGION, boto_client, text_body

from sesame.testing.databases import temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess, free_port, sesame_cli

SENDER = f"sender@{DOMAIN}"
RECIPIENT = "someone@sink.test"
MESSAGE_SIZE = 2048
WARMUP = 100
GRACE = 30.0  # seconds past a run's time bound before it is abandoned as stuck
ROWS = ("reuse", "per-session")
TLS_SOURCE = "127.0.0.2"  # outside trusted_networks, so the TLS sessions must authenticate


def message() -> bytes:
    """The message as it goes on the wire (CRLF line ends, no line starting with a dot), MESSAGE_SIZE bytes.

    No Message-ID: each server adds its own, as it would for most submitted mail."""
    head = (
        f"From: Bench <{SENDER}>\r\nTo: <{RECIPIENT}>\r\nSubject: bench\r\n"
        "Date: Thu, 01 Jan 2026 00:00:00 +0000\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    lines = text_body(MESSAGE_SIZE).splitlines()
    body = ""
    for line in lines:
        if len(head) + len(body) + len(line) + 2 > MESSAGE_SIZE:
            break
        body += line + "\r\n"
    room = MESSAGE_SIZE - len(head) - len(body) - 2
    if room > 0:
        body += "x" * room + "\r\n"
    data = (head + body).encode()
    assert len(data) == MESSAGE_SIZE, len(data)
    return data


MESSAGE = message()


# -- CPU accounting --------------------------------------------------------------------------------------

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def proc_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds: user + system, own and of reaped children) of a process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    ppid = int(fields[1])
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return ppid, (utime + stime + cutime + cstime) / CLOCK_TICKS


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its descendants: a child that exits between two readings moves
    into its parent's cutime/cstime once reaped, so the sum stays continuous."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (s := proc_stat(int(entry))) is not None:
            stats[int(entry)] = s
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
            todo += children.get(pid, [])
    return total


@dataclass
class CpuMeter:
    """The server side's CPU seconds: a process tree, plus (for PostgreSQL) the database's backends."""

    root: int
    database: str | None = None  # PostgreSQL URL whose backends are counted apart

    def sample(self) -> tuple[float, float]:
        db = 0.0
        if self.database:
            for pid in asyncio.run(backend_pids(self.database)):
                if (s := proc_stat(pid)) is not None:
                    db += s[1]
        return tree_cpu(self.root), db


async def backend_pids(url: str) -> list[int]:
    import asyncpg

    base, _, name = url.rpartition("/")
    conn = await asyncpg.connect(f"{base}/postgres")
    try:
        rows = await conn.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", name)
    finally:
        await conn.close()
    return [r["pid"] for r in rows]


# -- the load: smtp-source -----------------------------------------------------------------------------


@dataclass
class Row:
    target: str
    row: str
    client: str
    accepted: int = 0
    errors: int = 0
    seconds: float = float("nan")
    cpu: float = float("nan")  # server CPU seconds during the run
    db_cpu: float = float("nan")
    latencies: list[float] = field(default_factory=list)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.accepted / self.seconds if self.accepted else 0.0

    def cpu_ms(self, cpu: float) -> float:
        return cpu * 1000 / self.accepted if self.accepted else float("nan")

    def quantile(self, q: int) -> float:
        if len(self.latencies) < 2:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100)[q - 1] * 1000


def smtp_source(port: int, message_file: Path, n: int, sessions: int, reuse: bool, seconds: float) -> Row:
    """One smtp-source run; returns its count (DATA completed) and wall time."""
    program = tool("smtp-source")
    assert program is not None
    cmd = [program, "-c", *(["-d"] if reuse else []), "-s", str(sessions), "-m", str(n)]
    cmd += ["-F", str(message_file), "-f", SENDER, "-t", RECIPIENT, f"127.0.0.1:{port}"]
    row = Row("", "reuse" if reuse else "per-session", "smtp-source")
    # The counter goes to a file: thousands of updates would fill a pipe nobody reads until the end.
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        try:
            proc.wait(seconds)
        except subprocess.TimeoutExpired:
            proc.terminate()  # the time bound: counted as far as it got
            proc.wait(10)
            row.note = f"stopped at the {seconds:g} s bound"
        row.seconds = time.perf_counter() - start
        out.seek(0)
        err.seek(0)
        counts = [u.strip() for u in out.read().replace(b"\n", b"\r").split(b"\r")]
        row.accepted = max((int(c) for c in counts if c.isdigit()), default=0)
        problem = err.read(2000).decode(errors="replace").strip()
    row.errors = n - row.accepted if not row.note else 0
    if proc.returncode not in (0, None) and not row.note:
        row.note = f"smtp-source exited with {proc.returncode}: {problem}"
    return row


# -- the load: a Python asyncio client, for latencies and for TLS -------------------------------------------


class SmtpError(Exception):
    pass


@dataclass
class Login:
    """STARTTLS and AUTH LOGIN for a session, from a source address outside the trusted networks."""

    username: str
    password: str
    context: ssl.SSLContext
    source: str = TLS_SOURCE


async def reply(reader: asyncio.StreamReader, expect: int) -> None:
    for _ in range(100):  # lines of one reply
        line = await reader.readuntil(b"\n")
        if line[3:4] != b"-":
            break
    if not line[:3].isdigit() or int(line[:3]) != expect:
        raise SmtpError(line.decode(errors="replace").strip())


async def command(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, line: bytes, expect: int
) -> None:
    writer.write(line + b"\r\n")
    await reply(reader, expect)


class Session:
    """One SMTP session; commands one at a time (no pipelining), as smtp-source sends them."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, login: Login | None) -> Session:
        local = (login.source, 0) if login else None
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=local)
        s = cls(reader, writer)
        try:
            await reply(reader, 220)
            await command(reader, writer, b"EHLO bench.client", 250)
            if login:
                await command(reader, writer, b"STARTTLS", 220)
                await writer.start_tls(login.context)
                await command(reader, writer, b"EHLO bench.client", 250)
                await command(reader, writer, b"AUTH LOGIN", 334)
                await command(reader, writer, base64.b64encode(login.username.encode()), 334)
                await command(reader, writer, base64.b64encode(login.password.encode()), 235)
        except BaseException:
            s.abort()
            raise
        return s

    async def send(self, data: bytes) -> float:
        """One message; returns the seconds from writing its data and final dot to the reply."""
        await command(self.reader, self.writer, f"MAIL FROM:<{SENDER}>".encode(), 250)
        await command(self.reader, self.writer, f"RCPT TO:<{RECIPIENT}>".encode(), 250)
        await command(self.reader, self.writer, b"DATA", 354)
        t0 = time.perf_counter()
        self.writer.write(data + b".\r\n")
        await reply(self.reader, 250)
        return time.perf_counter() - t0

    async def quit(self) -> None:
        try:
            await asyncio.wait_for(command(self.reader, self.writer, b"QUIT", 221), 5)
        except (OSError, SmtpError, asyncio.IncompleteReadError, TimeoutError):
            pass
        self.abort()

    def abort(self) -> None:
        self.writer.close()


async def python_load(
    port: int, n: int, sessions: int, reuse: bool, seconds: float, login: Login | None = None
) -> Row:
    row = Row("", "reuse" if reuse else "per-session", "python+tls" if login else "python")
    issued = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal issued
        session: Session | None = None
        while issued < n and time.perf_counter() < deadline:
            issued += 1
            try:
                if session is None:
                    session = await Session.open(port, login)
                row.latencies.append(await session.send(MESSAGE))
                row.accepted += 1
                if not reuse:
                    await session.quit()
                    session = None
            except (
                OSError,
                SmtpError,
                asyncio.IncompleteReadError,
                asyncio.LimitOverrunError,
                ssl.SSLError,
            ) as exc:
                row.errors += 1
                if not row.note:
                    row.note = f"first error: {type(exc).__name__}: {exc}"
                    print(f"  {row.note}", flush=True)
                if session is not None:
                    session.abort()
                    session = None
                await asyncio.sleep(0.01)  # a refused connection must not spin
        if session is not None:
            await session.quit()

    start = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(sessions))), seconds + GRACE)
    except TimeoutError:
        row.note = "stuck: abandoned"
    row.seconds = time.perf_counter() - start
    if not row.note and issued < n:
        row.note = f"stopped at the {seconds:g} s bound"
    row.latencies.sort()
    return row


# -- running the rows against one server --------------------------------------------------------------------


def run_rows(
    target: str, port: int, meter: CpuMeter, args: argparse.Namespace, message_file: Path, login: Login | None
) -> list[Row]:
    warm = smtp_source(port, message_file, WARMUP, args.sessions, True, 30)
    print(f"{target}: warm-up {warm.accepted}/{WARMUP} accepted {warm.note}".rstrip(), flush=True)
    if warm.accepted == 0:
        return []
    clients = ["smtp-source", "python"] + ([] if login is None else ["python+tls"])
    rows = []
    for client in clients:
        for reuse in (True, False):
            before = meter.sample()
            if client == "smtp-source":
                row = smtp_source(port, message_file, args.messages, args.sessions, reuse, args.seconds)
            else:
                tls = login if client == "python+tls" else None
                row = asyncio.run(python_load(port, args.messages, args.sessions, reuse, args.seconds, tls))
            after = meter.sample()
            row.target = target
            row.cpu, row.db_cpu = after[0] - before[0], after[1] - before[1]
            print_row(row)
            rows.append(row)
    return rows


HEADER = (f"{'target':>17} {'row':>11} {'client':>11} {'accepted':>8} {'errors':>6} {'accepted/s':>10} "
          f"{'p50 ms':>7} {'p99 ms':>7} {'CPU ms/msg':>10} {'db ms/msg':>9}")  # fmt: skip


def print_row(r: Row) -> None:
    db = f"{r.cpu_ms(r.db_cpu):>9.2f}" if r.db_cpu == r.db_cpu and r.db_cpu > 0 else f"{'':>9}"
    lat = f"{r.quantile(50):>7.2f} {r.quantile(99):>7.2f}" if r.latencies else f"{'-':>7} {'-':>7}"
    print(
        f"{r.target:>17} {r.row:>11} {r.client:>11} {r.accepted:>8} {r.errors:>6} {r.rate:>10.0f} "
        f"{lat} {r.cpu_ms(r.cpu):>10.2f} {db}" + (f"  ({r.note})" if r.note else ""),
        flush=True,
    )


# -- Sesame -------------------------------------------------------------------------------------------------


def sesame_config(path: Path, account_id: str) -> None:
    path.write_text(
        "[smtp]\n"
        f'trusted_networks = {{"127.0.0.1/32" = "{account_id}"}}\n'
        'hostname = "sesame.bench.test"\n'
        "\n[delivery]\n"
        "enabled = false\n"
    )


def bench_sesame(backend: str, args: argparse.Namespace, message_file: Path) -> list[Row]:
    target = f"sesame-{backend}"
    env = {"SESAME_IDENTITIES__MIN_LOOKUP_INTERVAL": "0", "SESAME_IDENTITIES__DKIM_KEY_BITS": "1024"}
    with (
        tempfile.TemporaryDirectory(dir=args.tmp) as tmp,
        temporary_database(backend, Path(tmp)) as url,
        DnsServer() as dns,
    ):
        env["SESAME_DNS__NAMESERVERS"] = dns.address
        data_dir = Path(tmp) / "data"

        def cli(*words: str) -> str:
            return sesame_cli(*words, data_dir=data_dir, database=url, env=env)

        account = json.loads(cli("accounts", "create", "bench"))
        account_id, key = account["AccountId"], account["AccessKeyId"]
        cli("accounts", "update", account_id, "--production", "--max-send-rate=-1", "--max-24-hour-send=-1")
        password = json.loads(cli("accounts", "smtp-password", key, "--region", REGION))["SmtpPassword"]
        config_file = Path(tmp) / "sesame.toml"
        sesame_config(config_file, account_id)
        flags = ["--workers", str(args.workers)] if args.workers > 1 else []
        with SesameProcess(
            "serve", data_dir=data_dir, database=url, config_file=config_file, env=env, args=flags
        ) as sesame:
            if "smtp" not in sesame.listeners:
                print(
                    f"{target}: no SMTP listener announced; skipped\n" + "\n".join(sesame.stderr_lines[-10:])
                )
                return []
            v2 = boto_client("sesv2", sesame.endpoint, key, account["SecretAccessKey"])
            v2.create_email_identity(EmailIdentity=DOMAIN)
            dns.add_zone_lines(cli("identities", "records", DOMAIN, "--account", account_id))
            status = ""
            for _ in range(20):  # bounded: 20 lookups, about 10 s at most
                status = v2.get_email_identity(EmailIdentity=DOMAIN)["VerificationStatus"]
                if status == "SUCCESS":
                    break
                time.sleep(0.5)
            if status != "SUCCESS":
                print(f"{target}: {DOMAIN} not verified ({status}); skipped")
                return []
            port = sesame.listeners["smtp"][1]
            assert sesame.proc is not None
            meter = CpuMeter(sesame.proc.pid, url if backend == "postgresql" else None)
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE  # the self-signed certificate made in the data dir
            login = None if args.no_tls else Login(key, password, context)
            print(f"{target}: smtp listener 127.0.0.1:{port}", flush=True)
            return run_rows(target, port, meter, args, message_file, login)


# -- Postfix ------------------------------------------------------------------------------------------------


#: Accepted mail goes to the hold queue, where nothing picks it up: accepting is what is measured.
HOLD_EVERYTHING = {"smtpd_client_restrictions": "check_client_access inline:{ 127.0.0.1=HOLD }"}


def master_pid(instance: PrivatePostfix) -> int:
    return int((instance.spool / "pid" / "master.pid").read_text().split()[0])


def bench_postfix(args: argparse.Namespace, message_file: Path) -> list[Row]:
    missing = [p for p in ("postfix", "smtp-source") if tool(p) is None]
    if missing:
        print(f"postfix: skipped: {', '.join(missing)} not found (apt-get install -y postfix)")
        return []
    if os.geteuid() != 0:
        print("postfix: skipped: a private Postfix instance needs root (its daemons run as the postfix user)")
        return []
    rc, version = run_postfix_command([tool("postconf") or "postconf", "-d", "-h", "mail_version"], 10)
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        instance = PrivatePostfix(Path(tmp) / "postfix", free_port(), HOLD_EVERYTHING)
        try:
            instance.start()
            print(f"postfix {version if rc == 0 else '(version unknown)'}: private instance, smtpd on "
                  f"127.0.0.1:{instance.port}, accepted mail held", flush=True)  # fmt: skip
            rows = run_rows(
                "postfix", instance.port, CpuMeter(master_pid(instance)), args, message_file, None
            )
            time.sleep(0.5)  # the last cleanup may still be renaming its file
            counted = WARMUP + sum(r.accepted for r in rows)
            held = spool_count(instance.spool / "hold")
            print(f"postfix: {held} messages in the hold queue, {counted} replies 250 counted")
            return rows
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"postfix: a private instance could not run here, so no Postfix figures:\n{exc}")
            return []
        finally:
            instance.stop()


# -- main ---------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--targets", default="sqlite,postgresql,postfix", help="comma-separated: sqlite, "
                        "postgresql (sesame serve on that database), postfix")  # fmt: skip
    parser.add_argument("--messages", type=int, default=5000, help="count bound per run")
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound per run")
    parser.add_argument("--sessions", type=int, default=20, help="concurrent SMTP sessions")
    parser.add_argument("--no-tls", action="store_true", help="skip Sesame's STARTTLS + AUTH rows")
    parser.add_argument("--workers", type=int, default=1, help="sesame serve --workers")
    parser.add_argument("--tmp", default=None, help="directory for the queues and databases (a disk, so "
                        "that fsync means something; default: the system's temp dir)")  # fmt: skip
    args = parser.parse_args()
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    for t in targets:
        if t not in ("sqlite", "postgresql", "postfix"):
            parser.error(f"unknown target {t!r} (choose from sqlite, postgresql, postfix)")

    print(f"{len(MESSAGE)}-byte messages, 1 recipient, {args.sessions} sessions; "
          f"{args.messages} messages / {args.seconds:g} s per run", flush=True)  # fmt: skip
    results: list[Row] = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        message_file = Path(tmp) / "message.eml"
        message_file.write_bytes(MESSAGE.replace(b"\r\n", b"\n"))  # smtp-source adds CRLF to each line
        Path(tmp).chmod(0o755)
        for t in targets:
            print(HEADER, flush=True)
            results += (
                bench_postfix(args, message_file) if t == "postfix" else bench_sesame(t, args, message_file)
            )
            print(flush=True)

    if not results:
        return
    print("Summary")
    print(HEADER)
    for r in results:
        print_row(r)
    postfix = {(r.row, r.client): r for r in results if r.target == "postfix"}
    print()
    for r in results:
        p = postfix.get((r.row, r.client))
        if r.target == "postfix" or p is None or not p.rate:
            continue
        print(f"{r.target} / postfix, {r.row}, {r.client}: {r.rate / p.rate:.2f}x accepted/s, "
              f"CPU {r.cpu_ms(r.cpu + max(r.db_cpu, 0.0)) / p.cpu_ms(p.cpu):.2f}x per message")  # fmt: skip
    for target in dict.fromkeys(r.target for r in results if r.target != "postfix"):
        verdicts = []
        for row in ROWS:
            s = next(
                (r for r in results if (r.target, r.row, r.client) == (target, row, "smtp-source")), None
            )
            p = postfix.get((row, "smtp-source"))
            if s is None or p is None:
                verdicts.append(f"{row}: n/a")
            else:
                verdicts.append(f"{row}: {'met' if s.rate >= p.rate else 'NOT met'}")
        print(f"goal ({target} accepted/s >= postfix's, smtp-source): {'; '.join(verdicts)}")


if __name__ == "__main__":
    main()
