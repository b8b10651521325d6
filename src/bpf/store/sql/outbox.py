"""The outbox in SQL: the events table written with each change, the consumers' positions,
claiming a partition for one worker, pruning, and waiting for new events.

``bpf_events`` holds one row per committed change, written in the transaction of the change.
Its ``seq`` is the order a reader sees, and a reader that sees event n sees every event below n:

- SQLite has one writer at a time and numbers rows itself as they are written (the largest
  number plus one: pruning always keeps the newest event, so a number is never reused;
  AUTOINCREMENT would cost a write of its own per event).
- PostgreSQL commits many writers at once, in an order no number taken while writing can
  know: a counter locked until the commit would serialize every commit behind it (it did:
  docs/performance.md). So a change writes its event *pending*, with a negative ``seq`` from
  the sequence ``bpf_event_pending`` (no lock), and readers number the committed pending
  events before they read (`Outbox.number`): under the counter row's lock, in the order they
  were written, after the largest number given. Two events of one flow were written in the
  order of their changes (the second change waited for the first one's commit), so they are
  numbered in that order; an event of a rolled-back change never becomes visible and is
  never numbered. A reader reads ``seq > position`` only: pending events stay out of sight.

Waiting consumers are woken by ``NOTIFY`` on the channel ``bpf_events_<schema>``. PostgreSQL
serializes the commits of every transaction that sent a NOTIFY, so the store's own writes do
not send one: after their commit a `Notifier` thread sends one, at most every few
milliseconds, for all the commits since its last. A write through the application's
transaction (which commits when the application says) sends its NOTIFY inside it, delivered
by its commit.

``bpf_consumers`` keeps each consumer's position per partition (events are spread over
`bpf.store.base.PARTITIONS` by flow id). A worker claims one partition at a time:

- on PostgreSQL with ``SELECT ... FOR UPDATE SKIP LOCKED`` of the partition's row in
  ``bpf_consumer_locks``, on a connection of its own whose transaction stays open while it
  handles the events: another worker skips the row, and the lock ends with the connection (a
  killed worker's partition is free at once). Acknowledgements commit the position in
  ``bpf_consumers`` on another connection meanwhile;
- on SQLite, which has no row locks, by writing its name and a lease time into the row in a
  write transaction (the database's single writer serializes claims); a lease that ran out,
  or one held by a process of this host that no longer runs, may be taken over.

``bpf_event_horizons`` keeps, per partition (and -1 for all), the seq of the last pruned
event: a reader or consumer behind it gets `bpf.EventsPrunedError`.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from bpf._errors import EventsPrunedError
from bpf.store.base import PARTITIONS, Claim, Event, partition_of
from bpf.store.sql.tables import UTCDateTime, metadata

_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY on SQLite

events = sa.Table(
    "bpf_events", metadata,
    sa.Column("seq", _SEQ, primary_key=True, autoincrement=True),
    sa.Column("id", sa.String, nullable=False),
    sa.Column("part", sa.SmallInteger, nullable=False),
    sa.Column("flow_id", sa.String, nullable=False),
    sa.Column("process", sa.String, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("entity", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("from_stage", sa.String),
    sa.Column("to_stage", sa.String, nullable=False),
    sa.Column("from_status", sa.String),
    sa.Column("to_status", sa.String, nullable=False),
    sa.Column("outcome", sa.String),
    sa.Column("actor", sa.String),
    sa.Column("at", UTCDateTime, nullable=False),
    # A worker reads its partition after its position.
    sa.Index("ix_bpf_events_part", "part", "seq"),
)

#: PostgreSQL: the pending numbers of events not yet numbered (see the module).
pending = sa.Sequence("bpf_event_pending", metadata=metadata)

counter = sa.Table(
    "bpf_event_counter", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_seq", sa.BigInteger, nullable=False),
)

horizons = sa.Table(
    "bpf_event_horizons", metadata,
    sa.Column("part", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
)

consumers = sa.Table(
    "bpf_consumers", metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("part", sa.SmallInteger, primary_key=True, autoincrement=False),
    sa.Column("position", sa.BigInteger, nullable=False),
    sa.Column("owner", sa.String),  # SQLite: the worker holding the partition...
    sa.Column("lease_until", sa.Float, nullable=False, default=0.0),  # ...until (epoch s)
)

locks = sa.Table(
    # PostgreSQL: a worker holds a partition by locking its row here (FOR UPDATE SKIP LOCKED)
    # for as long as it works on it; the position, in bpf_consumers, is committed meanwhile.
    "bpf_consumer_locks", metadata,
    sa.Column("name", sa.String, primary_key=True),
    sa.Column("part", sa.SmallInteger, primary_key=True, autoincrement=False),
)

#: The outbox tables, created with the others (schema version 3; `pending`, version 4).
TABLES = (events, counter, horizons, consumers, locks)

#: An event's columns as `event_params` builds them (the database gives ``seq``).
EVENT_COLUMNS = (
    "id", "part", "flow_id", "process", "version", "entity", "record_id", "kind",
    "from_stage", "to_stage", "from_status", "to_status", "outcome", "actor", "at",
)
#: An event's columns in `bpf.Event` field order.
_READ = (events.c.id, events.c.seq,
         *(events.c[c] for c in EVENT_COLUMNS if c not in ("id", "part")))
#: PostgreSQL: the channel NOTIFY wakes waiting consumers on, one per schema.
CHANNEL = "'bpf_events_' || current_schema()"


def create(conn: sa.Connection) -> None:
    """Create the outbox tables and their first rows (a new database, or schema 2 to 3)."""
    for table in TABLES:
        table.create(conn, checkfirst=True)
    conn.execute(counter.insert().values(id=1, last_seq=0))
    conn.execute(horizons.insert(), [{"part": p, "seq": 0} for p in range(-1, PARTITIONS)])


def create_pending(conn: sa.Connection) -> None:
    """PostgreSQL: the sequence of pending event numbers (schema 3 to 4; SQLite has none)."""
    if conn.dialect.name != "sqlite":
        pending.create(conn, checkfirst=True)


def event_params(event: Event, dt: Any) -> tuple[Any, ...]:
    """An event as the parameters of the insert (in `EVENT_COLUMNS` order)."""
    return (event.id, partition_of(event.flow_id), event.flow_id, event.process, event.version,
            event.entity, event.record_id, event.kind, event.from_stage, event.to_stage,
            event.from_status, event.to_status, event.outcome, event.actor, dt(event.at))


def insert_statement(dialect: str) -> Any:
    """The insert of one event: the database numbers it on SQLite; on PostgreSQL it is
    written pending (see the module)."""
    if dialect == "sqlite":
        return events.insert()
    return events.insert().values(seq=-pending.next_value())


def notify_statement() -> Any:
    """PostgreSQL: wake the consumers waiting on this schema's channel."""
    return sa.select(sa.func.pg_notify(sa.literal_column(CHANNEL), sa.literal_column("''")))


#: The columns of an event the single-move statement takes as parameters; the others are the
#: history row's (`FROM_HISTORY`), the same values by construction (`bpf.runtime.transaction`).
SINGLE_MOVE_COLUMNS = ("id", "part", "entity", "from_status", "to_status", "outcome")
FROM_HISTORY = ("flow_id", "process", "version", "record_id", "kind", "from_stage", "to_stage",
                "actor", "at")


def single_move_params(event: Event) -> tuple[Any, ...]:
    """An event as the parameters of the single-move statement (`SINGLE_MOVE_COLUMNS`)."""
    return (event.id, partition_of(event.flow_id), event.entity, event.from_status,
            event.to_status, event.outcome)


def single_move_cte(entry: Any, params: Any, notify: bool) -> Any:
    """PostgreSQL, for the single-move statement: the event's insert, pending, made of the
    history row ``entry`` inserted (so only when the flow's UPDATE matched) and the
    parameters of `SINGLE_MOVE_COLUMNS` (prefixed ``e_``); with ``notify``, NOTIFYing in the
    same transaction. ``params(table, prefix, columns)`` makes the bound parameters.

    Fewer than 51 parameters keep the statement in psycopg's cache of parsed queries: one
    parameter more and every move parsed it again (docs/performance.md)."""
    given = dict(zip(SINGLE_MOVE_COLUMNS,
                     params(events, "e_", SINGLE_MOVE_COLUMNS).selected_columns, strict=True))
    values = [given[c] if c in given else entry.c[c] for c in EVENT_COLUMNS]
    inserted = events.insert().from_select(
        ("seq", *EVENT_COLUMNS), sa.select(-pending.next_value(), *values).select_from(entry))
    if notify:
        # RETURNING runs for each row inserted, read or not (a data-modifying WITH runs to
        # completion).
        inserted = inserted.returning(
            sa.func.pg_notify(sa.literal_column(CHANNEL), sa.literal_column("''")))
    return inserted.cte("event")


def _number_statement(batch: int) -> Any:
    """PostgreSQL: number up to ``batch`` committed pending events, in the order they were
    written (the pending number closest to zero first), after the counter's last number, and
    move the counter on. Run with the counter row locked (see `Outbox.number`)."""
    last = sa.select(counter.c.last_seq).where(counter.c.id == 1).scalar_subquery()
    todo = (
        sa.select(events.c.seq.label("old"),
                  (last + sa.func.row_number().over(order_by=events.c.seq.desc())).label("new"))
        .where(events.c.seq < 0).order_by(events.c.seq.desc()).limit(batch).cte("todo")
    )
    numbered = (events.update().where(events.c.seq == todo.c.old).values(seq=todo.c.new)
                .returning(events.c.seq).cte("numbered"))
    return counter.update().where(counter.c.id == 1).values(last_seq=sa.func.coalesce(
        sa.select(sa.func.max(numbered.c.seq)).scalar_subquery(), counter.c.last_seq))


_ANY_PENDING = sa.select(events.c.seq).where(events.c.seq < 0).limit(1)
_LOCK_COUNTER = sa.select(counter.c.last_seq).where(counter.c.id == 1).with_for_update()
_NUMBER = _number_statement(10_000)

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


# -- reading and claiming ------------------------------------------------------------------------


def _event(row: Any) -> Event:
    return Event(*row)


def _pruned(what: str, horizon: int) -> EventsPrunedError:
    return EventsPrunedError(
        f"{what}: events up to seq {horizon} were pruned (bpf events --prune, "
        f"engine.prune_events); read from after={horizon}, or start a consumer of a new name"
    )


class Outbox:
    """The read side of one `SQLStore`'s outbox (its writes go with the changes, through the
    store's `Writer`)."""

    def __init__(self, db: Any) -> None:
        self._db = db
        self._insert_or_ignore = (sqlite_dialect.insert if db.sqlite else pg_dialect.insert)
        #: PostgreSQL: the connection (in a transaction holding the row lock) and the
        #: partition of each worker that holds one, by (consumer, worker)
        self._held: dict[tuple[str, str], tuple[sa.Connection, int]] = {}
        self._lock = threading.Lock()
        self._listener: Any = None
        self._last_seen = 0
        #: PostgreSQL: wakes waiting consumers after the store's own commits
        self.notifier = None if db.sqlite else Notifier(db)

    def number(self) -> None:
        """PostgreSQL: number the committed pending events (see the module), before a read."""
        if self._db.sqlite:
            return
        with self._db.errors("cannot number events"), \
                self._db.transaction(write=True) as conn:
            if conn.scalar(_ANY_PENDING) is None:
                return
            # The counter's lock first, then, in a statement of its own (a snapshot taken after
            # the lock), the numbering: a second reader numbering at the same time waits here
            # and then sees what the first numbered.
            conn.execute(_LOCK_COUNTER)
            conn.execute(_NUMBER)

    # -- reading -----------------------------------------------------------------------------

    def read(self, after: int | None, limit: int, process: str | None) -> list[Event]:
        self.number()
        with self._db.reading("cannot read events") as conn:
            horizon = conn.scalar(sa.select(horizons.c.seq).where(horizons.c.part == -1)) or 0
            if after is not None and after < horizon:
                raise _pruned(f"events after {after}", horizon)
            query = sa.select(*_READ).where(events.c.seq > (after or 0))
            if process is not None:
                query = query.where(events.c.process == process)
            return [_event(r) for r in conn.execute(query.order_by(events.c.seq).limit(limit))]

    # -- consumers -----------------------------------------------------------------------------

    def _ensure(self, conn: sa.Connection, name: str) -> None:
        """The consumer's rows, made at the horizons (the oldest kept events) when new."""
        exists = conn.scalar(sa.select(consumers.c.part).where(consumers.c.name == name)
                             .limit(1))
        if exists is None:
            conn.execute(self._insert_or_ignore(consumers).from_select(
                ("name", "part", "position", "owner", "lease_until"),
                sa.select(sa.literal(name), horizons.c.part, horizons.c.seq,
                          sa.null(), sa.literal(0.0)).where(horizons.c.part >= 0),
            ).on_conflict_do_nothing())
            conn.execute(self._insert_or_ignore(locks).from_select(
                ("name", "part"),
                sa.select(sa.literal(name), horizons.c.part).where(horizons.c.part >= 0),
            ).on_conflict_do_nothing())

    @staticmethod
    def _check_behind(conn: sa.Connection, name: str) -> None:
        behind = conn.execute(
            sa.select(consumers.c.part, consumers.c.position, horizons.c.seq)
            .join_from(consumers, horizons, horizons.c.part == consumers.c.part)
            .where(consumers.c.name == name, consumers.c.position < horizons.c.seq).limit(1)
        ).first()
        if behind is not None:
            raise _pruned(
                f"consumer {name!r} is behind (partition {behind.part} at seq "
                f"{behind.position})", behind.seq)

    @staticmethod
    def _pending(name: str, partition: int | None) -> Any:
        c = consumers.c
        query = sa.select(c.part, c.position, c.owner, c.lease_until).where(
            c.name == name,
            sa.exists().where(events.c.part == c.part, events.c.seq > c.position),
        )
        if partition is not None:
            query = query.where(c.part == partition)
        return query.order_by(c.position, c.part)

    @staticmethod
    def _events(conn: sa.Connection, part: int, position: int, limit: int) -> tuple[Event, ...]:
        return tuple(_event(r) for r in conn.execute(
            sa.select(*_READ).where(events.c.part == part, events.c.seq > position)
            .order_by(events.c.seq).limit(limit)))

    def claim(self, name: str, worker: str, limit: int, lease: float,
              partition: int | None) -> Claim | None:
        self.number()
        if self._db.sqlite:
            return self._claim_leased(name, worker, limit, lease, partition)
        return self._claim_locked(name, worker, limit, partition)

    def _claim_leased(self, name: str, worker: str, limit: int, lease: float,
                      partition: int | None) -> Claim | None:
        c = consumers.c
        with self._db.errors("cannot claim events"), \
                self._db.transaction(write=True) as conn:
            self._ensure(conn, name)
            conn.execute(consumers.update().where(c.name == name, c.owner == worker)
                         .values(owner=None))
            self._check_behind(conn, name)
            now = time.time()
            for row in conn.execute(self._pending(name, partition)).all():
                if row.owner is not None and row.lease_until > now and _alive(row.owner):
                    continue
                conn.execute(consumers.update().where(c.name == name, c.part == row.part)
                             .values(owner=worker, lease_until=now + lease))
                return Claim(row.part, row.position,
                             self._events(conn, row.part, row.position, limit))
            return None

    def _claim_locked(self, name: str, worker: str, limit: int,
                      partition: int | None) -> Claim | None:
        self.release(name, worker)
        c, lk = consumers.c, locks.c
        with self._db.errors("cannot claim events"):
            with self._db.transaction(write=True) as conn:
                self._ensure(conn, name)
                self._check_behind(conn, name)
            conn = self._db.engine.connect()
            try:
                conn.begin()
                pending = self._pending(name, partition).subquery()
                row = conn.execute(
                    sa.select(lk.part)
                    .join_from(locks, pending, pending.c.part == lk.part)
                    .where(lk.name == name).order_by(pending.c.position, lk.part).limit(1)
                    .with_for_update(skip_locked=True, of=locks)
                ).first()
                if row is None:
                    conn.close()
                    return None
                # Read again, now that the partition is ours: a statement of its own sees
                # every position its previous holder committed before letting it go.
                position = conn.scalar(sa.select(c.position).where(c.name == name,
                                                                   c.part == row.part))
                claim = Claim(row.part, position,
                              self._events(conn, row.part, position, limit))
            except BaseException:
                conn.close()
                raise
        with self._lock:
            self._held[(name, worker)] = (conn, row.part)
        return claim

    def ack(self, name: str, worker: str, partition: int, position: int,
            release: bool) -> bool:
        c = consumers.c
        where = (c.name == name, c.part == partition)
        if self._db.sqlite:
            values: dict[str, Any] = {"position": sa.func.max(c.position, position)}
            if release:
                values["owner"] = None
            with self._db.errors("cannot acknowledge events"), \
                    self._db.transaction(write=True) as conn:
                done = conn.execute(consumers.update().where(*where, c.owner == worker)
                                    .values(**values))
                return done.rowcount == 1
        with self._lock:
            held = self._held.get((name, worker))
            if held is None or held[1] != partition:
                return False
        # The position row is not the locked one (bpf_consumer_locks is): it is written and
        # committed at once, while the claim's transaction keeps the partition.
        with self._db.errors("cannot acknowledge events"), \
                self._db.transaction(write=True) as conn:
            conn.execute(consumers.update().where(*where)
                         .values(position=sa.func.greatest(c.position, position)))
        if release:
            self.release(name, worker)
        return True

    def release(self, name: str, worker: str) -> None:
        if self._db.sqlite:
            c = consumers.c
            with self._db.errors("cannot release events"), \
                    self._db.transaction(write=True) as conn:
                conn.execute(consumers.update().where(c.name == name, c.owner == worker)
                             .values(owner=None))
            return
        with self._lock:
            held = self._held.pop((name, worker), None)
        if held is not None:
            with contextlib.suppress(Exception):
                held[0].close()  # rolls back: the row lock ends, the position stays

    # -- retention -----------------------------------------------------------------------------

    def prune(self, before: datetime) -> int:
        h = horizons.c
        self.number()  # pending events are pruned once numbered, never while pending
        with self._db.errors("cannot prune events"), \
                self._db.transaction(write=True) as conn:
            last = conn.scalar(sa.select(sa.func.max(events.c.seq))
                               .where(events.c.at < before, events.c.seq > 0))
            if last is not None and self._db.sqlite:
                # The newest event stays: SQLite numbers the next one after it.
                newest = conn.scalar(sa.select(sa.func.max(events.c.seq)))
                last = last if last < newest else last - 1
            if not last:
                return 0
            tops = conn.execute(
                sa.select(events.c.part, sa.func.max(events.c.seq))
                .where(events.c.seq <= last, events.c.seq > 0).group_by(events.c.part)
            ).all()
            for part, seq in [(-1, last), *tops]:
                conn.execute(horizons.update().where(h.part == part, h.seq < seq)
                             .values(seq=seq))
            return conn.execute(
                events.delete().where(events.c.seq <= last, events.c.seq > 0)).rowcount

    # -- waiting -------------------------------------------------------------------------------

    def wait(self, timeout: float) -> bool:
        if self._db.sqlite:
            return self._poll(timeout)
        return self._listen(timeout)

    def _newest(self) -> int:
        with self._db.reading("cannot read events") as conn:
            return conn.scalar(sa.select(sa.func.max(events.c.seq))) or 0

    def _poll(self, timeout: float, sleep: Callable[[float], Any] = time.sleep) -> bool:
        """SQLite: look for a newer event every 10 ms at first, backing off to 250 ms, with
        ``sleep`` between looks (the asyncio store's lets its event loop run)."""
        deadline = time.monotonic() + timeout
        seen = self._last_seen  # as it was when this wait began: concurrent waits all wake
        interval = 0.01
        while True:
            newest = self._newest()
            if newest > seen:
                self._last_seen = max(self._last_seen, newest)
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            sleep(min(interval, left))
            interval = min(interval * 2, 0.25)

    def _listen(self, timeout: float) -> bool:
        """PostgreSQL: wait for a NOTIFY on the listening connection, kept open between waits
        so a notification sent while the caller was busy is not missed."""
        with self._lock:
            listener = self._listener
            first = listener is None or listener.closed
            if first:
                listener = self._listener = self._connect_listener()
        if first:
            return True  # events may have come before we listened: read first
        with self._db.errors("cannot wait for events"):
            for _ in listener.notifies(timeout=timeout, stop_after=1):
                return True
        return False

    def _connect_listener(self) -> Any:
        return listener(self._db.engine)

    def close(self) -> None:
        if self.notifier is not None:
            self.notifier.close()
        with self._lock:
            held, self._held = list(self._held.values()), {}
            listener, self._listener = self._listener, None
        for conn, _ in held:
            with contextlib.suppress(Exception):
                conn.close()
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()


def _alive(owner: str) -> bool:
    """Whether the worker ``owner`` (host:pid:random) may still run: a worker of another host
    is taken to; one of this host runs if its process does."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
