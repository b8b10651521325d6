"""The outbox in SQL, read: events in order, the consumers' positions, claiming a partition
for one worker, pruning, and waiting for new events. The tables, and how events are written
and numbered, are `bpf.store.sql.events`'s; how waiting consumers are woken,
`bpf.store.sql.notifier`'s.

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
from bpf.store.base import Claim, Event
from bpf.store.sql.events import (
    ANY_PENDING,
    LOCK_COUNTER,
    NUMBER,
    READ,
    consumers,
    events,
    horizons,
    locks,
)
from bpf.store.sql.notifier import Notifier, listener

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
            if conn.scalar(ANY_PENDING) is None:
                return
            # The counter's lock first, then, in a statement of its own (a snapshot taken after
            # the lock), the numbering: a second reader numbering at the same time waits here
            # and then sees what the first numbered.
            conn.execute(LOCK_COUNTER)
            conn.execute(NUMBER)

    # -- reading -----------------------------------------------------------------------------

    def read(self, after: int | None, limit: int, process: str | None) -> list[Event]:
        self.number()
        with self._db.reading("cannot read events") as conn:
            horizon = conn.scalar(sa.select(horizons.c.seq).where(horizons.c.part == -1)) or 0
            if after is not None and after < horizon:
                raise _pruned(f"events after {after}", horizon)
            query = sa.select(*READ).where(events.c.seq > (after or 0))
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
            sa.select(*READ).where(events.c.part == part, events.c.seq > position)
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
