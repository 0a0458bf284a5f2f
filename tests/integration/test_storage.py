"""Storage on both databases: migrations match the models, concurrent writers are safe."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from sesame import config
from sesame.runtime import Sesame
from sesame.storage.db import null_pool_engine
from sesame.storage.models import Base
from sesame.testing.servers import SesameProcess
from tests.conftest import client


def test_migrations_produce_exactly_the_models(database: str, tmp_path: Path) -> None:
    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    Sesame(settings).migrate()

    async def diff() -> list[object]:
        engine = null_pool_engine(settings.database_url)
        async with engine.connect() as conn:
            result = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
        await engine.dispose()
        return result

    assert asyncio.run(diff()) == []


def test_second_process_on_the_same_sqlite_file(tmp_path: Path) -> None:
    """A server and CLI commands write the same SQLite file at once; nothing is lost or refused."""
    data = tmp_path / "shared"
    with SesameProcess("dev", data_dir=data) as a, SesameProcess("dev", data_dir=data) as b:
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "sesame", "accounts", "create", f"acct{i}", "--data-dir", str(data)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for i in range(4)
        ]
        for n in range(20):
            for proc in (a, b):
                ses = client("sesv2", proc.endpoint, f"{100000000000 + n:012d}", "x")
                ses.put_account_sending_attributes(SendingEnabled=n % 2 == 0)
        outs = [p.communicate(timeout=60) for p in procs]
        assert all(p.returncode == 0 for p in procs), [o[1] for o in outs]
        created = {json.loads(o[0])["AccountId"] for o in outs}
        for n in range(20):
            assert client("sesv2", a.endpoint, f"{100000000000 + n:012d}", "x").get_account()[
                "SendingEnabled"
            ] is (n % 2 == 0)
    listed = json.loads(
        subprocess.run(
            [sys.executable, "-m", "sesame", "accounts", "list", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert created <= {a["AccountId"] for a in listed}


def test_pooled_postgresql_connections_dropped_while_idle_are_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server side of every pooled connection goes away (a PostgreSQL restart, a firewall's idle
    timeout); the first read and write after an idle spell still succeed, on fresh connections."""
    import asyncpg

    from sesame.storage import db as storage
    from sesame.testing.databases import POSTGRES, temporary_database

    monkeypatch.setattr(storage, "IDLE_PING_SECONDS", 0.05)

    async def run(url: str) -> list[object]:
        name = url.rpartition("/")[2]
        database = storage.Database(
            config.load("serve", data_dir=tmp_path, database=url, env={}).database_url
        )
        try:
            for _ in range(3):  # several connections in each pool
                await asyncio.gather(*(database.fetch([("SELECT 1 AS one", {})]) for _ in range(3)))
                async with database.write() as s:
                    await s.execute(sa.text("SELECT 1"))
            admin = await asyncpg.connect(f"{POSTGRES}/postgres")
            try:
                killed = await admin.fetchval(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = $1) AS t",
                    name,
                )
            finally:
                await admin.close()
            await asyncio.sleep(0.2)
            read = await database.fetch([("SELECT 1 AS one", {})])
            async with database.write() as s:
                written = (await s.execute(sa.text("SELECT 2"))).scalar()
            return [killed > 0, read, written]
        finally:
            await database.close()

    with temporary_database("postgresql", tmp_path) as url:
        Sesame(config.load("serve", data_dir=tmp_path, database=url, env={})).migrate()
        assert asyncio.run(run(url)) == [True, [[{"one": 1}]], 2]


BOUNCES = {"SuppressedReasons": ["BOUNCE"]}


def _json(value: object) -> object:
    return json.loads(value) if isinstance(value, str) else value


def test_fetch_answers_each_statement_with_its_rows(database: str, tmp_path: Path) -> None:
    """Several plain reads in one call (the send checks' way): each statement's rows, in order of the
    statements, ``IN`` lists expanded (an empty one matches nothing)."""
    from sesame.storage import db as storage
    from sesame.storage.models import Account, Tenant

    settings = config.load("serve", data_dir=tmp_path, database=database, env={})
    Sesame(settings).migrate()

    async def run() -> list[list[dict[str, object]]]:
        database_ = storage.Database(settings.database_url)
        try:
            async with database_.write() as s:
                s.add(Account(id="111122223333", name="fetch"))
                await s.flush()
                where = {"account_id": "111122223333", "region": "us-east-1"}
                s.add(Tenant(**where, name="a", tenant_id="a", arn="arn:a", suppression_attributes=BOUNCES))
                s.add(Tenant(**where, name="b", tenant_id="b", arn="arn:b"))
            return await database_.fetch(
                [
                    (
                        "SELECT name, suppression_attributes FROM tenants"
                        " WHERE account_id = :a AND name IN :names ORDER BY name",
                        {"a": "111122223333", "names": ["a", "b", "c"]},
                    ),
                    ("SELECT name FROM tenants WHERE name IN :none", {"none": []}),
                    ("SELECT count(*) AS n FROM tenants WHERE region = :r", {"r": "us-east-1"}),
                ]
            )
        finally:
            await database_.close()

    tenants, none, count = asyncio.run(run())
    # JSON columns: text on SQLite, decoded on PostgreSQL; callers take both.
    decoded = [{**r, "suppression_attributes": _json(r["suppression_attributes"])} for r in tenants]
    assert sorted(decoded, key=lambda r: str(r["name"])) == [
        {"name": "a", "suppression_attributes": BOUNCES},
        {"name": "b", "suppression_attributes": None},
    ]
    assert none == [] and count == [{"n": 2}]
