"""The ``sesame`` command: dev, serve, accounts, identities, secret-key, queue, events, objects, jobs, db.

Every command takes the same ``--data-dir``/``--database``/``--config`` flags, so ``sesame accounts …``
works beside a running server on the same storage.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import sys
import tempfile
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import click

from sesame import config
from sesame.errors import ConfigError


def storage_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--config", "config_file", type=click.Path(path_type=Path), help="TOML settings file.")(
        fn
    )
    fn = click.option("--database", help="Database URL (default: SQLite in the data dir).")(fn)
    fn = click.option(
        "--data-dir", type=click.Path(path_type=Path), help="Data directory (default ./.sesame)."
    )(fn)
    return fn


def listener_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    fn = click.option("--mx", help="HOST:PORT for the MX, receiving mail (default 127.0.0.1:2525; off).")(fn)
    fn = click.option("--smtps", help="HOST:PORT for SMTP with implicit TLS (default 127.0.0.1:2465; off).")(
        fn
    )
    fn = click.option("--smtp", help="HOST:PORT for SMTP with STARTTLS (default 127.0.0.1:2587; off).")(fn)
    fn = click.option("--http", help="HOST:PORT for the API (default 127.0.0.1:4587; port 0 picks one).")(fn)
    return fn


def _settings(mode: config.Mode, **flags: Any) -> config.Settings:
    # --smtp, --smtps and --mx set the [smtp] table's listen, listen_tls and listen_mx.
    names = (("smtp", "listen"), ("smtps", "listen_tls"), ("mx", "listen_mx"))
    smtp = {key: flags.pop(flag) for flag, key in names if flags.get(flag)}
    for flag, _ in names:
        flags.pop(flag, None)
    if smtp:
        flags["smtp"] = smtp
    try:
        return config.load(mode, config_file=flags.pop("config_file", None), **flags)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


def _with_sesame(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run ``fn(sesame, **kw)`` on a migrated database whose secret key checked out, for the management
    commands."""

    @functools.wraps(fn)
    def wrapper(data_dir: Path | None, database: str | None, config_file: Path | None, **kw: Any) -> None:
        from sesame.runtime import Sesame

        settings = _settings("serve", data_dir=data_dir, database=database, config_file=config_file)
        sesame = Sesame(settings)

        async def go() -> None:
            await sesame.open()
            try:
                await fn(sesame, **kw)
            finally:
                await sesame.close()

        with _config_errors():
            asyncio.run(go())

    return wrapper


@contextlib.contextmanager
def _config_errors() -> Iterator[None]:
    """A ConfigError (a wrong secret key, say) is the user's to fix: its message and exit status 1, no
    traceback."""
    try:
        yield
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
@click.version_option(package_name="sesame")
def main() -> None:
    """Sesame: the Amazon SES APIs, self-hosted, delivering for real."""


@main.command()
@storage_options
@listener_options
@click.option(
    "--relay",
    metavar="HOST:PORT",
    help="Also send every message, through the delivery queue, to this SMTP server (e.g. Mailpit), and"
    " offer it for the inbox's Release; sets delivery.smarthost (delivery.mode smtp) and console.relay.",
)
def dev(**flags: Any) -> None:
    """Run for local development: SQLite, any access key, no sandbox, mail captured."""
    from sesame.cli import server

    relay = flags.pop("relay", None)
    if relay:
        host, _, port = relay.rpartition(":")
        if not host or not port.isdigit():
            raise click.BadParameter(f"{relay!r} is not HOST:PORT", param_hint="--relay")
        flags["console"] = {"relay": relay}
        # Mail is still kept and shown in the inbox; the queue hands it to the relay, with retries.
        flags["delivery"] = {"mode": "smtp", "smarthost": relay}
    with _config_errors():
        server.main(_settings("dev", **flags))


@main.command()
@storage_options
@listener_options
@click.option(
    "--roles",
    metavar="ROLE,...",
    help=f"What this node does, of {','.join(config.ROLES)} (default: all); a listener opens only"
    " with its role.",
)
@click.option(
    "--node-id", metavar="NAME", help="This node's name in leases, logs and the console (default HOST:PID)."
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    help="Processes of these roles on this machine, sharing the listeners.",
)
def serve(**flags: Any) -> None:
    """Run for production: SigV4 access keys, sandbox and quotas for new accounts."""
    if flags.get("roles") is not None:
        flags["roles"] = [r.strip() for r in flags["roles"].split(",") if r.strip()]
    settings = _settings("serve", **flags)
    if settings.workers > 1:
        # prometheus-client chooses where counters live when it is first imported (by the server
        # module): with workers, in files that a scrape of any worker sums (sesame.metrics).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="sesame-metrics-")
    from sesame.cli import server

    with _config_errors():
        server.main(settings)


@main.group()
def accounts() -> None:
    """Create, list and change accounts."""


@accounts.command("create")
@storage_options
@click.argument("name")
@click.option("--id", "account_id", help="A 12-digit account id (default: random).")
@_with_sesame
async def accounts_create(sesame: Any, name: str, account_id: str | None) -> None:
    """Create an account and its first access key; prints them as JSON."""
    try:
        new = await sesame.accounts.create(name, account_id)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    except Exception as exc:  # duplicate id
        if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
            raise click.ClickException(f"account {account_id} already exists") from exc
        raise
    click.echo(
        json.dumps({**new.as_json(), "SmtpPassword": _listener_password(sesame, new.secret_access_key)})
    )


def _listener_password(sesame: Any, secret: str) -> str:
    """The SMTP password of a key for the region the SMTP listeners serve (smtp-password gives others)."""
    from sesame.smtp.credentials import smtp_password

    return smtp_password(secret, sesame.settings.smtp_region)


@accounts.command("list")
@storage_options
@_with_sesame
async def accounts_list(sesame: Any) -> None:
    """List accounts as JSON."""
    click.echo(json.dumps(await sesame.accounts.list(), indent=2))


@accounts.command("create-key")
@storage_options
@click.argument("account_id")
@_with_sesame
async def accounts_create_key(sesame: Any, account_id: str) -> None:
    """Add an access key to an account; prints it as JSON."""
    from sesame.domain.accounts import AccountNotFound

    try:
        key_id, secret = await sesame.accounts.create_access_key(account_id)
    except AccountNotFound:
        raise click.ClickException(f"no account {account_id}") from None
    password = _listener_password(sesame, secret)
    new = {
        "AccountId": account_id,
        "AccessKeyId": key_id,
        "SecretAccessKey": secret,
        "SmtpPassword": password,
    }
    click.echo(json.dumps(new))


@accounts.command("smtp-password")
@storage_options
@click.argument("access_key_id")
@click.option("--region", help="The region whose SMTP endpoint takes the password (default: default_region).")
@_with_sesame
async def accounts_smtp_password(sesame: Any, access_key_id: str, region: str | None) -> None:
    """Print the SES SMTP credentials of an access key: the key id as user name, and the password SES
    derives from its secret for one region (the derivation is regional, as at SES)."""
    from sesame.awsapi.auth import accepted_regions
    from sesame.smtp.credentials import smtp_password

    region = region or sesame.settings.smtp_region
    if region not in accepted_regions(sesame.settings):
        raise click.ClickException(f"{region} is not one of the regions this server accepts")
    found = await sesame.accounts.credentials(access_key_id)
    if found is None:
        raise click.ClickException(f"no active access key {access_key_id}")
    password = smtp_password(found[1], region)
    click.echo(json.dumps({"SmtpUsername": access_key_id, "SmtpPassword": password, "Region": region}))


@accounts.command("disable-key")
@storage_options
@click.argument("access_key_id")
@_with_sesame
async def accounts_disable_key(sesame: Any, access_key_id: str) -> None:
    """Refuse an access key from its next request on, on every node (enable-key undoes it)."""
    await _change_key(sesame.accounts.set_key_status(access_key_id, False), access_key_id, "Inactive")


@accounts.command("enable-key")
@storage_options
@click.argument("access_key_id")
@_with_sesame
async def accounts_enable_key(sesame: Any, access_key_id: str) -> None:
    """Accept a disabled access key again."""
    await _change_key(sesame.accounts.set_key_status(access_key_id, True), access_key_id, "Active")


@accounts.command("delete-key")
@storage_options
@click.argument("access_key_id")
@_with_sesame
async def accounts_delete_key(sesame: Any, access_key_id: str) -> None:
    """Delete an access key for good."""
    await _change_key(sesame.accounts.delete_key(access_key_id), access_key_id, "Deleted")


async def _change_key(change: Awaitable[None], access_key_id: str, status: str) -> None:
    from sesame.domain.accounts import AccessKeyNotFound

    try:
        await change
    except AccessKeyNotFound:
        raise click.ClickException(f"no access key {access_key_id}") from None
    click.echo(json.dumps({"AccessKeyId": access_key_id, "Status": status}))


@accounts.command("update")
@storage_options
@click.argument("account_id")
@click.option("--sandbox/--production", default=None, help="Put the account in or out of the sandbox.")
@click.option("--max-send-rate", type=float, help="Messages per second (-1: unlimited).")
@click.option("--max-24-hour-send", type=float, help="Messages per 24 hours (-1: unlimited).")
@click.option(
    "--reinstate",
    is_flag=True,
    help="Lift enforcement: HEALTHY, sending enabled, bounce and complaint rates started afresh.",
)
@click.option("--region", help="Only this region (default: the account's defaults and every region).")
@_with_sesame
async def accounts_update(sesame: Any, account_id: str, reinstate: bool, **changes: Any) -> None:
    """Change sandbox status and quotas; reinstate an account paused for its rates."""
    from sesame.domain.accounts import AccountNotFound

    try:
        await sesame.accounts.update(account_id, **changes)
        if reinstate:
            await sesame.reputation.reinstate(account_id, changes.get("region"))
    except AccountNotFound:
        raise click.ClickException(f"no account {account_id}") from None
    listed = [a for a in await sesame.accounts.list() if a["AccountId"] == account_id]
    click.echo(json.dumps(listed[0]))


@accounts.command("reputation")
@storage_options
@click.argument("account_id", required=False)
@_with_sesame
async def accounts_reputation(sesame: Any, account_id: str | None) -> None:
    """Bounce and complaint rates (of accounts, and of configuration sets with reputation metrics) and
    each account's EnforcementStatus, as JSON."""
    rates = [r for r in await sesame.reputation.current() if account_id in (None, r["AccountId"])]
    for r in rates:
        if r["ConfigurationSet"] is None:
            row = await sesame.accounts.region(r["AccountId"], r["Region"])
            r["EnforcementStatus"], r["SendingEnabled"] = row.enforcement_status, row.sending_enabled
    click.echo(json.dumps(rates, indent=2))


@main.group()
def identities() -> None:
    """Inspect sender identities."""


@identities.command("records")
@storage_options
@click.argument("domain")
@click.option("--account", "account_id", required=True, help="The account that owns the identity.")
@click.option("--region", default=None, help="Its region (default: the default region).")
@_with_sesame
async def identities_records(sesame: Any, domain: str, account_id: str, region: str | None) -> None:
    """Print the DNS records to publish for DOMAIN, in zone-file form."""
    row = await sesame.identities.get(account_id, region or sesame.settings.default_region, domain)
    if row is None:
        raise click.ClickException(f"no identity {domain} in account {account_id}")
    records = sesame.identities.records(row)
    if not records:
        raise click.ClickException(f"{domain} has nothing to publish (an email address identity?)")
    for record in records:
        click.echo(record.zone_line())


@main.group("secret-key")
def secret_key() -> None:
    """Rotate the key that encrypts stored secrets (access-key secrets, DKIM private keys)."""


@secret_key.command("generate")
def secret_key_generate() -> None:
    """Print a new key (for SESAME_SECRET_KEY; the key file gets its own from `rotate`)."""
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@secret_key.command("rotate")
@storage_options
@_with_sesame
async def secret_key_rotate(sesame: Any) -> None:
    """Re-encrypt every stored secret under a new key, keeping the old key readable.

    With the key file: a new key goes first in it, the old ones stay after it. With SESAME_SECRET_KEY:
    put a new key (`sesame secret-key generate`) first in the variable, the old one after it, then run
    this. Nodes that share the database re-read a changed key file by themselves; copy it to them.
    """
    from cryptography.fernet import Fernet

    box = sesame.box
    if box.source.variable:
        if len(box.keys) < 2:
            raise click.ClickException(
                "SESAME_SECRET_KEY holds one key: nothing to rotate to. Put a new key first in it "
                "(sesame secret-key generate), the current key after it, and run this again."
            )
    else:
        box.source.write([Fernet.generate_key(), *box.keys])
        box.use(box.source.read(create=False))
    count = await box.rotate(sesame.db)
    click.echo(json.dumps({"Reencrypted": count, "Keys": len(box.keys)}))
    click.echo(
        f"Every secret is now encrypted with the first key of {box.source.name}; the older keys still "
        "decrypt. Once every node has the new keys, drop the old ones: sesame secret-key retire",
        err=True,
    )


@secret_key.command("retire")
@storage_options
@_with_sesame
async def secret_key_retire(sesame: Any) -> None:
    """Drop every key but the newest, once no stored secret needs them (after `rotate`)."""
    box = sesame.box
    if stale := await box.stale(sesame.db):
        raise click.ClickException(
            f"{stale} stored secrets are not encrypted with the newest key yet: run sesame secret-key rotate"
        )
    if box.source.variable:
        click.echo("Every secret reads with the first key: drop the others from SESAME_SECRET_KEY.", err=True)
        return
    box.source.write(box.keys[:1])
    click.echo(f"{box.source.name} now holds only the newest key.", err=True)


@main.group(invoke_without_command=True)
@storage_options
@click.option("--url", help="The running server (default: its public_url or http setting).")
@click.pass_context
def queue(ctx: click.Context, url: str | None, **flags: Any) -> None:
    """Inspect and manage the delivery queue of a running server (summary when no subcommand)."""
    settings = _settings("serve", **flags)
    ctx.obj = _AdminClient(url or settings.public_url or f"http://{settings.http}", settings.data_dir)
    if ctx.invoked_subcommand is None:
        rows = ctx.obj.call("GET", "/queue")["Queue"]
        if not rows:
            click.echo("The queue is empty.")
        for row in rows:
            click.echo(f"{row['count']:>8}  {row['state']:<11} {row['domain']}")


class _AdminClient:
    def __init__(self, base: str, data_dir: Path) -> None:
        from sesame.domain.secrets import admin_token

        self.base = base.rstrip("/") + "/_sesame/admin"
        self.token = admin_token(data_dir)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import urllib.error
        import urllib.request

        req = urllib.request.Request(
            self.base + path,
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
            data=json.dumps(body).encode() if body is not None else None,
        )
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise click.ClickException(
                f"{exc.code}: {json.loads(exc.read() or b'{}').get('message', '')}"
            ) from None
        except urllib.error.URLError as exc:
            raise click.ClickException(f"cannot reach the server at {self.base}: {exc.reason}") from None


@queue.command("show")
@click.argument("message_id")
@click.pass_obj
def queue_show(client: _AdminClient, message_id: str) -> None:
    """One message: recipients, attempts, replies and outcome records, as JSON."""
    click.echo(json.dumps(client.call("GET", f"/queue/{message_id}"), indent=2))


@queue.command("retry")
@click.argument("message_id")
@click.pass_obj
def queue_retry(client: _AdminClient, message_id: str) -> None:
    """Try the message's deferred recipients again now."""
    click.echo(json.dumps(client.call("POST", f"/queue/{message_id}/retry")))


@queue.command("bounce")
@click.argument("message_id")
@click.pass_obj
def queue_bounce(client: _AdminClient, message_id: str) -> None:
    """Give up on the message's pending recipients: each gets a Bounce record."""
    click.echo(json.dumps(client.call("POST", f"/queue/{message_id}/bounce")))


@queue.command("delete")
@click.argument("message_id")
@click.pass_obj
def queue_delete(client: _AdminClient, message_id: str) -> None:
    """Remove the message and its queue entries; nothing more of it is delivered."""
    click.echo(json.dumps(client.call("DELETE", f"/queue/{message_id}")))


def _admin_client(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn(client, **kw)`` with an admin API client for the server the options name: these options
    may then come anywhere on the command line (``sesame events retry --all --data-dir d``)."""

    @storage_options
    @click.option("--url", help="The running server (default: its public_url or http setting).")
    @functools.wraps(fn)
    def wrapper(
        url: str | None, data_dir: Path | None, database: str | None, config_file: Path | None, **kw: Any
    ) -> Any:
        settings = _settings("serve", data_dir=data_dir, database=database, config_file=config_file)
        client = _AdminClient(url or settings.public_url or f"http://{settings.http}", settings.data_dir)
        return fn(client, **kw)

    return wrapper


@main.group(invoke_without_command=True)
@click.pass_context
def events(ctx: click.Context) -> None:
    """Event publishing of a running server (``status`` when no subcommand)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(events_status)


@events.command("status")
@_admin_client
def events_status(client: _AdminClient) -> None:
    """Publications waiting or failed, with their last error, and counts by state and kind."""
    found = client.call("GET", "/events")
    for row in found["Counts"]:
        click.echo(f"{row['Count']:>8}  {row['State']:<10} {row['Kind']}")
    if found["Undispatched"]:
        click.echo(f"{found['Undispatched']:>8}  records not yet dispatched")
    if not found["Counts"] and not found["Undispatched"]:
        click.echo("Nothing has been published.")
    for p in found["Publications"]:
        click.echo(
            f"#{p['Id']} {p['State']} {p['Kind']} {p['Destination']} message {p['MessageId']}"
            f" after {p['Attempts']} attempt(s): {p['LastError'] or 'not tried yet'}"
        )


@events.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "every", is_flag=True, help="Every waiting or failed publication.")
@_admin_client
def events_retry(client: _AdminClient, ids: tuple[int, ...], every: bool) -> None:
    """Publish the given publications (or --all) again now, with a new day of retries."""
    if not ids and not every:
        raise click.UsageError("name publication ids, or --all")
    body = {"All": True} if every else {"Ids": list(ids)}
    click.echo(json.dumps(client.call("POST", "/events/retry", body)))


@events.command("tail")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between looks.")
@_admin_client
def events_tail(client: _AdminClient, interval: float) -> None:
    """Follow new event records as they are written, one JSON object per line (Ctrl-C stops)."""
    import time

    first = client.call("GET", "/events/recent")["Events"]
    after = first[-1]["Id"] if first else 0
    while True:
        for record in client.call("GET", f"/events/recent?after={after}")["Events"]:
            click.echo(json.dumps(record))
            after = record["Id"]
        time.sleep(interval)


@main.group()
def objects() -> None:
    """Put files into the object store and get them out: the local one (DATA_DIR/objects), or the
    S3-compatible endpoint ``aws.endpoints.s3`` names. Import jobs read their S3Url from here."""


def _object_store(data_dir: Path | None, database: str | None, config_file: Path | None) -> Any:
    from sesame.integrations.aws import AwsClients
    from sesame.integrations.objects import ObjectStore, objects_root

    settings = _settings("serve", data_dir=data_dir, database=database, config_file=config_file)
    return ObjectStore(objects_root(settings.data_dir), AwsClients(settings.aws)), settings


def _object_name(name: str) -> tuple[str, str]:
    bucket, _, key = name.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise click.BadParameter(f"{name!r} is not BUCKET/KEY", param_hint="BUCKET/KEY")
    return bucket, key


@objects.command("put")
@storage_options
@click.argument("name", metavar="BUCKET/KEY")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--region", help="The bucket's region on an external store (default: default_region).")
def objects_put(name: str, file: Path, region: str | None, **flags: Any) -> None:
    """Store FILE as object KEY of BUCKET (then s3://BUCKET/KEY names it to CreateImportJob)."""
    from sesame.integrations.objects import ObjectStoreError

    store, settings = _object_store(**flags)
    bucket, key = _object_name(name)
    try:
        asyncio.run(store.put_file(bucket, key, file, region=region or settings.default_region))
    except (ObjectStoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"s3://{bucket}/{key}")


@objects.command("get")
@storage_options
@click.argument("name", metavar="BUCKET/KEY")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--region", help="The bucket's region on an external store (default: default_region).")
def objects_get(name: str, file: Path | None, region: str | None, **flags: Any) -> None:
    """Write object KEY of BUCKET to FILE (default: standard output)."""
    import contextlib
    import shutil

    from sesame.integrations.objects import ObjectStoreError

    store, settings = _object_store(**flags)
    bucket, key = _object_name(name)
    try:
        with contextlib.closing(
            store.open_read(bucket, key, region=region or settings.default_region)
        ) as src:
            if file is None:
                shutil.copyfileobj(src, sys.stdout.buffer)
            else:
                with file.open("wb") as out:
                    shutil.copyfileobj(src, out)
    except (ObjectStoreError, OSError) as exc:
        raise click.ClickException(str(exc)) from exc


@main.command("jobs")
@storage_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per job instead.")
@click.option("--watch", is_flag=True, help="Show again every second while jobs are running.")
@click.option("--limit", default=20, show_default=True, help="Finished jobs shown.")
@_with_sesame
async def jobs(sesame: Any, as_json: bool, watch: bool, limit: int) -> None:
    """Import and export jobs of every account: running ones with a progress bar, then the latest
    finished ones."""
    from sesame.jobs.report import describe, render

    while True:
        rows = await sesame.job_store.recent(limit)
        if as_json:
            for row in rows:
                click.echo(json.dumps(describe(row)))
        else:
            click.echo(render(rows) if rows else "No jobs.")
        if not watch or not any(r.status in ("CREATED", "PROCESSING") for r in rows):
            return
        await asyncio.sleep(1)
        click.echo()


@main.group()
def db() -> None:
    """Database schema migrations."""


def _db_url(data_dir: Path | None, database: str | None, config_file: Path | None) -> str:
    from sesame.storage.files import private_directory, private_sqlite

    settings = _settings("serve", data_dir=data_dir, database=database, config_file=config_file)
    if settings.is_sqlite:
        private_directory(settings.data_dir)
        private_sqlite(settings.database_url)
    return settings.database_url


@db.command("upgrade")
@storage_options
@click.argument("revision", default="head")
def db_upgrade(revision: str, **flags: Any) -> None:
    """Apply migrations up to REVISION (default: head)."""
    from sesame.storage import migrate

    migrate.upgrade(_db_url(**flags), revision)
    click.echo(f"database at {revision}", err=True)


@db.command("downgrade")
@storage_options
@click.argument("revision")
def db_downgrade(revision: str, **flags: Any) -> None:
    """Revert migrations down to REVISION ('base' for an empty schema)."""
    from sesame.storage import migrate

    migrate.downgrade(_db_url(**flags), revision)


@db.command("current")
@storage_options
def db_current(**flags: Any) -> None:
    """Print the current schema revision."""
    from sesame.storage import migrate

    migrate.current(_db_url(**flags))


if __name__ == "__main__":
    sys.exit(main())
