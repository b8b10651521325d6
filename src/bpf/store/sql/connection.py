"""Talking to the database: the SQLAlchemy engine made from a URL, transactions, the
connection writes are kept on, and every error translated into `bpf.StoreError` naming the URL
with its password hidden.

There is no ping before a read or a write: a connection the server dropped (restart, idle
timeout) fails before anything was written, and the read (`retry_dropped`) or the write
(`WriteConnection.run`) runs once more on a fresh connection. A ping cost a round trip per move.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from bpf._errors import BpfError, StoreError

#: SQLite ``PRAGMA synchronous`` values accepted (``?synchronous=normal`` or the argument).
SYNCHRONOUS = ("full", "normal", "extra", "off")

T = TypeVar("T")


def hide_password(url: str) -> str:
    """A URL string we could not parse, with anything that looks like a password masked."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def cause(exc: BaseException) -> str:
    """What went wrong, in the driver's words, on one line, without the SQL statement."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, sa_exc.StatementError) and orig is not None:  # DBAPIError included
        exc = orig
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, sa_exc.SQLAlchemyError):
        text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    return f"{type(exc).__name__}: {text}"


# -- engines from URLs ---------------------------------------------------------------------------


def engine_from_url(
    text: str, synchronous: str | None, busy_timeout: float,
    create: Callable[..., sa.Engine] = sa.create_engine,
) -> tuple[sa.Engine, str]:
    """A SQLAlchemy engine for a SQLite or PostgreSQL URL, and the URL as given with its
    password hidden; `StoreError` saying what to use for anything else, or which parameter of
    the URL's query is not valid. ``create`` makes the engine (the asyncio store gives the
    sync face of an asyncio engine: `bpf.store.sql.aio`)."""
    try:
        url = make_url(text)
    except sa_exc.ArgumentError as exc:
        raise StoreError(
            f"{hide_password(text)}: not a database URL ({cause(exc)}); use "
            "'sqlite:///path/bpf.db' or 'postgresql+psycopg://user:password@host/database'"
        ) from exc
    shown = url.render_as_string(hide_password=True)
    backend = url.get_backend_name()
    try:
        if backend == "sqlite":
            return _sqlite_engine(url, shown, synchronous, busy_timeout, create), shown
        if backend == "postgresql":
            return _postgres_engine(url, create), shown
    except ImportError as exc:
        hint = " (pip install 'bpf[postgres]')" if backend == "postgresql" else ""
        raise StoreError(
            f"{shown}: the database driver is not installed{hint}: {cause(exc)}"
        ) from exc
    except sa_exc.SQLAlchemyError as exc:
        raise StoreError(f"{shown}: cannot use this URL: {cause(exc)}") from exc
    except (ValueError, TypeError) as exc:  # the dialect coerces query values: timeout=abc
        given = ", ".join(f"{k}={v}" for k, v in url.query.items())
        raise StoreError(
            f"{shown}: cannot use the URL's parameters ({given}): {cause(exc)}"
        ) from exc
    raise StoreError(
        f"{shown}: bpf stores flows in SQLite ('sqlite:///path/bpf.db') or PostgreSQL "
        f"('postgresql+psycopg://user@host/db'), not {backend}"
    )


#: SQLite URL parameters the driver takes as numbers, checked here to name the bad one.
_SQLITE_NUMBERS = {"timeout": float, "detect_types": int, "cached_statements": int}


def sqlite_read_only(url: URL) -> bool:
    """True when a SQLite URL opens its file read-only: a ``file:`` URI (``uri=true``) with
    ``mode=ro`` or ``immutable=1``."""
    query = url.query
    uri = str(query.get("uri", "")).lower() in ("true", "1")
    return uri and (query.get("mode") == "ro" or str(query.get("immutable", "")) == "1")


def _sqlite_engine(
    url: URL, shown: str, synchronous: str | None, busy_timeout: float,
    create: Callable[..., sa.Engine] = sa.create_engine,
) -> sa.Engine:
    query = dict(url.query)
    for key, number in _SQLITE_NUMBERS.items():
        if key in query:
            try:
                number(query[key])
            except (TypeError, ValueError):
                raise StoreError(
                    f"{shown}: {key}={query[key]!r} is not a number: give {key} as "
                    f"{'seconds' if key == 'timeout' else 'an integer'}"
                ) from None
    read_only = sqlite_read_only(url)
    level = str(synchronous or query.pop("synchronous", None) or "full").lower()
    url = url.difference_update_query(["synchronous"])
    if level not in SYNCHRONOUS:
        raise StoreError(
            f"{shown}: synchronous={level!r} is not a SQLite synchronous mode; use one of "
            f"{', '.join(SYNCHRONOUS)}"
        )
    database = url.database or ""
    memory = database in ("", ":memory:") or "mode=memory" in database
    kwargs: dict[str, Any] = {}
    connect_args: dict[str, Any] = {"check_same_thread": False}
    if "timeout" not in query:
        connect_args["timeout"] = busy_timeout
    if memory:
        kwargs["poolclass"] = StaticPool  # one connection: one database for every thread
    elif not query.get("uri"):
        parent = Path(database).expanduser().absolute().parent
        if not parent.is_dir():
            raise StoreError(
                f"{shown}: cannot create the database file: the directory {parent} does not exist"
            )
    engine = create(url, connect_args=connect_args, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # bpf emits BEGIN itself (BEGIN IMMEDIATE for writes): the recipe of SQLAlchemy's
        # "Enabling Non-Legacy SQLite Transactional Modes".
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not memory and not read_only:  # switching to WAL writes the file
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={level.upper()}")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # The recipe's other half: with the driver in autocommit, a SQLAlchemy transaction
        # (bpf's reads, or the application's own on `SQLStore.engine`) must say BEGIN; not
        # on a connection already in one (an in-memory database's one shared connection).
        if not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql(conn.get_execution_options().get("bpf_begin", "BEGIN"))

    return engine


def _postgres_engine(url: URL, create: Callable[..., sa.Engine] = sa.create_engine
                     ) -> sa.Engine:
    if url.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
        url = url.set(drivername="postgresql+psycopg")
    connect_args: dict[str, Any] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    return create(url, connect_args=connect_args)  # no pre-ping: see the module


# -- one database --------------------------------------------------------------------------------


class Database:
    """The database one store uses: its engine (in ``schema``, if given), its URL for messages,
    transactions, and the translation of errors."""

    def __init__(self, engine: sa.Engine, url: str, *, schema: str | None, own: bool) -> None:
        self.url = url
        self.schema = schema
        #: True when the engine was made here from a URL (not the caller's own): disposed on close
        self.own = own
        self.dialect = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(f"{url}: bpf stores flows in SQLite or PostgreSQL, not {self.dialect}")
        self.sqlite = self.dialect == "sqlite"
        #: A SQLite file opened read-only (mode=ro, immutable=1): nothing may be written.
        self.read_only = self.sqlite and sqlite_read_only(engine.url)
        # One shared connection (StaticPool), or one database per thread (SingletonThreadPool,
        # an in-memory SQLite): reads must stay in the caller's thread.
        self.concurrent_reads = not isinstance(engine.pool, StaticPool | SingletonThreadPool)
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        self.engine = engine
        dbapi = engine.dialect.loaded_dbapi
        #: Errors of the driver itself (writes run on its cursor).
        self.driver_error: type[BaseException] = dbapi.Error
        #: What becomes a StoreError.
        self.db_errors = (sa_exc.SQLAlchemyError, OSError, ValueError, dbapi.Error)
        self.integrity_errors = (sa_exc.IntegrityError, dbapi.IntegrityError)

    @contextlib.contextmanager
    def transaction(
        self, *, write: bool = False, foreign_keys: bool = True
    ) -> Iterator[Connection]:
        """One transaction; committed when the block ends normally (a write) or rolled back.

        On SQLite a write transaction starts with BEGIN IMMEDIATE: it takes the write lock up
        front (waiting up to the busy timeout), so two writers never deadlock upgrading a read
        lock. A read transaction gives the statements of a read one snapshot.
        ``foreign_keys=False`` turns SQLite's foreign keys off for the transaction, as a
        migration that rebuilds a table needs (a PRAGMA that works outside a transaction only).
        """
        if self.sqlite and not foreign_keys:
            with self.engine.connect() as conn:
                # On the DBAPI connection (an asyncio driver's adapter too): outside SQLAlchemy's
                # transaction, as the PRAGMA needs.
                cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                cursor.execute("PRAGMA foreign_keys=OFF")
                try:
                    with self._transaction(conn, write) as inside:
                        yield inside
                finally:
                    if conn.in_transaction():
                        conn.rollback()
                    cursor.execute("PRAGMA foreign_keys=ON")
                    cursor.close()
            return
        with self.engine.connect() as conn, self._transaction(conn, write) as inside:
            yield inside

    @contextlib.contextmanager
    def _transaction(self, conn: Connection, write: bool) -> Iterator[Connection]:
        if self.sqlite and self.own:
            # Our engine's "begin" listener says BEGIN, or what this option asks for.
            conn.execution_options(bpf_begin="BEGIN IMMEDIATE" if write else "BEGIN")
            conn.begin()
        elif self.sqlite and not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
        elif not conn.in_transaction():
            # Writes may run on the driver's cursor only: SQLAlchemy must still commit.
            conn.begin()
        yield conn
        if write:
            conn.commit()
        else:
            conn.rollback()

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Translate what goes wrong in the block into `StoreError`: "url: doing: cause"."""
        try:
            yield
        except BpfError:
            raise
        except self.db_errors as exc:
            raise StoreError(f"{self.url}: {doing}: {cause(exc)}") from exc

    @contextlib.contextmanager
    def reading(self, doing: str) -> Iterator[Connection]:
        """A read transaction, its errors translated (see `errors`)."""
        with self.errors(doing), self.transaction() as conn:
            yield conn

    def dispose(self) -> None:
        if self.own:
            self.engine.dispose()


def retry_dropped(read: Callable[..., T]) -> Callable[..., T]:
    """Run a read once more when its pooled connection had been dropped by the server.

    SQLAlchemy marks the error (``connection_invalidated``) and discards the pool's stale
    connections, so the second try gets a fresh one.
    """

    @functools.wraps(read)
    def retrying(*args: Any, **kwargs: Any) -> T:
        try:
            return read(*args, **kwargs)
        except StoreError as exc:
            dropped = exc.__cause__
            if isinstance(dropped, sa_exc.DBAPIError) and dropped.connection_invalidated:
                return read(*args, **kwargs)
            raise

    return retrying


class WriteConnection:
    """The connection one store writes through, kept out of the pool.

    Checking a connection out of the pool and back in (with its reset) for every write cost
    more client CPU than the statements of a move (docs/performance.md). Writes through one
    store are serialized anyway, by the engine's lock and, on SQLite, by the database's single
    writer; here by a lock too. On PostgreSQL the connection stays in autocommit, so a write
    of one statement needs no BEGIN and COMMIT round trips.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._lock = threading.Lock()
        self._connection: Any = None  # the pool's connection record, or None
        self._cursor: Any = None
        self._pid = 0

    def run(self, work: Callable[[Any], T], *, one_statement: bool = False) -> T:
        """``work(cursor)`` in one transaction on the write connection; its result.

        On SQLite the transaction starts with BEGIN IMMEDIATE (see `Database.transaction`).
        On PostgreSQL, ``one_statement`` work runs autocommitted, anything else in an explicit
        transaction. A connection the server had dropped fails before the commit, so nothing
        was written: the work runs once more on a fresh connection. (Had a single statement
        committed before the connection dropped, the rerun finds the next revision and raises
        ConcurrencyError: never a double move.) Raises what the driver raises.
        """
        with self._lock:
            try:
                return self._run(work, one_statement)
            except self._db.driver_error as exc:
                if not getattr(exc, "_bpf_dropped", False):
                    raise
            return self._run(work, one_statement)

    def _run(self, work: Callable[[Any], T], one_statement: bool) -> T:
        if self._connection is None or self._pid != os.getpid():
            self._open()
        connection = self._connection
        # The DBAPI connection commits and rolls back: the driver's own one, or under asyncio
        # SQLAlchemy's adapter of it, whose methods wait on the driver's coroutines.
        dbapi = connection.dbapi_connection
        cursor = self._cursor
        sqlite = self._db.sqlite
        began = False
        try:
            if sqlite:
                cursor.execute("BEGIN IMMEDIATE")
                result = work(cursor)
                dbapi.commit()
            elif one_statement:
                result = work(cursor)
            else:
                # In autocommit: BEGIN and COMMIT said here (what psycopg's transaction() says).
                cursor.execute("BEGIN")
                began = True
                result = work(cursor)
                cursor.execute("COMMIT")
        except BaseException as exc:
            if began:
                with contextlib.suppress(self._db.driver_error):  # a dropped connection
                    cursor.execute("ROLLBACK")
            if sqlite:
                if connection.driver_connection.in_transaction:
                    dbapi.rollback()
            elif (isinstance(exc, self._db.driver_error)
                    and self._db.engine.dialect.is_disconnect(
                        exc, connection.dbapi_connection, cursor)):
                exc._bpf_dropped = True  # type: ignore[attr-defined]
                self._connection = None
                # The pool's other connections were opened before the drop and are most
                # likely dead too (a server restart, pg_terminate_backend, an idle session
                # timeout drop them all): invalidate the whole pool, as SQLAlchemy does on a
                # disconnect through a Connection, so the retry opens a new connection
                # instead of taking another dead one.
                self._db.engine.pool._invalidate(connection, exc)
            elif not isinstance(exc, Exception):
                # Interrupted (KeyboardInterrupt...) with a statement perhaps in flight: the
                # connection's state is unknown, so the next write takes a new one.
                self._connection = None
                connection.invalidate()
            raise
        return result

    def _open(self) -> None:
        """Take the write connection from the pool (again after a fork: the parent's
        connection is not ours to use)."""
        engine = self._db.engine
        if self._connection is not None and self._db.own:
            # A forked child: the pool holds the parent's connections too. Start a new pool
            # without closing them (SQLAlchemy's advice for engines crossing a fork).
            engine.dispose(close=False)
        connection = engine.raw_connection()
        try:
            if not self._db.sqlite:
                connection.dbapi_connection.autocommit = True
            cursor = connection.dbapi_connection.cursor()
        except BaseException:
            connection.close()
            raise
        self._connection, self._cursor, self._pid = connection, cursor, os.getpid()

    def close(self) -> None:
        """Give the connection back to the pool (not a forked parent's: not ours)."""
        with self._lock:
            connection, self._connection = self._connection, None
            if connection is not None and self._pid == os.getpid():
                with contextlib.suppress(Exception):  # a dropped connection: nothing to reset
                    if not self._db.sqlite:
                        connection.dbapi_connection.autocommit = False
                connection.close()
