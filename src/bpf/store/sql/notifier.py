"""Waking the consumers that wait for events: PostgreSQL's ``LISTEN``/``NOTIFY``.

Waiting consumers are woken by ``NOTIFY`` on the channel ``bpf_events_<schema>``. PostgreSQL
serializes the commits of every transaction that sent a NOTIFY, so the store's own writes do
not send one: after their commit a `Notifier` thread sends one, at most every few
milliseconds, for all the commits since its last. A write through the application's
transaction (which commits when the application says) sends its NOTIFY inside it, delivered
by its commit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

#: PostgreSQL: the channel NOTIFY wakes waiting consumers on, one per schema.
CHANNEL = "'bpf_events_' || current_schema()"

log = logging.getLogger("bpf.outbox")


class Notifier:
    """PostgreSQL: NOTIFY the waiting consumers after the store's own commits, from a thread
    of its own, on a connection of its own, at most once every `INTERVAL` seconds; each
    NOTIFY is sent after every commit it stands for (see the module).

    Its commits do not wait for the WAL flush (``synchronous_commit=off``): a NOTIFY is
    delivered at commit either way, and one lost in a server crash wakes nobody who could
    still read the event before the restart.
    """

    INTERVAL = 0.01
    IDLE = 10.0

    def __init__(self, db: Any) -> None:
        self._db = db
        self._wanted = threading.Event()
        self._dirty = False
        self._closed = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._conn: Any = None
        self._engine: sa.Engine | None = None

    def committed(self) -> None:
        """A commit that wrote events is done: a NOTIFY follows within a few milliseconds."""
        if not self._dirty:  # else one is owed already, and the thread sends it after this
            self._dirty = True
            self._wanted.set()
        thread = self._thread
        if thread is None or self._pid != os.getpid() or not thread.is_alive():
            self._start()

    def _start(self) -> None:
        with self._lock:
            if self._closed:
                return
            thread = self._thread
            if thread is not None and self._pid == os.getpid() and thread.is_alive():
                return
            if self._pid != os.getpid():
                self._conn = self._engine = None  # a forked child: the parent's, not ours
            self._pid = os.getpid()
            self._thread = threading.Thread(target=self._run, name="bpf-outbox-notifier",
                                            daemon=True)
            self._thread.start()

    def _run(self) -> None:
        failed = False
        while True:
            if not self._wanted.wait(self.IDLE) and self._idle():
                return
            self._wanted.clear()
            if self._dirty:
                self._dirty = False  # before the NOTIFY: a later commit asks for another
                try:
                    self._notify()
                    failed = False
                except Exception as exc:  # the database is away: consumers cannot read anyway
                    if not failed:
                        log.warning("bpf outbox: cannot notify waiting consumers: %s", exc)
                    failed = True
                    self._drop()
                    self._dirty = True
                    if not self._closed:
                        self._wanted.set()
                        time.sleep(0.5)
            if self._closed:
                self._drop()
                return
            time.sleep(self.INTERVAL)  # the commits of that time share the next NOTIFY

    def _idle(self) -> bool:
        """After `IDLE` seconds without a commit: end the thread and close its connection
        (so a store nobody closes is not kept alive by it), unless a commit came just now."""
        with self._lock:
            self._thread = None
            if self._wanted.is_set():  # `committed` saw this thread and started none
                self._thread = threading.current_thread()
                return False
            # Taken under the lock: a thread `committed` starts next opens its own.
            conn, engine, self._conn, self._engine = self._conn, self._engine, None, None
        _close(conn, engine)
        return True

    def _notify(self) -> None:
        if self._conn is None:
            self._conn = self._connect()
        cursor = self._conn.cursor()
        try:
            cursor.execute(f"SELECT pg_notify({CHANNEL}, '')")
        finally:
            cursor.close()

    def _connect(self) -> Any:
        engine = self._db.engine
        if engine.dialect.is_async:
            # The asyncio store's engine runs only inside its event loop's greenlets: this
            # thread opens a sync connection to the same database (psycopg 3, or psycopg2).
            driver = "postgresql+psycopg" if importlib.util.find_spec("psycopg") else "postgresql"
            engine = self._engine = sa.create_engine(engine.url.set(drivername=driver),
                                                     poolclass=sa.pool.NullPool)
        raw = engine.raw_connection()
        try:
            raw.dbapi_connection.autocommit = True
            cursor = raw.dbapi_connection.cursor()
            cursor.execute("SET synchronous_commit TO off")
            cursor.close()
        except BaseException:
            raw.close()
            raise
        raw.detach()  # kept out of the pool for good: it only notifies
        return raw.dbapi_connection

    def _drop(self) -> None:
        conn, engine, self._conn, self._engine = self._conn, self._engine, None, None
        _close(conn, engine)

    def close(self) -> None:
        """Send what is owed, stop the thread and close its connection."""
        with self._lock:
            self._closed = True
            thread = self._thread if self._pid == os.getpid() else None
        self._wanted.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


def listener(engine: sa.Engine, wait: Callable[[Any], Any] = lambda done: done) -> Any:
    """PostgreSQL: a psycopg 3 connection of ``engine``'s making (its URL, options and search
    path), taken out of its pool for good, listening on the store's channel. ``wait`` turns
    what the driver returns into its result: nothing to do for a sync connection, ``await_``
    for an asyncio one (whose methods are coroutines)."""
    raw = engine.raw_connection()
    try:
        driver = raw.driver_connection
        if not hasattr(driver, "notifies"):
            raise TypeError("not psycopg 3")
        wait(driver.set_autocommit(True))
        channel = wait(wait(driver.execute(f"SELECT {CHANNEL}")).fetchone())[0]
        wait(driver.execute(f'LISTEN "{channel}"'))
    except BaseException:
        raw.close()
        raise
    raw.detach()  # kept out of the pool for good: it only listens
    return driver


def _close(conn: Any, engine: sa.Engine | None) -> None:
    if conn is not None:
        with contextlib.suppress(Exception):
            conn.close()
    if engine is not None:
        engine.dispose()

