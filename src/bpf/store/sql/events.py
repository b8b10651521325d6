"""The outbox's tables and the statements that write and number events.

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
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from bpf.store.base import PARTITIONS, Event, partition_of
from bpf.store.sql.notifier import CHANNEL
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
READ = (events.c.id, events.c.seq,
         *(events.c[c] for c in EVENT_COLUMNS if c not in ("id", "part")))


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


ANY_PENDING = sa.select(events.c.seq).where(events.c.seq < 0).limit(1)
LOCK_COUNTER = sa.select(counter.c.last_seq).where(counter.c.id == 1).with_for_update()
NUMBER = _number_statement(10_000)
