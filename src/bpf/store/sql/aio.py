"""The SQL store under asyncio: `SQLStore`'s statements, rows and write path, on SQLAlchemy's
asyncio extension (aiosqlite, psycopg 3 async).

Nothing is written twice. The store is an `SQLStore` whose SQLAlchemy engine is the sync face
of an asyncio engine (``AsyncEngine.sync_engine``): its code runs unchanged inside a greenlet
(`bpf.runtime.aio` calls it through ``greenlet_spawn``), and every driver call in it waits on
the driver's coroutine, giving the event loop to other tasks meanwhile: SQLAlchemy's own way
of serving ``AsyncSession`` from the ORM's sync code.

What differs is how many writes may be in flight: the sync store writes on one connection
behind a lock; this one keeps ``writers`` write connections, and a write takes a free one (or
waits for one), so moves of different flows run at the same time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.util import await_

from bpf._errors import StoreError
from bpf.store.base import Op
from bpf.store.sql.connection import WriteConnection, engine_from_url
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


def _sync_face(url: Any, **kwargs: Any) -> sa.Engine:
    """An asyncio engine, as the sync `Engine` its greenlet-bridged code uses."""
    return create_async_engine(url, **kwargs).sync_engine


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

    def _writers(self) -> asyncio.Queue[WriteConnection]:
        # Made on first use, in the running event loop.
        if self._idle is None:
            self._idle = asyncio.Queue()
            for _ in range(self._count):
                self._idle.put_nowait(WriteConnection(self._db))
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

    def close(self) -> None:
        if self._idle is not None:
            while not self._idle.empty():
                self._idle.get_nowait().close()
            self._idle = None
        super().close()

    def __repr__(self) -> str:
        return f"<AsyncSQLStore {self.url}>"


__all__ = ["AsyncSQLStore", "async_url"]
