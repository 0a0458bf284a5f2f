"""Typed settings: defaults, then a TOML file (``--config``), then ``SESAME_*`` environment variables,
then command-line flags, each later source overriding the earlier ones.

Unknown keys in the file are an error, so a typo never silently does nothing.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sesame.errors import ConfigError

Mode = Literal["dev", "serve"]

#: What a process can be given to do (``sesame serve --roles``), in the order they are named:
#: api: the HTTP listener (SES and SNS APIs, console, tracking links, /health, /metrics);
#: smtp: the submission listeners (``smtp`` and ``smtps``); mx: the receiving listener;
#: delivery: the delivery queue; events: publishing event records and SNS deliveries;
#: receiving: what follows a received message's 250 (verdicts, receipt actions, feedback);
#: jobs: bulk import and export jobs, and the periodic DNS checks (identities, VDM).
ROLES = ("api", "smtp", "mx", "delivery", "events", "receiving", "jobs")

#: ``SESAME_*`` variables that are not settings: read where they are used (the secrets stay out of the
#: Settings object, which is logged and passed around), or by the test suite.
NOT_SETTINGS = frozenset(
    {"SESAME_SECRET_KEY", "SESAME_ADMIN_TOKEN", "SESAME_TEST_DATABASE", "SESAME_TEST_POSTGRES"}
)


@dataclass
class AccountDefaults:
    """What a new account (and each region it first uses) starts with in ``serve`` mode.

    SES gives a new account the sandbox, 200 messages per 24 hours and 1 message per second.
    ``dev`` mode ignores these and gives every account production access without limits.
    """

    sandbox: bool = True
    max_24_hour_send: float = 200.0
    max_send_rate: float = 1.0


@dataclass
class DnsSettings:
    """Where Sesame looks things up (identity verification, later MX routing)."""

    #: "HOST" or "HOST:PORT" entries; empty means the system resolver (/etc/resolv.conf). Tests point
    #: this at a DNS server of their own on loopback.
    nameservers: list[str] = field(default_factory=list)
    #: Seconds one lookup may take before it counts as a temporary failure.
    timeout: float = 5.0


@dataclass
class IdentitySettings:
    #: How often pending identities are looked up again in DNS (seconds).
    recheck_interval: float = 300.0
    #: A GetEmailIdentity / GetIdentityVerificationAttributes looks a pending identity up at once, but
    #: not more often than this (seconds), so polling clients do not hammer DNS.
    min_lookup_interval: float = 5.0
    #: SES gives up on a pending identity after 72 hours (status Failed).
    verification_timeout_hours: float = 72.0
    #: RSA key length for new Easy DKIM keys (SES: RSA_2048_BIT by default, RSA_1024_BIT on request).
    dkim_key_bits: int = 2048
    #: The sender of address-verification emails; empty means no-reply@ this machine's name.
    verification_from: str = ""
    #: At most one verification email per account and region this often (seconds): SES runs
    #: VerifyEmailIdentity, VerifyEmailAddress, CreateEmailIdentity and SendCustomVerificationEmail "no
    #: more than once per second", and each email is mail to a stranger sent on the account's behalf.
    verification_email_interval: float = 1.0
    #: The host a custom MAIL FROM domain's MX must name (where bounces come back); empty means this
    #: machine's fully qualified name.
    mail_from_mx: str = ""


@dataclass
class DeliverySettings:
    """The delivery engine (``serve`` mode; ``dev`` mode captures instead of delivering)."""

    #: "smtp" delivers to the recipients' mail servers; "capture" keeps messages (dev mode's default).
    mode: str = ""
    #: Run the delivery engine in this process. Off on API-only nodes (another node on the same
    #: PostgreSQL delivers) and in tests that look at the queue itself.
    enabled: bool = True
    #: Port of the MX hosts (25; tests point it at their sink servers).
    mx_port: int = 25
    #: Per-domain transport map: {"example.test" = "smtp:[127.0.0.1]:2525"} or "host:port".
    routes: dict[str, str] = field(default_factory=dict)
    #: Send everything through one relay ("host:port"), bypassing MX lookups.
    smarthost: str = ""
    #: The relay's credentials (AUTH PLAIN/LOGIN), if it wants them.
    smarthost_username: str = ""
    smarthost_password: str = ""
    #: "opportunistic" (STARTTLS when offered), "starttls" (required), or "tls" (implicit TLS, port 465).
    smarthost_tls: str = "opportunistic"
    #: The name given in EHLO; empty means this machine's fully qualified name.
    helo_name: str = ""
    #: The domain of the envelope sender (return path) of mail whose sending identity has no verified
    #: custom MAIL FROM domain: ``<message id>@<this domain>`` (VERP), so that a bounce or complaint
    #: that comes back later names its message, as SES's ``<id>@amazonses.com`` does. Its MX must be
    #: Sesame's (the ``mx`` role), which hands such mail to the feedback processor. Empty: such mail
    #: goes out with the sender's own address as its return path, and its late bounces go there.
    return_path_domain: str = ""
    #: Scan every accepted message for viruses with ``receiving.clamd``, as SES scans all outgoing
    #: mail: a message with a virus is accepted (its MessageId returned) and never sent, and publishes
    #: a Reject record. A scanner that cannot be asked lets the message through (and says so in the log).
    virus_scan: bool = False
    #: Messages delivered at once by one process.
    concurrency: int = 16
    #: How long a claimed queue entry stays ours; a worker that dies loses its claim after this.
    lease_seconds: float = 300.0
    #: How often a process looks for due retries and other nodes' mail, besides being woken by its own.
    poll_interval: float = 1.0
    #: First retry after this many seconds, doubling (with jitter) up to ``retry_max``.
    retry_base: float = 60.0
    retry_max: float = 3600.0
    #: SES keeps retrying for about 12 hours, then bounces (Transient); MaxDeliverySeconds lowers it.
    max_age_seconds: float = 12 * 3600.0
    #: Connections are reused per destination address: at most this many open to one address, each
    #: carrying at most ``max_messages_per_connection``, closed after ``idle_seconds`` unused.
    max_connections_per_site: int = 10
    max_messages_per_connection: int = 100
    idle_seconds: float = 5.0
    #: Messages per second to one destination address (0: no limit).
    max_rate_per_site: float = 0.0
    #: Per recipient domain overrides of the three limits above, e.g.
    #: {"example.com" = "connections=2;rate=5;messages=20"}.
    sites: dict[str, str] = field(default_factory=dict)
    #: After a throttling reply (421, or 4.7.x / 451 speaking of rates or too many connections), new
    #: deliveries to that address wait this long, doubling while the throttling goes on (up to 10 min).
    throttle_backoff: float = 30.0
    #: This node's source addresses that accounts may put in their dedicated IP pools (GetDedicatedIps
    #: lists them); mail of a configuration set with a SendingPoolName leaves from that pool's addresses.
    dedicated_ips: list[str] = field(default_factory=list)
    #: SMTP timeouts (seconds).
    connect_timeout: float = 30.0
    command_timeout: float = 120.0


@dataclass
class SnsSettings:
    """Sesame's own SNS: how its delivery loop sends to HTTP/S and email subscribers (every mode)."""

    #: Deliveries in flight at once in one process.
    concurrency: int = 32
    #: How long a claimed delivery stays this process's; a process that dies loses its claims after
    #: this, and another delivers them. Longer than ``http_timeout``, or a slow endpoint gets it twice.
    lease_seconds: float = 60.0
    #: How long an HTTP/S subscriber has to answer one POST before it counts as failed (and is retried).
    http_timeout: float = 15.0
    #: How often a process looks for due retries and other nodes' deliveries, besides being woken.
    poll_interval: float = 1.0


@dataclass
class TemplateSettings:
    """Limits on rendering a template (SES publishes none; honest templates stay far below them)."""

    #: Evaluation steps one rendering may take: a step is a block body or partial entered, or a node in
    #: it. A 5,000-row table renders in about 100,000; nested loops over one list multiply without end.
    max_render_steps: int = 2_000_000
    #: Seconds of wall-clock time the renderings of one request may take, waiting for a render thread
    #: included. Big renderings run off the event loop, so this bounds the request, not the server.
    render_seconds: float = 5.0


@dataclass
class TrackingSettings:
    """Open and click tracking (reference §6.7): its endpoints are served under ``public_url`` or a
    configuration set's CustomRedirectDomain."""

    #: Days after a message was sent during which its opens and clicks are recorded (SES: 60); later
    #: ones still get the pixel and the redirect, and record nothing.
    collect_days: int = 60
    #: A click this many seconds or fewer after the message was delivered (accepted, if never delivered)
    #: is marked as a machine's: link scanners fetch every link as the message arrives. 0: never.
    machine_click_seconds: float = 10.0


@dataclass
class SmtpSettings:
    """The SES SMTP interface: submission with STARTTLS (``listen``) and implicit TLS (``listen_tls``);
    and the MX (``listen_mx``), which receives mail. Limits and timeouts apply to each listener."""

    #: HOST:PORT of the STARTTLS listener (SES: 25, 587, 2587) and of the implicit-TLS one (SES: 465,
    #: 2465); "off" disables one, port 0 picks a free port.
    listen: str = "127.0.0.1:2587"
    listen_tls: str = "127.0.0.1:2465"
    #: HOST:PORT of the MX, where mail for receiving domains and bounces and complaints come in
    #: (production: port 25); "off" disables it. STARTTLS is offered with the same certificate.
    listen_mx: str = "127.0.0.1:2525"
    #: The server's certificate and key (PEM files); empty: a self-signed pair made in the data dir.
    tls_cert: str = ""
    tls_key: str = ""
    #: The name in the greeting and the EHLO reply; empty means this machine's host name.
    hostname: str = ""
    #: The region whose SMTP passwords are accepted, and where mail is sent (default: default_region).
    region: str = ""
    #: ``serve`` offers AUTH only over TLS, as SES does; true lifts that (for loopback-only setups).
    allow_plaintext_auth: bool = False
    #: Networks whose connections send without AUTH, as an account: {"10.0.0.0/8" = "123456789012"}.
    #: For internal relays and load generators; nothing is trusted unless listed here.
    trusted_networks: dict[str, str] = field(default_factory=dict)
    #: Open sessions in all, and from one client address; one more is answered 421 and closed.
    max_connections: int = 1000
    max_connections_per_ip: int = 100
    #: Seconds a client may stay silent (waiting for a command or for message data) before it is
    #: answered 451 4.4.2 and disconnected. RFC 5321 §4.5.3.2.7 asks 5 minutes; SES gives about 10 s.
    idle_timeout: float = 60.0


@dataclass
class AwsSettings:
    """Where ARNs lead: the AWS-compatible endpoint (real AWS, LocalStack, moto) that event
    destinations, notification topics and, later, buckets and functions are reached at. With no
    endpoint, Sesame's own stand-ins serve: its SNS topics, Firehose streams as files under
    ``DATA_DIR/firehose/``, CloudWatch metrics at ``/metrics``."""

    #: One endpoint for every service, e.g. ``http://localhost:4566``; empty: none.
    endpoint_url: str = ""
    #: Per-service overrides of ``endpoint_url``: ``sns``, ``events``, ``firehose``, ``cloudwatch``,
    #: ``s3`` (receipt rules' S3 actions; none: the local store ``DATA_DIR/objects/``), ``lambda``.
    endpoints: dict[str, str] = field(default_factory=dict)
    #: The credentials requests to that endpoint are signed with (SigV4, by botocore).
    access_key_id: str = ""
    secret_access_key: str = ""

    def endpoint(self, service: str) -> str:
        return self.endpoints.get(service) or self.endpoint_url


@dataclass
class EventSettings:
    """Event publishing (events/publisher.py)."""

    #: Seconds between looks for new records when nothing woke the publisher.
    poll_interval: float = 0.5
    #: Seconds a publisher holds claimed records before another may take them.
    lease_seconds: float = 60.0
    #: Records claimed and published together.
    batch: int = 200
    #: While this process delivers mail, each publisher (events, SNS deliveries) keeps to this share of
    #: the time, so that a burst is delivered at full speed and its records follow (events/pacing.py);
    #: 1: publish side by side with delivery. A publisher never waits longer than
    #: ``delivery_first_max_wait`` seconds between two batches.
    delivery_share: float = 0.05
    delivery_first_max_wait: float = 10.0


@dataclass
class ReputationSettings:
    """Bounce and complaint rates and SES's enforcement (domain/reputation.py; reference §3.5).

    A rate is outcomes of the mail sent in a window over the recipients of that mail: the newest hours
    that hold ``window_sends`` recipients, but no more than ``window_hours`` back (and nothing from
    before the operator last reinstated the account). Mailbox-simulator and verified recipients never
    count; bounces are hard bounces, not those of the account's own suppression list.
    """

    #: Change EnforcementStatus (PROBATION, SHUTDOWN) and pause sending at the thresholds below; off,
    #: the rates are still computed and exposed.
    enforce: bool = True
    #: Bounce rate at which the account is put under review (PROBATION) and at which sending is paused
    #: (SHUTDOWN, until ``sesame accounts update ID --reinstate``). SES: 5% and 10%.
    bounce_review: float = 0.05
    bounce_pause: float = 0.10
    #: The same for the complaint rate. SES: 0.1% and 0.5%.
    complaint_review: float = 0.001
    complaint_pause: float = 0.005
    #: No enforcement before the window holds this many recipients: one complaint in 1,000 is the
    #: lowest threshold (0.1%), so fewer say nothing about a sender, and a few test sends cannot pause it.
    min_sends: int = 1000
    #: The window's size: the newest recipients counted (a busy sender's rate follows its recent mail)…
    window_sends: int = 10_000
    #: …but at most this many hours back (a quiet sender's rate covers all its recent mail).
    window_hours: int = 168
    #: Tenants' reputation entities (domain/reputation_entities.py) are judged on the same rules and
    #: window, from this many recipients of the tenant's mail on (a tenant is often a small sender):
    #: a finding is LOW at the review rates above and HIGH at the pause rates; the ``standard`` policy
    #: pauses the tenant on a HIGH finding, ``strict`` on any, ``none`` never.
    entity_min_sends: int = 1000


@dataclass
class VdmSettings:
    """Virtual Deliverability Manager (domain/vdm.py, domain/advisor.py)."""

    #: Seconds between DNS checks of an account's domain identities for ListRecommendations (by the
    #: background pass, or by a call that finds the last check older). SES takes up to six hours.
    recommendations_interval: float = 3600.0
    #: Sends (for the bounce rate) or deliveries to providers with feedback loops (for the complaint
    #: rate) an identity needs over two weeks before the Advisor judges its rates.
    recommendation_min_volume: int = 100
    #: Seconds between the background pass's rounds (recipient domains' MX, recommendations).
    pass_interval: float = 60.0


@dataclass
class ReceivingSettings:
    """Receiving mail (reference §10): the scanners behind a receipt rule's ScanEnabled, and where
    Lambda functions named by receipt rules are reached.

    With no scanner configured a scanned message's spam and virus verdicts are GRAY (undetermined),
    and the log says why; a configured scanner that cannot be reached gives PROCESSING_FAILED.
    """

    #: Lambda functions reached over plain HTTP: {"<function ARN>" = "http://host:port/path"}. The
    #: receipt action POSTs its event there as JSON and, for RequestResponse, reads the function's
    #: result from the reply. A function not listed here goes to ``aws.endpoints.lambda``.
    functions: dict[str, str] = field(default_factory=dict)
    #: "HOST:PORT" of SpamAssassin's spamd (SPAMC/SPAMD protocol); empty: no spam scanning.
    spamd: str | None = None
    #: "HOST:PORT" of ClamAV's clamd (INSTREAM); empty: no virus scanning.
    clamd: str | None = None
    #: DNS blocklist zones (e.g. "zen.spamhaus.org") the client address is looked up in, through the
    #: ``dns`` resolver; a listed client makes the spam verdict FAIL.
    dnsbl: list[str] = field(default_factory=list)
    #: Seconds one scanner may take (connecting, sending the message, answering).
    scan_timeout: float = 10.0
    #: Hours a received message is kept once its rules have run (``serve``; dev mode keeps all until
    #: DELETE /_sesame/inbound). SendBounce needs it for 24 hours; 0 keeps messages for ever.
    retention_hours: float = 72.0


@dataclass
class JobsSettings:
    """Bulk jobs (reference §7.2, §11.2, §12.5): CreateImportJob and CreateExportJob, run in the
    background by every process that has ``enabled``, claimed with leases so that a job whose process
    died is taken up, where it stopped, by another once its lease runs out."""

    #: Run jobs in this process. Several processes on one PostgreSQL share the work.
    enabled: bool = True
    #: Jobs one process runs at once.
    concurrency: int = 2
    #: Seconds a claimed job stays this process's without news; each batch written renews it.
    lease_seconds: float = 60.0
    #: How often a process looks for jobs (besides being woken by one it created itself).
    poll_interval: float = 1.0
    #: Records an import writes per transaction; its progress (ProcessedRecordsCount,
    #: FailedRecordsCount) is saved with each.
    batch: int = 5000
    #: Tries of a job whose process died or whose source could not be read, before it is FAILED.
    max_attempts: int = 5
    #: The bucket (of the local object store, or of ``aws.endpoints.s3``) where export files and
    #: failed-records files are written; SES keeps them in a place it manages, as this one is.
    bucket: str = "sesame-jobs"
    #: Seconds the URLs GetExportJob and GetImportJob give for those files stay valid (SES: five
    #: minutes; call again for a fresh one).
    url_expiry: int = 300


@dataclass
class ConsoleSettings:
    """The web console at ``/console/`` (``/`` opens it in a browser)."""

    enabled: bool = True
    #: Hours a signed-in session lasts; signing in again starts a new one.
    session_hours: float = 12.0
    #: Rows a list page shows.
    page_size: int = 50
    #: Messages one text search of an account's sent messages reads (the newest, from where its page
    #: starts; "Search older messages" goes on): no index helps a substring, so this bounds its time.
    search_window: int = 5_000
    #: Where the dev inbox's "Release" sends a captured message ("host:port" of an SMTP server, e.g.
    #: Mailpit); empty means the form asks for one. ``sesame dev --relay HOST:PORT`` sets it.
    relay: str = ""


@dataclass
class Settings:
    mode: Mode = "dev"
    #: The roles this process takes (see ROLES); empty means all of them.
    roles: list[str] = field(default_factory=list)
    #: This node's name in leases, logs, the nodes table and the console; empty means HOST:PID.
    node_id: str = ""
    #: Processes of these roles run on this machine, sharing the listeners (``serve`` only); each is a
    #: node of its own, named NODE_ID/1, NODE_ID/2, ... when ``node_id`` is set.
    workers: int = 1
    #: Where the SQLite database, the secret-encryption key and blobs live.
    data_dir: Path = Path(".sesame")
    #: SQLAlchemy URL; empty means SQLite in ``data_dir``. ``postgresql://`` URLs use asyncpg.
    database: str = ""
    #: HOST:PORT of the HTTP listener (AWS API, console, /health, /metrics, dev endpoints); port 0 picks
    #: a free port. A node without the api role serves only /health and /metrics on it; "off": none.
    http: str = "127.0.0.1:4587"
    #: The URL people reach this server's HTTP listener at (verification links, open and click tracking
    #: without a CustomRedirectDomain); empty means
    #: ``http://`` + the ``http`` setting.
    public_url: str = ""
    #: The region assumed when a request names none (unsigned dev requests).
    default_region: str = "us-east-1"
    #: The regions requests may be signed for, besides ``default_region``; others are refused
    #: (SignatureDoesNotMatch) in both modes, so that no one gets account state (sandbox, quota) in a
    #: region of their own invention. Empty means every region SES is offered in, per botocore.
    regions: list[str] = field(default_factory=list)
    #: In dev mode, an access key id that is not 12 digits maps to this account.
    default_account: str = "000000000000"
    #: Largest request body accepted; larger ones get 413 RequestEntityTooLarge. SES v2 accepts 40 MB
    #: messages, and base64 inside JSON inflates them by a third.
    max_request_bytes: int = 60 * 1024 * 1024
    #: Largest header block (names and values) accepted; larger ones get RequestHeaderSectionTooLarge.
    #: Blocks past 64 KB do not even reach Sesame: the HTTP parser answers 400 and closes.
    max_header_bytes: int = 16 * 1024
    #: Open HTTP connections one client address may hold; a request on one more is answered 503 and
    #: that connection closed. Far above a busy client's pool (the benchmarks run 64 at once).
    max_connections_per_address: int = 256
    #: Open HTTP connections and requests in progress in all, past which requests are answered 503
    #: and their connections closed. Keep it below the process's open-file limit (``ulimit -n``).
    max_connections: int = 4096
    #: Seconds a request's head (request line and header fields) may take in all, counted from the
    #: connection's opening or the end of the previous response, not reset by each byte: an idle or
    #: trickling client is then closed (with 408 if part of a head came).
    head_timeout: float = 20.0
    #: A body must arrive within ``body_timeout`` seconds plus one second per ``min_body_rate`` bytes
    #: received so far (0: none, the whole body within ``body_timeout``); slower, it is answered
    #: RequestTimeout and the connection closed.
    body_timeout: float = 30.0
    min_body_rate: float = 32 * 1024
    accounts: AccountDefaults = field(default_factory=AccountDefaults)
    dns: DnsSettings = field(default_factory=DnsSettings)
    identities: IdentitySettings = field(default_factory=IdentitySettings)
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    templates: TemplateSettings = field(default_factory=TemplateSettings)
    sns: SnsSettings = field(default_factory=SnsSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    aws: AwsSettings = field(default_factory=AwsSettings)
    events: EventSettings = field(default_factory=EventSettings)
    tracking: TrackingSettings = field(default_factory=TrackingSettings)
    reputation: ReputationSettings = field(default_factory=ReputationSettings)
    vdm: VdmSettings = field(default_factory=VdmSettings)
    receiving: ReceivingSettings = field(default_factory=ReceivingSettings)
    jobs: JobsSettings = field(default_factory=JobsSettings)
    console: ConsoleSettings = field(default_factory=ConsoleSettings)

    @property
    def database_url(self) -> str:
        if self.database:
            url = self.database
            # The user writes the ordinary URL; the async drivers are an implementation detail.
            if url.startswith(("postgresql://", "postgres://")):
                url = "postgresql+asyncpg://" + url.split("://", 1)[1]
            elif url.startswith("sqlite:///"):
                url = "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
            return url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'sesame.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def runs(self, role: str) -> bool:
        """Whether this process takes ``role`` (one of ROLES)."""
        return not self.roles or role in self.roles

    @property
    def node_name(self) -> str:
        return self.node_id or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def http_enabled(self) -> bool:
        return self.http.lower() != "off"

    def http_address(self) -> tuple[str, int]:
        """Where the HTTP listener binds (``http = "off"``: none; the address is the default's)."""
        return _address("http", self.http if self.http_enabled else Settings.http)

    @property
    def smtp_region(self) -> str:
        """The region whose SMTP passwords the SMTP listeners accept, and where their mail is sent."""
        return self.smtp.region or self.default_region

    def smtp_addresses(self) -> dict[str, tuple[str, int]]:
        """The SMTP listeners to open, by the name they are announced with ("smtp", "smtps", "mx")."""
        wanted = {
            "smtp": ("smtp.listen", self.smtp.listen),
            "smtps": ("smtp.listen_tls", self.smtp.listen_tls),
            "mx": ("smtp.listen_mx", self.smtp.listen_mx),
        }
        addresses = {n: _address(key, value) for n, (key, value) in wanted.items() if value.lower() != "off"}
        return {n: a for n, a in addresses.items() if self.runs("mx" if n == "mx" else "smtp")}


def _address(name: str, value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"{name} must be HOST:PORT, not {value!r}")
    return host.strip("[]"), int(port)


def _apply(target: Any, values: dict[str, Any], where: str) -> None:
    known = {f.name: f for f in dataclasses.fields(target)}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"{where}: unknown setting {key!r}")
        current = getattr(target, name)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a table")
            _apply(current, value, f"{where}.{key}")
        elif isinstance(current, dict):
            if isinstance(value, str):  # from the environment: "a=b,c=d"
                value = dict(item.split("=", 1) for item in value.split(",") if "=" in item)
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: {key} must be a table")
            setattr(target, name, {str(k): str(v) for k, v in value.items()})
        elif isinstance(current, list):
            if isinstance(value, str):  # from the environment: comma-separated
                value = [v.strip() for v in value.split(",") if v.strip()]
            if not isinstance(value, list):
                raise ConfigError(f"{where}: {key} must be a list")
            setattr(target, name, value)
        elif isinstance(current, Path):
            setattr(target, name, Path(value))
        elif isinstance(current, bool):
            if isinstance(value, str):
                value = value.lower() in ("1", "true", "yes", "on")
            setattr(target, name, bool(value))
        elif isinstance(current, (int, float)) and not isinstance(current, bool):
            try:
                setattr(target, name, type(current)(value))
            except (TypeError, ValueError):
                raise ConfigError(f"{where}: {key} must be a number, not {value!r}") from None
        else:
            setattr(target, name, value)


def load(
    mode: Mode = "dev", config_file: Path | None = None, env: dict[str, str] | None = None, **flags: Any
) -> Settings:
    settings = Settings(mode=mode)
    if config_file is not None:
        try:
            data = tomllib.loads(Path(config_file).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {config_file}: {exc}") from exc
        _apply(settings, data, str(config_file))
    source: Mapping[str, str] = os.environ if env is None else env
    from_env: dict[str, Any] = {}
    for key, value in source.items():
        if key.startswith("SESAME_") and key not in NOT_SETTINGS:
            parts = key[len("SESAME_") :].lower().split("__")  # SESAME_ACCOUNTS__SANDBOX=false
            node = from_env
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = value
    _apply(settings, from_env, "environment")
    _apply(settings, {k: v for k, v in flags.items() if v is not None}, "command line")
    if settings.mode not in ("dev", "serve"):
        raise ConfigError(f"mode must be dev or serve, not {settings.mode!r}")
    settings.http_address()
    settings.smtp_addresses()
    unknown = [r for r in settings.roles if r not in ROLES]
    if unknown:
        raise ConfigError(f"roles: unknown role {unknown[0]!r} (roles are {', '.join(ROLES)})")
    if settings.workers < 1:
        raise ConfigError(f"workers must be 1 or more, not {settings.workers}")
    if settings.workers > 1 and settings.mode != "serve":
        raise ConfigError("workers: several processes are for sesame serve; sesame dev runs one")
    return settings
