"""The statements the store runs: reads as SQLAlchemy Core selects, writes compiled once per
store into positional SQL for the driver's cursor.

The write statements take positional parameters, one tuple per row, in the ``*_ORDER`` orders
below (`Statements` checks them against what SQLAlchemy compiled; `bpf.store.sql.rows` builds
the tuples). A tuple is cheaper to build and to bind than a dict, which matters on the bulk
path (docs/performance.md).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from bpf.store.sql import events
from bpf.store.sql.tables import (
    FLOW_COLUMNS,
    HISTORY_COLUMNS,
    LAST_COLUMNS,
    flow_records,
    flows,
    history,
    records,
)

# Never changed by an UPDATE:
_FIXED_COLUMNS = ("id", "process", "record_id", "started_at", "entity")
UPDATED_COLUMNS = tuple(c for c in FLOW_COLUMNS if c not in _FIXED_COLUMNS)
UPDATE_ORDER = (*UPDATED_COLUMNS, "b_id", "b_expected")
HISTORY_ORDER = (*HISTORY_COLUMNS, "seconds", "entered_first", "advanced_first")
LAST_ORDER = ("entity", "record_id", *LAST_COLUMNS)
ACTIVE_ORDER = ("entity", "record_id", "active_flow_id")
SPAN_ORDER = ("flow_id", "entity", "record_id", "position")
SINGLE_MOVE_ORDER = (
    *UPDATE_ORDER, *(f"h_{c}" for c in HISTORY_ORDER), *(f"r_{c}" for c in LAST_ORDER)
)

# -- reads ---------------------------------------------------------------------------------------

#: A flow's columns as `bpf.store.sql.rows.flow_rows` reads them, its records joined after.
FLOW_ROW_COLUMNS = (
    flows.c.id, flows.c.process, flows.c.version, flows.c.stage, flows.c.stage_started_at,
    flows.c.traversed, flows.c.status, flows.c.started_at, flows.c.completed_at,
    flows.c.outcome, flows.c.revision, flows.c.changed_at, flows.c.entered, flows.c.advanced,
    flow_records.c.entity, flow_records.c.record_id,
)
GET_FLOW = (
    sa.select(*FLOW_ROW_COLUMNS)
    .join_from(flows, flow_records, flow_records.c.flow_id == flows.c.id)
    .where(flows.c.id == sa.bindparam("flow_id"))
    .order_by(flow_records.c.position)
)
_spans = flow_records.alias("spans")

def _record_flows(*conditions: Any) -> sa.Select[Any]:
    return (
        sa.select(*FLOW_ROW_COLUMNS)
        .select_from(_spans)
        .join(flows, flows.c.id == _spans.c.flow_id)
        .join(flow_records, flow_records.c.flow_id == flows.c.id)
        .where(_spans.c.record_id == sa.bindparam("record_id"), *conditions)
        .order_by(_spans.c.id, flow_records.c.position)
    )


#: The flows spanning the record (entity, record_id), in start order.
RECORD_FLOWS = _record_flows(_spans.c.entity == sa.bindparam("entity"))
#: The flows spanning a record of that id of any entity (a flow spanning two such records
#: comes once per span; `bpf.store.sql.rows.flow_rows` folds consecutive rows of one flow).
ID_FLOWS = _record_flows()
HISTORY = (
    sa.select(*(history.c[c] for c in HISTORY_COLUMNS))
    .where(history.c.flow_id == sa.bindparam("flow_id"))
    .order_by(history.c.id)
)
_RECORD = (records.c.entity == sa.bindparam("entity"),
           records.c.record_id == sa.bindparam("record_id"))
ACTIVE_FLOW = sa.select(records.c.active_flow_id).where(*_RECORD)
LAST_CHANGE = sa.select(*(records.c[c] for c in LAST_COLUMNS)).where(
    *_RECORD, records.c.last_flow_id.is_not(None)
)


def flow_page(conditions: Sequence[Any], after: str, size: int) -> sa.Select[Any]:
    """Up to ``size`` flows matching ``conditions`` with ids after ``after``, in id order,
    each with its records (keyset paging)."""
    page = (
        sa.select(flows.c.id).where(*conditions, flows.c.id > after)
        .order_by(flows.c.id).limit(size).subquery()
    )
    return (
        sa.select(*FLOW_ROW_COLUMNS)
        .join_from(flows, page, page.c.id == flows.c.id)
        .join(flow_records, flow_records.c.flow_id == flows.c.id)
        .order_by(flows.c.id, flow_records.c.position)
    )


# -- writes --------------------------------------------------------------------------------------

# SET takes the columns of the parameters; those that never change are left out of them.
_UPDATE_FLOW = flows.update().where(
    flows.c.id == sa.bindparam("b_id"), flows.c.revision == sa.bindparam("b_expected")
)
_FLOW_STATE = sa.select(
    flows.c.revision, flows.c.status, flows.c.changed_at, flows.c.entered, flows.c.advanced
).where(flows.c.id == sa.bindparam("id"))

_FIND_FLOW = sa.select(flows.c.id).where(
    flows.c.process == sa.bindparam("process"), flows.c.entity == sa.bindparam("entity"),
    flows.c.record_id == sa.bindparam("record_id"),
)


def _single_move_statement(with_event: bool = False, notify: bool = False) -> Any:
    """PostgreSQL: update a flow at its expected revision and, only if that matched, insert
    its history row and upsert the record's last change (and, ``with_event``, its outbox
    event, pending, NOTIFYing if ``notify``: `bpf.store.sql.events`); selects how many flows
    matched."""

    def params(table: sa.Table, prefix: str, columns: Sequence[str]) -> sa.Select[Any]:
        return sa.select(*(
            sa.cast(sa.bindparam(prefix + c, type_=table.c[c].type), table.c[c].type)
            for c in columns
        ))

    updated = (
        flows.update()
        .where(flows.c.id == sa.bindparam("b_id"),
               flows.c.revision == sa.bindparam("b_expected"))
        .values({c: sa.bindparam(c, type_=flows.c[c].type) for c in UPDATED_COLUMNS})
        .returning(flows.c.id)
        .cte("moved")
    )
    entry = history.insert().from_select(
        HISTORY_ORDER, params(history, "h_", HISTORY_ORDER).select_from(updated)
    )
    if with_event:
        entry = entry.returning(*(history.c[c] for c in events.FROM_HISTORY))
    entry = entry.cte("entry")
    last = pg_dialect.insert(records).from_select(
        LAST_ORDER, params(records, "r_", LAST_ORDER).select_from(updated)
    )
    last = last.on_conflict_do_update(
        index_elements=[records.c.entity, records.c.record_id],
        set_={c: last.excluded[c] for c in LAST_COLUMNS},
    ).cte("last")
    statement = sa.select(sa.func.count()).select_from(updated).add_cte(entry).add_cte(last)
    if with_event:
        statement = statement.add_cte(events.single_move_cte(entry, params, notify))
    return statement


def _upserts(dialect: str) -> tuple[Any, Any]:
    """The two upserts of bpf_records (active flow; last change) for ``dialect``."""
    make = sqlite_dialect.insert if dialect == "sqlite" else pg_dialect.insert
    active = make(records)
    active = active.on_conflict_do_update(
        index_elements=[records.c.entity, records.c.record_id],
        set_={"active_flow_id": active.excluded.active_flow_id},
    )
    last = make(records)
    last = last.on_conflict_do_update(
        index_elements=[records.c.entity, records.c.record_id],
        set_={c: last.excluded[c] for c in LAST_COLUMNS},
    )
    return active, last


class Statements:
    """The write statements, compiled once per store for its dialect and schema, with
    positional parameters (``?`` on SQLite, ``%s`` on PostgreSQL).

    ``sql`` maps each statement's name (insert_flow, update_flow, insert_flow_record,
    insert_history, upsert_active, upsert_last, flow_state, find_flow, and single_move on
    PostgreSQL) to its SQL text.
    """

    def __init__(self, dialect: sa.Dialect, schema: str | None) -> None:
        positional = type(dialect)(paramstyle="qmark" if dialect.name == "sqlite" else "format")
        translate = {None: schema} if schema is not None else None
        upsert_active, upsert_last = _upserts(dialect.name)
        self.sql: dict[str, str] = {}
        self._compiled: dict[str, tuple[str, Callable[[Any], tuple[Any, ...]] | None]] = {}

        def add(name: str, statement: Any, order: Sequence[str], keys: Sequence[str] = ()) -> None:
            compiled = statement.compile(
                dialect=positional, column_keys=list(keys), schema_translate_map=translate,
                render_schema_translate=translate is not None,
            )
            names = tuple(compiled.positiontup or ())
            if sorted(names) != sorted(order):
                raise RuntimeError(f"bpf: the {name} statement takes {names}, not {tuple(order)}")
            # Should SQLAlchemy ever render the parameters in another order, reorder the tuples.
            reorder = (None if names == tuple(order)
                       else operator.itemgetter(*(order.index(n) for n in names)))
            self.sql[name] = str(compiled)
            self._compiled[name] = (self.sql[name], reorder)

        add("insert_flow", flows.insert(), FLOW_COLUMNS, FLOW_COLUMNS)
        add("update_flow", _UPDATE_FLOW, UPDATE_ORDER, UPDATE_ORDER)
        add("insert_flow_record", flow_records.insert(), SPAN_ORDER, SPAN_ORDER)
        add("insert_history", history.insert(), HISTORY_ORDER, HISTORY_ORDER)
        add("upsert_active", upsert_active, ACTIVE_ORDER, ACTIVE_ORDER)
        add("upsert_last", upsert_last, LAST_ORDER, LAST_ORDER)
        add("flow_state", _FLOW_STATE, ("id",))
        add("find_flow", _FIND_FLOW, ("process", "entity", "record_id"))
        columns = events.EVENT_COLUMNS
        add("insert_event", events.insert_statement(dialect.name), columns, columns)
        if dialect.name != "sqlite":
            add("single_move", _single_move_statement(), SINGLE_MOVE_ORDER)
            with_event = (*SINGLE_MOVE_ORDER, *(f"e_{c}" for c in events.SINGLE_MOVE_COLUMNS))
            add("single_move_event", _single_move_statement(with_event=True), with_event)
            add("single_move_event_notify",
                _single_move_statement(with_event=True, notify=True), with_event)
            add("notify", events.notify_statement(), ())

    def execute(self, cursor: Any, name: str, params: Any) -> Any:
        """Run statement ``name`` on ``cursor`` with one tuple, or a list of them; the cursor."""
        sql, reorder = self._compiled[name]
        if type(params) is list:
            if reorder is not None:
                params = [reorder(p) for p in params]
            if len(params) == 1:
                cursor.execute(sql, params[0])
            else:
                cursor.executemany(sql, params)
        else:
            cursor.execute(sql, params if reorder is None else reorder(params))
        return cursor

