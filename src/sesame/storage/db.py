"""Engine and session factory for SQLite (aiosqlite, the embedded default) and PostgreSQL (asyncpg).

Invariants:
- Writers on SQLite take the database lock up front (``BEGIN IMMEDIATE``) so two writers never
  deadlock upgrading a read lock, and wait (busy timeout) instead of failing when another process
  holds it.
- Readers never block writers: SQLite runs in WAL mode.
- On SQLite, statements run inline on the event loop (pysqlite, behind the same AsyncSession API). A
  WAL reader never waits for a lock, and a cached page read costs microseconds, while each aiosqlite
  call is a thread round trip: measured on GetAccount, a read session took 1.8 ms through aiosqlite
  and 0.45 ms inline. A write transaction's BEGIN IMMEDIATE (which may wait for another process's lock)
  and its COMMIT (the fsync) run on a thread; its statements in between, which hold the lock already,
  run inline.
- Sessions do not expire objects on commit: results stay usable after the transaction.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool
from sqlalchemy.util.concurrency import await_

from sesame.storage.writer import Writer

log = logging.getLogger(__name__)

#: How long a SQLite writer waits for another process's write lock before giving up (ms).
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: A pooled PostgreSQL connection idle this long (seconds) is pinged before it is used again: long
#: enough that a busy pool never pings, short enough that connections a restarted server or a
#: firewall dropped overnight are found before a request uses them.
IDLE_PING_SECONDS = 30.0


#: How often a LISTEN connection is probed (seconds): a peer that vanished without closing is noticed
#: within twice this.
LISTEN_PROBE_SECONDS = 10.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, synchronous: str = "NORMAL") -> None:
    # We issue BEGIN ourselves (below); pysqlite's implicit transactions would defeat BEGIN IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers and one writer at once
    # Writers use FULL: each commit reaches the disk (fsync of the WAL), so an accepted message survives
    # a power cut as well as a killed process; group commit makes that one fsync per batch.
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _sqlite_events(engine: Engine, immediate: bool) -> None:
    synchronous = "FULL" if immediate else "NORMAL"
    event.listen(engine, "connect", lambda conn, record: _sqlite_pragmas(conn, record, synchronous))
    begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        conn.exec_driver_sql(begin)


def _ping_when_idle(engine: Engine) -> None:
    """pool_pre_ping's liveness check, but only for a connection that sat in the pool for
    ``IDLE_PING_SECONDS``: on asyncpg the ping is three round trips (BEGIN, an empty statement,
    ROLLBACK), which pool_pre_ping paid on every checkout, several times per message. A connection in
    steady use has just shown it is alive; one that died since (a restarted server) fails its statement,
    and SQLAlchemy then discards every connection the pool opened before, so the next use reconnects."""

    @event.listens_for(engine, "checkin")
    def _checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.pop("idle_since", None)
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_SECONDS:
            return
        try:
            dbapi_connection.ping()
        except Exception as exc:  # the pool discards this one and checks out another
            raise DisconnectionError(f"pooled connection did not answer a ping: {exc}") from exc


def _make_engine(url: str, *, immediate: bool = False, **kw: Any) -> AsyncEngine:
    engine = create_async_engine(url, **kw)
    if engine.dialect.name == "sqlite":
        _sqlite_events(engine.sync_engine, immediate)
    else:
        _ping_when_idle(engine.sync_engine)
    return engine


class _InlineSession(Session):
    engine: ClassVar[Engine]
    #: The writer's thread for BEGIN and COMMIT (None for readers).
    thread: ClassVar[concurrent.futures.ThreadPoolExecutor | None] = None


def _inline_session(engine: Engine) -> type[_InlineSession]:
    """A Session class on a synchronous pysqlite engine, for AsyncSession(sync_session_class=...).

    AsyncSession runs each call of its sync session in a greenlet; pysqlite never yields, so the call
    completes inline without a thread hop.
    """

    class InlineSession(_InlineSession):
        def __init__(self, bind: Any = None, **kw: Any) -> None:
            super().__init__(bind=engine, **kw)

        def execute(self, *args: Any, **kw: Any) -> Any:
            result = super().execute(*args, **kw)
            # A Core statement's result still holds its pysqlite cursor, which AsyncSession would try
            # to close the async way; take the rows now (ORM results come buffered already).
            if getattr(result, "_is_cursor", False) and getattr(result, "cursor", None) is not None:
                return result.freeze()()
            return result

    InlineSession.engine = engine
    return InlineSession


def _sync_sqlite_engine(url: str, **kw: Any) -> Engine:
    return create_engine(url.replace("sqlite+aiosqlite:", "sqlite:", 1), **kw)


def _inline_reader(url: str, pool_size: int) -> type[_InlineSession]:
    engine = _sync_sqlite_engine(url, pool_size=pool_size, max_overflow=20)
    _sqlite_events(engine, immediate=False)
    return _inline_session(engine)


def _inline_writer(url: str) -> type[_InlineSession]:
    """The write sessions of a SQLite process: statements inline like the reads, but the two steps that
    may take long off the event loop, each on a thread: BEGIN IMMEDIATE (it waits for another process's
    write lock, up to the busy timeout) and COMMIT (the fsync, and the WAL checkpoint when one is due).
    Two thread round trips a transaction, where aiosqlite made one per statement.

    One connection: the ``Database`` lets one write session at a time in (an asyncio lock), so the
    pool, whose waits would block the event loop, never has to wait."""
    engine = _sync_sqlite_engine(url, pool_size=1, max_overflow=0)
    event.listen(engine, "connect", lambda conn, record: _sqlite_pragmas(conn, record, "FULL"))

    # A thread of its own: the default executor's threads may all be busy for seconds (botocore calls,
    # HTTP function calls, DKIM signing), and every write of the process would wait behind them.
    thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sesame-sqlite-commit")

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        await_(_on_thread(thread, conn.connection.dbapi_connection.execute, "BEGIN IMMEDIATE"))

    @event.listens_for(engine, "commit")
    def _commit(conn: Any) -> None:
        # pysqlite's own commit, which SQLAlchemy calls next, finds no transaction left and does nothing.
        await_(_on_thread(thread, conn.connection.dbapi_connection.execute, "COMMIT"))

    session = _inline_session(engine)
    session.thread = thread
    return session


async def _on_thread(thread: concurrent.futures.Executor, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` on ``thread``. A caller cancelled meanwhile still waits for it to finish: the
    connection must not be used (to roll back) while the thread still has it."""
    task = asyncio.get_running_loop().run_in_executor(thread, fn, *args)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


class Database:
    """Hands out read sessions and write sessions, each from its own pool, and the process's one
    group-commit ``writer`` (storage/writer.py) for the hot writes: accepted mail and delivery outcomes."""

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        #: SQLite: one write session at a time in this process (see _inline_writer).
        self._write_lock: asyncio.Lock | None = None
        if self.is_sqlite:
            self._reader: type[_InlineSession] | None = _inline_reader(url, pool_size)
            self._read = async_sessionmaker(sync_session_class=self._reader, expire_on_commit=False)
            # One write connection per process: SQLite has one writer anyway, and queueing here is
            # cheaper than queueing on the file lock.
            self._writer_class: type[_InlineSession] | None = _inline_writer(url)
            self._write = async_sessionmaker(sync_session_class=self._writer_class, expire_on_commit=False)
            self._write_lock = asyncio.Lock()
        else:
            self._writer_class = None
            self._reader = None
            # Separate pools: a burst of reads must not keep a writer (the group commit above all)
            # waiting for a connection.
            self.write_engine = _make_engine(url, pool_size=5, max_overflow=10)
            # Up to the same 30 read connections as before, but all kept: as overflow connections, those
            # past the tenth were closed when given back and opened again at the next burst (a new
            # PostgreSQL session per read: ~10% of the server's CPU at 32 sends in flight).
            self.read_engine = _make_engine(url, pool_size=pool_size + 20, max_overflow=0)
            self._read = async_sessionmaker(self.read_engine, expire_on_commit=False)
            self._write = async_sessionmaker(self.write_engine, expire_on_commit=False)
        self._fetch_connection: Any = None  # SQLite: the pooled connection ``fetch`` keeps
        self.writer = Writer(self)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        async with self._read() as session, session.begin():
            yield session

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        if self._write_lock is None:
            async with self._write() as session, session.begin():
                yield session
            return
        async with self._write_lock, self._write() as session, session.begin():
            yield session

    async def page(self, query: Any, key: Any, after: str | None, limit: int) -> tuple[list[Any], str | None]:
        """One page of ``query``'s rows in ``key`` order, starting after ``after`` (keyset paging, so a
        page costs the same however deep it is); the key to start the next page at, or None at the end."""
        if after:
            query = query.where(key > after)
        async with self.read() as s:
            rows = list(await s.scalars(query.order_by(key).limit(limit + 1)))
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, getattr(rows[-1], key.key)

    async def fetch(self, statements: list[tuple[str, dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        """Run plain SELECTs (``:name`` parameters; a list or tuple value expands for ``IN :name``);
        each statement's rows as dicts. On SQLite they share one read transaction.

        For the few reads on the hot path of every send: SQLAlchemy costs 0.2–0.4 ms per statement, a
        pysqlite statement 10 µs. On SQLite the rows come straight from a pooled pysqlite connection; on
        PostgreSQL on the pool's asyncpg connection. JSON columns come back as text on SQLite and decoded
        on PostgreSQL (booleans as 0/1 on SQLite): callers take both.

        On PostgreSQL several statements go as one, each one's rows gathered by json_agg: one round trip
        instead of one per statement (the send checks' three reads: 1.29 -> 1.12-1.21 ms of CPU per
        send). Their timestamps then come back as ISO text, and a statement's row order is not promised.
        """
        if self._reader is None:
            async with self.read_engine.connect() as conn:
                apg: Any = (await conn.get_raw_connection()).driver_connection  # the asyncpg connection
                # No transaction: one statement reads one snapshot.
                if len(statements) == 1:
                    return [[dict(r) for r in await apg.fetch(*_numbered(*statements[0]))]]
                sql, values = _gathered(statements)
                row = await apg.fetchrow(sql, *values)
            return list(row)  # the pool's connections decode json (SQLAlchemy's codec)
        # Nothing below awaits, so no other task can use the connection meanwhile: one is kept out of
        # the pool for these reads (a pool checkout and return cost more than the statements).
        raw = self._fetch_connection
        if raw is None:
            raw = self._fetch_connection = self._reader.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.execute("BEGIN")
            out = []
            for sql, params in statements:
                cursor.execute(*_qmark(sql, params))
                names = [d[0] for d in cursor.description]
                out.append([dict(zip(names, row, strict=True)) for row in cursor.fetchall()])
            cursor.execute("COMMIT")
            return out
        except BaseException:
            self._fetch_connection = None
            raw.close()  # back to the pool, which rolls back what the failed read left open
            raise

    async def notify(self, session: AsyncSession, channel: str, payload: str) -> None:
        """Tell every process listening on ``channel`` (PostgreSQL's NOTIFY, delivered when ``session``
        commits). SQLite has no such channel: its readers see the change on their next read."""
        if not self.is_sqlite:
            await session.execute(
                text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload}
            )

    async def listen(
        self, channel: str, on_message: Callable[[str], None], on_state: Callable[[bool], None]
    ) -> None:
        """PostgreSQL only: hold a connection of its own that LISTENs on ``channel`` and hand each payload
        to ``on_message``, forever. ``on_state(True)`` once listening, ``on_state(False)`` when the
        connection is lost (notifications sent meanwhile are lost too), then it reconnects."""
        import asyncpg

        dsn = make_url(self.url).set(drivername="postgresql").render_as_string(hide_password=False)
        while True:
            try:
                conn = await asyncpg.connect(dsn, timeout=10)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("cannot listen for %s: %s", channel, exc)
                await asyncio.sleep(1)
                continue
            lost = asyncio.Event()
            try:
                conn.add_termination_listener(lambda _conn, done=lost: done.set())
                await conn.add_listener(channel, lambda _c, _pid, _ch, payload: on_message(payload))
                on_state(True)
                while True:
                    try:
                        await asyncio.wait_for(lost.wait(), LISTEN_PROBE_SECONDS)
                        break
                    except TimeoutError:  # a connection cut without a FIN never ends: probe it
                        await asyncio.wait_for(conn.fetchval("SELECT 1"), LISTEN_PROBE_SECONDS)
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("lost the %s listener: %s", channel, exc)
            finally:
                on_state(False)
                conn.terminate()
            await asyncio.sleep(1)

    async def close(self) -> None:
        await self.writer.close()
        if self._writer_class is not None:
            self._writer_class.engine.dispose()
            if self._writer_class.thread is not None:
                self._writer_class.thread.shutdown(wait=False)
        else:
            await self.write_engine.dispose()
            await self.read_engine.dispose()
        if self._fetch_connection is not None:
            self._fetch_connection.close()
            self._fetch_connection = None
        if self._reader is not None:
            self._reader.engine.dispose()


def null_pool_engine(url: str) -> AsyncEngine:
    """A poolless engine for one-off work (migrations, CLI commands)."""
    return _make_engine(url, immediate=True, poolclass=NullPool)


_PARAM = re.compile(r":([A-Za-z_][A-Za-z0-9_]*)")


def _numbered(sql: str, params: dict[str, Any]) -> tuple[Any, ...]:
    """``:name`` parameters to asyncpg's ``$n``, expanding list values into ``($1, $2, …)``."""
    shape, values = _bind(sql, params)
    return (_rewrite(sql, shape, "$"), *values)


def _gathered(statements: list[tuple[str, dict[str, Any]]]) -> tuple[str, list[Any]]:
    """One PostgreSQL SELECT whose n-th column is the n-th statement's rows as a JSON array."""
    columns: list[str] = []
    values: list[Any] = []
    for sql, params in statements:
        shape, more = _bind(sql, params)
        inner = _rewrite(sql, shape, "$", len(values))
        columns.append(f"(SELECT coalesce(json_agg(q), '[]') FROM ({inner}) AS q)")
        values.extend(more)
    return "SELECT " + ", ".join(columns), values


def _qmark(sql: str, params: dict[str, Any]) -> tuple[str, list[Any]]:
    """``:name`` parameters to pysqlite's ``?``, expanding list values into ``(?, ?, …)``."""
    shape, values = _bind(sql, params)
    return _rewrite(sql, shape, "?"), values


def _bind(sql: str, params: dict[str, Any]) -> tuple[tuple[int, ...], list[Any]]:
    """The statement's shape (each parameter's list length in order, -1 for a scalar) and its values
    in order, lists flattened."""
    shape: list[int] = []
    values: list[Any] = []
    for name in _names(sql):
        value = params[name]
        if isinstance(value, list | tuple):
            shape.append(len(value))
            values.extend(value)
        else:
            shape.append(-1)
            values.append(value)
    return tuple(shape), values


# The hot reads run the same few statements with the same shapes on every send: each is rewritten once
# (the regex substitution cost more than the SQLite statement itself).
@functools.lru_cache(maxsize=1024)
def _names(sql: str) -> tuple[str, ...]:
    return tuple(_PARAM.findall(sql))


@functools.lru_cache(maxsize=1024)
def _rewrite(sql: str, shape: tuple[int, ...], style: str, before: int = 0) -> str:
    """``sql`` with its ``:name`` parameters in ``style`` ("?" or "$" for $1, $2…) for ``shape``; "$"
    numbers start after ``before`` parameters of an enclosing statement."""
    lengths = iter(shape)
    count = before

    def one(m: re.Match[str]) -> str:
        nonlocal count
        n = next(lengths)
        width = 1 if n < 0 else n
        marks = [("?" if style == "?" else f"${count + i + 1}") for i in range(width)]
        count += width
        if n < 0:
            return marks[0]
        return "(" + ", ".join(marks) + ")" if n else "(NULL)"

    return _PARAM.sub(one, sql)
