"""Several ``sesame serve`` nodes on one PostgreSQL database, and what the multi-node tests count.

Each node is its own process with its own data directory (so its own Firehose files), named by
``--node-id``; all share one ``SESAME_SECRET_KEY`` and no file at all. A node can be SIGKILLed and
started again (new ports: port 0) while other threads submit mail to the nodes that are up.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import smtplib
import ssl
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from sesame.testing.servers import SesameProcess, sesame_cli
from tests.conftest import query_url

#: Seconds a node may take to start: several start at once, on a machine that may be running the rest of
#: the test suite beside them (30 s was not enough for six under `pytest -n 2` on a loaded 2-core box).
STARTUP_TIMEOUT = 120.0
UNVERIFIED = ssl._create_unverified_context()  # each node makes its own self-signed certificate
_MESSAGE_ID = re.compile(rb"^Message-ID: <([^@>]+)@", re.MULTILINE | re.IGNORECASE)


def generate_secret_key() -> str:
    """A key the way an operator makes one: ``sesame secret-key generate``."""
    done = subprocess.run(
        [sys.executable, "-m", "sesame", "secret-key", "generate"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout.strip()


@dataclass
class Node:
    id: str
    data_dir: Path
    proc: SesameProcess | None = None


class Cluster:
    """Nodes by id; ``up()`` is a snapshot of those running, safe to call from any thread."""

    def __init__(self, database: str, root: Path, env: dict[str, str], ids: tuple[str, ...]) -> None:
        self.database = database
        self.env = env
        self.nodes = {i: Node(i, root / i) for i in ids}
        self._lock = threading.Lock()
        self._restarts: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self.started: list[tuple[str, float, float]] = []  # node, monotonic times: asked, ready
        self.killed: list[tuple[str, float]] = []  # node, monotonic time

    def start(self, node_id: str) -> SesameProcess:
        """Start the node; its EHLO name is its id, so that the sink tells which node sent what."""
        node = self.nodes[node_id]
        env = {**self.env, "SESAME_DELIVERY__HELO_NAME": node_id}
        began = time.monotonic()
        proc = SesameProcess(
            "serve",
            data_dir=node.data_dir,
            database=self.database,
            env=env,
            args=["--node-id", node_id],
            startup_timeout=STARTUP_TIMEOUT,
        ).start()
        with self._lock:
            node.proc = proc
            self.started.append((node_id, began, time.monotonic()))
        return proc

    def start_all(self, *alongside: Callable[[], Any]) -> list[Any]:
        """All nodes at once, as a deployment comes up (they migrate the fresh database together), and
        ``alongside`` meanwhile (commands, say); what those returned."""
        errors: list[BaseException] = []
        results: list[Any] = [None] * (len(alongside) + len(self.nodes))

        def one(index: int, work: Callable[[], Any]) -> None:
            try:
                results[index] = work()
            except BaseException as exc:  # re-raised below, in the test's thread
                errors.append(exc)

        work = [*alongside, *(functools.partial(self.start, i) for i in self.nodes)]
        threads = [threading.Thread(target=one, args=(i, w)) for i, w in enumerate(work)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        return results[: len(alongside)]

    def kill(self, node_id: str) -> None:
        node = self.nodes[node_id]
        with self._lock:
            proc, node.proc = node.proc, None
        if proc is not None:
            proc.kill()
            self.killed.append((node_id, time.monotonic()))

    def kill_and_restart(self, node_id: str) -> None:
        """SIGKILL the node, then start it again in a thread of its own (``wait_up`` waits for it)."""
        self.kill(node_id)

        def restart() -> None:
            try:
                self.start(node_id)
            except BaseException as exc:  # raised by the next wait_up, in the test's thread
                self._errors.append(exc)

        thread = threading.Thread(target=restart, name=f"restart-{node_id}")
        thread.start()
        self._restarts.append(thread)

    def wait_up(self, *node_ids: str, at_least: int = 1, timeout: float = STARTUP_TIMEOUT + 30) -> None:
        """Until those nodes run, and at least ``at_least`` in all."""
        deadline = time.monotonic() + timeout
        while True:
            if self._errors:
                raise self._errors[0]
            up = dict(self.up())
            if all(i in up for i in node_ids) and len(up) >= at_least:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"nodes up after {timeout}s: {sorted(up)}")
            time.sleep(0.05)

    def up(self) -> list[tuple[str, SesameProcess]]:
        with self._lock:
            return [(n.id, n.proc) for n in self.nodes.values() if n.proc is not None]

    def stop(self) -> None:
        for thread in self._restarts:  # a node being started again is stopped too
            thread.join(60)
        procs = [p for _, p in self.up()]
        for p in procs:  # SIGTERM to all first: they stop side by side
            if p.proc is not None and p.proc.poll() is None:
                p.proc.terminate()
        for p in procs:
            p.stop()

    def cli(self, *args: str) -> str:
        first = next(iter(self.nodes.values()))
        return sesame_cli(*args, data_dir=first.data_dir, database=self.database, env=self.env)

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return query_url(self.database, sql, **params)

    def published(self) -> list[dict[str, Any]]:
        """Every record in every node's Firehose files (``DATA_DIR/firehose/<stream>/*.jsonl``); a last
        line without its newline is being written as we read, and is left for the next look."""
        return [
            json.loads(line)
            for node in self.nodes.values()
            for path in sorted(node.data_dir.glob("firehose/*/*.jsonl"))
            for line in path.read_text().split("\n")[:-1]
        ]


@contextmanager
def cluster(database: str, root: Path, env: dict[str, str], ids: tuple[str, ...]) -> Iterator[Cluster]:
    """The nodes, not started yet; all stopped at the end."""
    nodes = Cluster(database, root, env, ids)
    try:
        yield nodes
    finally:
        nodes.stop()


def sink_message_ids(messages: list[Any]) -> Counter[str]:
    """How many times the sink received each SES MessageId (the Message-ID field Sesame writes)."""
    found: Counter[str] = Counter()
    for m in messages:
        head = m.data.split(b"\r\n\r\n", 1)[0]
        if match := _MESSAGE_ID.search(head):
            found[match[1].decode()] += 1
    return found


@dataclass
class Submission:
    kind: str  # "api" or "smtp"
    node: str
    recipient: str
    message_id: str | None  # None: refused or cut off (the node died, the connection broke)
    error: str = ""


@dataclass
class Sender:
    """An account in production with a verified domain and a configuration set whose Firehose
    destination takes SEND and DELIVERY records; it submits through any node, by API or SMTP."""

    account: dict[str, str]
    domain: str
    configuration_set: str
    results: list[Submission] = field(default_factory=list)

    @property
    def accepted(self) -> dict[str, Submission]:
        return {s.message_id: s for s in self.results if s.message_id}

    def api(self, endpoint: str) -> Any:
        return boto3.session.Session().client(
            "sesv2",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.account["AccessKeyId"],
            aws_secret_access_key=self.account["SecretAccessKey"],
            config=Config(retries={"max_attempts": 1}, connect_timeout=3, read_timeout=15),
        )

    def smtp(self, proc: SesameProcess) -> smtplib.SMTP:
        host, port = proc.listeners["smtp"]
        client = smtplib.SMTP(host, port, timeout=15)
        try:
            client.starttls(context=UNVERIFIED)
            client.login(self.account["AccessKeyId"], self.account["SmtpPassword"])
        except BaseException:
            client.close()
            raise
        return client

    def send_api(self, v2: Any, node: str, recipient: str) -> Submission:
        try:
            message_id = v2.send_email(
                FromEmailAddress=f"me@{self.domain}",
                Destination={"ToAddresses": [recipient]},
                Content={"Simple": {"Subject": {"Data": "by API"}, "Body": {"Text": {"Data": recipient}}}},
                ConfigurationSetName=self.configuration_set,
            )["MessageId"]
        except Exception as exc:
            return self._record(Submission("api", node, recipient, None, repr(exc)))
        return self._record(Submission("api", node, recipient, message_id))

    def send_smtp(self, client: smtplib.SMTP, node: str, recipient: str) -> Submission:
        """MAIL, RCPT, DATA by hand: the 250 reply to DATA carries the MessageId (``250 Ok <id>``)."""
        raw = (
            f"From: me@{self.domain}\r\nTo: {recipient}\r\nSubject: by SMTP\r\n"
            f"X-SES-CONFIGURATION-SET: {self.configuration_set}\r\n\r\n{recipient}\r\n"
        ).encode()
        try:
            for code, reply in (client.mail(f"me@{self.domain}"), client.rcpt(recipient)):
                if code != 250:
                    raise smtplib.SMTPResponseException(code, reply)
            code, reply = client.data(raw)
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
        except Exception as exc:
            return self._record(Submission("smtp", node, recipient, None, repr(exc)))
        return self._record(Submission("smtp", node, recipient, reply.decode().split()[-1]))

    def _record(self, s: Submission) -> Submission:
        self.results.append(s)  # list.append is atomic: the submitting threads share the list
        return s


#: Settings (for ``serve_env``) that make new accounts production ones without limits: no
#: ``accounts update`` is needed.
PRODUCTION = {
    "ACCOUNTS__SANDBOX": "false",
    "ACCOUNTS__MAX_SEND_RATE": "-1",
    "ACCOUNTS__MAX_24_HOUR_SEND": "-1",
}


def start_with_sender(nodes: Cluster, dns_server: Any) -> Sender:
    """Start the nodes, with an account made meanwhile (``sesame accounts create``); then its domain,
    verified through the test DNS server, and the configuration set, through the first node's API."""
    (created,) = nodes.start_all(lambda: nodes.cli("accounts", "create", "nodes"))
    account = json.loads(created)
    sender = Sender(account, "from.nodes.test", "observed")
    v2 = sender.api(nodes.up()[0][1].endpoint)
    try:
        # Easy DKIM with a key of our own (BYODKIM): the record to publish is known without asking
        # Sesame for it, as a user of SES publishes it.
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        der = key.private_bytes(Encoding.DER, PrivateFormat.PKCS8, NoEncryption())
        v2.create_email_identity(
            EmailIdentity=sender.domain,
            DkimSigningAttributes={
                "DomainSigningSelector": "nodes",
                "DomainSigningPrivateKey": base64.b64encode(der).decode(),
            },
        )
        public = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        txt = f'"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}"'
        dns_server.add(f"nodes._domainkey.{sender.domain}", "TXT", txt)
        assert v2.get_email_identity(EmailIdentity=sender.domain)["VerificationStatus"] == "SUCCESS"
        v2.create_configuration_set(ConfigurationSetName=sender.configuration_set)
        v2.create_configuration_set_event_destination(
            ConfigurationSetName=sender.configuration_set,
            EventDestinationName="files",
            EventDestination={
                "Enabled": True,
                "MatchingEventTypes": ["SEND", "DELIVERY"],
                "KinesisFirehoseDestination": {
                    "IamRoleArn": "arn:aws:iam::000000000000:role/x",
                    "DeliveryStreamArn": "arn:aws:firehose:us-east-1:000000000000:deliverystream/ses-nodes",
                },
            },
        )
    finally:
        v2.close()
    return sender


def wait_until_settled(nodes: Cluster, sink: Any, accepted: set[str], timeout: float) -> None:
    """Until every accepted message reached the sink and its Send and Delivery records are in the
    Firehose files, and nothing is left in the queue or the outbox (mail committed by a node that died
    before answering included), so that the counts read next are final."""
    deadline = time.monotonic() + timeout
    while True:
        delivered = set(sink_message_ids(sink.messages))
        published = {(r["mail"]["messageId"], r["eventType"]) for r in nodes.published()}
        missing_mail = accepted - delivered
        missing_records = {(m, t) for m in accepted for t in ("Send", "Delivery")} - published
        (pending,) = nodes.query(
            "SELECT (SELECT count(*) FROM queue"
            "   WHERE domain = 'dest.test' AND state != 'delivered') AS queue,"
            " (SELECT count(*) FROM events WHERE NOT dispatched) AS events,"
            " (SELECT count(*) FROM publications WHERE state != 'published') AS outbox"
        )
        if not missing_mail and not missing_records and not any(pending.values()):
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"after {timeout}s: {len(missing_mail)} accepted messages not delivered"
                f" ({sorted(missing_mail)[:5]}), {len(missing_records)} records not published"
                f" ({sorted(missing_records)[:5]}), left unsettled: {pending}"
            )
        time.sleep(0.2)


@dataclass(frozen=True)
class Twice:
    """A message the sink received more than once."""

    message_id: str
    senders: list[str]  # the nodes that sent its copies (their EHLO names), in order
    kill: int | None  # the kill of the first sender after the first copy (index in Cluster.killed)
    #: For each copy but the last: how long after it its sender was killed (None: it was not).
    after: list[float | None]


def sent_twice(nodes: Cluster, messages: list[Any]) -> list[Twice]:
    copies: dict[str, list[Any]] = {}
    for m in messages:
        head = m.data.split(b"\r\n\r\n", 1)[0]
        if match := _MESSAGE_ID.search(head):
            copies.setdefault(match[1].decode(), []).append(m)
    found = []
    for message_id, got in copies.items():
        if len(got) > 1:
            afters: list[float | None] = []
            first_kill = None
            for n, copy in enumerate(got[:-1]):
                killed = enumerate(nodes.killed)
                kills = [(t, i) for i, (node, t) in killed if node == copy.helo and t >= copy.received_at]
                t, kill = min(kills) if kills else (None, None)
                afters.append(None if t is None else t - copy.received_at)
                first_kill = kill if n == 0 else first_kill
            found.append(Twice(message_id, [m.helo for m in got], first_kill, afters))
    return found
