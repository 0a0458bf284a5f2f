"""Shared fixtures: both databases, Sesame processes on free ports, boto3 clients."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from click.testing import CliRunner
from cryptography.fernet import Fernet

from sesame.cli.main import main as cli_main
from sesame.testing.databases import BACKENDS, temporary_database
from sesame.testing.dns import DnsServer
from sesame.testing.servers import SesameProcess, sesame_cli

# Tests must not pick up a developer's AWS settings or Sesame overrides.
for _var in list(os.environ):
    if _var.startswith(("AWS_", "SESAME_")) and _var != "SESAME_TEST_POSTGRES":
        del os.environ[_var]


# botocore clients hold reference cycles, so the cyclic collector frees them (and their pooled sockets)
# at a moment of its choosing, often inside another test, whose run then fails with a ResourceWarning
# that is not its own. Every client a test made is closed when it ends instead; a closed client still
# works, opening new connections, so clients kept by module fixtures are not harmed.
_made_clients: list[Any] = []
_create_client = botocore.session.Session.create_client


def _tracked_create_client(self: Any, *args: Any, **kwargs: Any) -> Any:
    made = _create_client(self, *args, **kwargs)
    _made_clients.append(made)
    return made


botocore.session.Session.create_client = _tracked_create_client  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _made_clients:
        _made_clients.pop().close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def database(backend: str, tmp_path: Path) -> Iterator[str]:
    with temporary_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="module", params=BACKENDS)
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A database for a module's servers and commands. They have data directories of their own but share
    one secret key (SESAME_SECRET_KEY meanwhile), as the nodes of one deployment must: a key that does
    not read the database's secrets stops a process before it starts."""
    with temporary_database(request.param, tmp_path_factory.mktemp("db")) as url:
        os.environ["SESAME_SECRET_KEY"] = Fernet.generate_key().decode()
        try:
            yield url
        finally:
            del os.environ["SESAME_SECRET_KEY"]


@pytest.fixture(scope="module")
def dns_server(module_database: str) -> Iterator[DnsServer]:
    """One zone per module and database run: records published for one must not leak into the other."""
    with DnsServer() as server:
        yield server


def client(
    service: str,
    endpoint: str,
    key: str = "test",
    secret: str = "test",
    region: str = "us-east-1",
    validate: bool = True,
) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, parameter_validation=validate),
    )


def cli_in_process(*args: str, data_dir: Path, database: str | None = None) -> str:
    """``sesame_cli`` without a new Python process: the same click command, run in this one.

    A test's setup (accounts, records, quotas) runs the CLI often, and each subprocess costs 1-3 s of
    CPU to start Python and import Sesame; in process a command takes ~0.1 s. tests/integration/test_cli.py
    still runs the commands as a user does, in a process of their own. Inside a running event loop
    (asyncio.run cannot nest) the subprocess is used."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return sesame_cli(*args, data_dir=data_dir, database=database)
    cmd = [*args, "--data-dir", str(data_dir), *(["--database", database] if database else [])]
    done = CliRunner().invoke(cli_main, cmd)
    if done.exit_code != 0:
        why = done.stderr or repr(done.exception)
        raise RuntimeError(f"{' '.join(args)} failed ({done.exit_code}):\n{why}")
    return done.stdout


class Serve:
    """A running ``sesame serve`` and a way to make accounts on its storage."""

    def __init__(self, proc: SesameProcess, data_dir: Path, database: str) -> None:
        self.proc = proc
        self.data_dir = data_dir
        self.database = database
        self.endpoint = proc.endpoint

    def cli(self, *args: str) -> str:
        return cli_in_process(*args, data_dir=self.data_dir, database=self.database)

    def new_account(self, name: str = "acme") -> dict[str, str]:
        return json.loads(self.cli("accounts", "create", name))

    def client(self, service: str, account: dict[str, str], region: str = "us-east-1", **kw: Any) -> Any:
        return client(
            service, self.endpoint, account["AccessKeyId"], account["SecretAccessKey"], region, **kw
        )


@pytest.fixture(scope="module")
def serve(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Serve]:
    data_dir = tmp_path_factory.mktemp("serve")
    with SesameProcess("serve", data_dir=data_dir, database=module_database) as proc:
        yield Serve(proc, data_dir, module_database)


@pytest.fixture(scope="module")
def dev(module_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SesameProcess]:
    data_dir = tmp_path_factory.mktemp("dev")
    with SesameProcess("dev", data_dir=data_dir, database=module_database) as proc:
        yield proc


def query(serve: Serve, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows from the server's own database: for what no API shows yet (the delivery queue)."""
    return query_url(serve.database or f"sqlite:///{serve.data_dir / 'sesame.db'}", sql, **params)


def query_url(url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Rows from the database at ``url`` (the form a user passes to ``--database``)."""
    return _run_sql(url, sql, params, commit=False)


def execute(serve: Serve, sql: str, **params: Any) -> None:
    """Change rows of the server's own database (a test's way to make time pass for one row)."""
    _run_sql(serve.database or f"sqlite:///{serve.data_dir / 'sesame.db'}", sql, params, commit=True)


def _run_sql(url: str, sql: str, params: dict[str, Any], *, commit: bool) -> list[dict[str, Any]]:
    import asyncio

    import sqlalchemy as sa

    from sesame.storage.db import null_pool_engine

    url = url.replace("postgresql://", "postgresql+asyncpg://").replace("sqlite://", "sqlite+aiosqlite://")

    async def go() -> list[dict[str, Any]]:
        engine = null_pool_engine(url)
        try:
            async with engine.begin() if commit else engine.connect() as conn:
                result = await conn.execute(sa.text(sql), params)
                return [dict(r) for r in result.mappings()] if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(go())
