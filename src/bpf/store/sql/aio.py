"""The SQL store under asyncio: `SQLStore`'s statements, rows and write path, on SQLAlchemy's
asyncio extension (aiosqlite, psycopg 3 async).

Nothing is written twice. The store is an `SQLStore` whose SQLAlchemy engine is the sync face
of an asyncio engine (``AsyncEngine.sync_engine``): its code runs unchanged inside a greenlet
(`bpf.runtime.aio` calls it through ``greenlet_spawn``), and every driver call in it waits on
the driver's coroutine, giving the event loop to other tasks meanwhile: SQLAlchemy's own way
of serving ``AsyncSession`` from the ORM's sync code.

What differs is how many writes may be in flight: the sync store writes on one connection
behind a lock; this one keeps ``writers`` write connections, and a write takes a free one (or
waits for one), so moves of different flows run at the same time. And how a consumer waits for
new events: in the event loop (`AsyncSQLStore.wait_events`), never in a blocking call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import await_, greenlet_spawn

from bpf._errors import StoreError
from bpf.store.base import Op
from bpf.store.sql.connection import WriteConnection, engine_from_url
from bpf.store.sql.notifier import listener
from bpf.store.sql.store import SQLStore

#: The asyncio driver of each database, for a URL that names none (or a sync one).
_ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+psycopg"}


def async_url(text: str) -> str:
    """``text`` with the asyncio driver of its database: ``sqlite:///x`` becomes
    ``sqlite+aiosqlite:///x``, ``postgresql://`` ``postgresql+psycopg://`` (psycopg 3 serves
    both faces). A URL naming an asyncio driver stays as it is."""
    try:
        url = make_url(text)
    except sa.exc.ArgumentError:
        return text  # engine_from_url says what is wrong with it
    backend, driver = url.get_backend_name(), url.get_driver_name()
    if (backend, driver) in (("sqlite", "aiosqlite"), ("postgresql", "psycopg"),
                             ("postgresql", "asyncpg")):
        return text
    if backend in _ASYNC_DRIVERS:
        return url.set(drivername=_ASYNC_DRIVERS[backend]).render_as_string(hide_password=False)
    return text


def _sleep(seconds: float) -> None:
    """Sleep in a greenlet, letting the event loop run."""
    await_(asyncio.sleep(seconds))


def _sync_face(url: Any, **kwargs: Any) -> sa.Engine:
    """An asyncio engine, as the sync `Engine` its greenlet-bridged code uses."""
    return create_async_engine(url, **kwargs).sync_engine


class _AwaitedCursor:
    """psycopg's `AsyncCursor` with the face of a DB-API cursor, for code running in a
    greenlet: a statement is one wait on the driver (``await_``), its rows read with it."""

    __slots__ = ("_cursor", "_rows")

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor
        self._rows: list[Any] = []

    async def _execute(self, sql: str, params: Any) -> list[Any]:
        cursor = self._cursor
        await cursor.execute(sql, params)
        return await cursor.fetchall() if cursor.description is not None else []

    def execute(self, sql: str, params: Any = None) -> _AwaitedCursor:
        self._rows = await_(self._execute(sql, params))
        return self

    def executemany(self, sql: str, params: Any) -> _AwaitedCursor:
        await_(self._cursor.executemany(sql, params))
        self._rows = []
        return self

    def fetchone(self) -> Any:
        rows = self._rows
        return rows.pop(0) if rows else None

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount  # type: ignore[no-any-return]

    def close(self) -> None:
        await_(self._cursor.close())


class _DriverWriteConnection(WriteConnection):
    """PostgreSQL: a write connection whose cursor is psycopg's own asyncio cursor, not
    SQLAlchemy's adaptation of it: a move is one statement and one wait on the driver, where
    the adapter waited twice (docs/performance.md)."""

    def _open(self) -> None:
        super()._open()
        self._cursor = _AwaitedCursor(self._connection.driver_connection.cursor())


class AsyncSQLStore(SQLStore):
    """`SQLStore` on an asyncio driver. Its methods are the sync store's and must run inside
    ``greenlet_spawn`` (the asyncio engine calls them so); `open` creates or checks the tables.

    ``writers`` is how many write connections it keeps (default 4 on PostgreSQL; 1 on
    SQLite, whose database has one writer at a time anyway); ``pool_size`` the size of the
    pool the reads use besides them.
    """

    def __init__(
        self,
        url: str,
        *,
        schema: str | None = None,
        synchronous: str | None = None,
        busy_timeout: float = 30.0,
        writers: int | None = None,
        pool_size: int | None = None,
    ) -> None:
        if not isinstance(url, str):
            raise StoreError(
                f"the asyncio store takes a database URL, got {type(url).__name__}"
            )
        text = async_url(url)
        sqlite = make_url(text).get_backend_name() == "sqlite" if "://" in text else False
        create = _sync_face
        if pool_size is not None and not sqlite:
            def create(u: Any, **kw: Any) -> sa.Engine:
                return _sync_face(u, pool_size=pool_size, **kw)
        engine, shown = engine_from_url(text, synchronous, busy_timeout, create)
        super().__init__(engine, schema=schema, _open=False)
        self.url = shown
        self._db.url = shown
        self._db.own = True  # made here: disposed on close
        self._count = writers if writers is not None else (1 if self._db.sqlite else 4)
        if self._count < 1:
            raise StoreError(f"{shown}: writers={writers}: an asyncio store needs one or more")
        self._idle: asyncio.Queue[WriteConnection] | None = None
        self._notices = _Notices(lambda: greenlet_spawn(listener, self._db.engine, await_))

    def _writers(self) -> asyncio.Queue[WriteConnection]:
        # Made on first use, in the running event loop.
        if self._idle is None:
            self._idle = asyncio.Queue()
            kind = WriteConnection if self._db.sqlite else _DriverWriteConnection
            for _ in range(self._count):
                self._idle.put_nowait(kind(self._db))
        return self._idle

    def write(self, ops: Sequence[Op], connection: Connection | None = None) -> None:
        """See `SQLStore.write`: on a free write connection, waiting (in the event loop) for
        one when all are busy."""
        if connection is not None or self.read_only:
            super().write(ops, connection)
            return
        idle = self._writers()
        try:
            via = idle.get_nowait()
        except asyncio.QueueEmpty:
            via = await_(idle.get())
        try:
            self._writer.write(ops, via)
        finally:
            idle.put_nowait(via)

    def wait_events(self, timeout: float) -> bool:
        """See `SQLStore.wait_events`, letting the event loop run meanwhile: SQLite looks for
        a newer event every 10 ms at first, backing off to 250 ms, with ``asyncio.sleep``
        between looks; PostgreSQL waits for the ``NOTIFY`` of a commit on an asyncio
        connection that stays open between waits (the first wait opens it and returns True:
        events may have come before it listened)."""
        with self._db.errors("cannot wait for events"):
            if self._db.sqlite:
                return self._outbox._poll(timeout, _sleep)
            return await_(self._notices.wait(timeout))

    def close(self) -> None:
        if self._notices.listening:
            await_(self._notices.close())
        if self._idle is not None:
            while not self._idle.empty():
                self._idle.get_nowait().close()
            self._idle = None
        super().close()

    def __repr__(self) -> str:
        return f"<AsyncSQLStore {self.url}>"


class _Notices:
    """PostgreSQL: the ``NOTIFY``s of new events, read on one asyncio connection kept open
    between waits (a notification that comes while nobody waits is kept for the next wait).

    Any number of tasks may wait at once: one reads the connection while the others wait to
    be told, and each wakes for a notification that came during its own wait.
    """

    def __init__(self, connect: Callable[[], Awaitable[Any]]) -> None:
        self._connect = connect
        self._conn: Any = None
        self._count = 0  # notifications received
        self._reading = False
        self._told = asyncio.Condition()

    async def wait(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        async with self._told:
            if self._conn is None or self._conn.closed:
                self._conn = await self._connect()
                return True  # events may have come before we listened: read first
            seen = self._count
            while self._count == seen:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                if self._reading:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._told.wait(), left)
                    continue
                self._reading = True
                self._told.release()
                got = False
                try:
                    got = await self._read(left)
                finally:
                    await self._told.acquire()
                    self._reading = False
                    if got:
                        self._count += 1
                    self._told.notify_all()  # a notification, or another task's turn to read
            return True

    async def _read(self, timeout: float) -> bool:
        # Closed at once, not when collected: the generator holds the connection's lock.
        async with contextlib.aclosing(
            self._conn.notifies(timeout=timeout, stop_after=1)
        ) as notices:
            async for _ in notices:
                return True
        return False

    @property
    def listening(self) -> bool:
        return self._conn is not None

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


__all__ = ["AsyncSQLStore", "async_url"]
