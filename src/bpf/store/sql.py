"""The SQL store: flows, history and record state in SQLite or PostgreSQL, on SQLAlchemy Core.

One `SQLStore` serves both dialects. Every `write` is one transaction: optimistic concurrency
on each flow's ``revision`` (``UPDATE ... WHERE id = :id AND revision = :expected``) makes a
stale writer fail with `bpf.ConcurrencyError` and change nothing, and a history row is written
in the same transaction as the flow change it describes, so a crash leaves both or neither.

Each history row also carries what the reports need without reading every flow: how long the
stay it ends lasted (``seconds``), and whether it is the flow's first entry into its stage
(``entered_first``) or first forward move out of the stage it leaves (``advanced_first``).
The store works those out from two private columns of ``bpf_flows`` (``changed_at``,
``entered``/``advanced``), read under the same lock as the update.

Every SQLAlchemy or driver error is translated here into `bpf.StoreError`, naming the URL with
its password hidden.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import operator
import os
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.engine.url import URL
from sqlalchemy.pool import SingletonThreadPool, StaticPool

from bpf._errors import BpfError, ConcurrencyError, FlowExistsError, FlowNotFoundError, StoreError
from bpf.runtime.flow import StageChange
from bpf.store.base import (
    FlowRow,
    InsertFlow,
    Op,
    SetActiveFlow,
    SetLastChange,
    StageTime,
    Store,
    UpdateFlow,
)

#: The schema version this code writes. Stored in ``bpf_meta``; see `MIGRATIONS`.
SCHEMA_VERSION = 1

#: Forward migrations of the stored schema: ``MIGRATIONS[n](connection)`` upgrades a version-n
#: schema to version n + 1, inside the transaction that then records the new version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}

#: SQLite ``PRAGMA synchronous`` values accepted (``?synchronous=normal`` or the argument).
SYNCHRONOUS = ("full", "normal", "extra", "off")

# History kinds after which the flow's clock stops (see Flow.time_in_stage).
_STOPPED = frozenset({"finish", "abandon"})
_PAGE = 500  # flows per page when streaming; ids per IN list
_KNOWN = 100_000  # flow states kept to spare a read before an update
_PG_LOCK_KEY = 0x62706673  # "bpfs": serializes schema creation on PostgreSQL


class _UTC(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on both dialects: SQLite keeps naive UTC text, re-attached on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: bpf stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY on SQLite

metadata = sa.MetaData()

meta = sa.Table(
    "bpf_meta", metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
)

flows = sa.Table(
    "bpf_flows", metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("process", sa.String, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),  # the primary record
    sa.Column("stage", sa.String, nullable=False),
    sa.Column("stage_started_at", _UTC, nullable=False),
    sa.Column("traversed", sa.Text, nullable=False),  # JSON list of stage ids
    sa.Column("status", sa.String, nullable=False),
    sa.Column("started_at", _UTC, nullable=False),
    sa.Column("completed_at", _UTC),
    sa.Column("outcome", sa.String),
    sa.Column("revision", sa.Integer, nullable=False),
    # Private to the store, for the report columns of bpf_history:
    sa.Column("changed_at", _UTC, nullable=False),  # when the last history entry was made
    sa.Column("entered", sa.Text, nullable=False),  # JSON list: stages ever entered
    sa.Column("advanced", sa.Text, nullable=False),  # JSON list: stages ever left forward
    sa.UniqueConstraint("process", "record_id", name="uq_bpf_flows_process_record"),
    # Serves stage counts, status counts and stale flows without touching the table.
    sa.Index("ix_bpf_flows_report", "process", "status", "stage", "version", "stage_started_at"),
)

flow_records = sa.Table(
    "bpf_flow_records", metadata,
    # Insertion order = the order flows came to span a record ("start order").
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("flow_id", sa.String, sa.ForeignKey("bpf_flows.id"), nullable=False),
    sa.Column("entity", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("flow_id", "position", name="uq_bpf_flow_records_position"),
    sa.Index("ix_bpf_flow_records_record", "record_id"),
)

history = sa.Table(
    "bpf_history", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("flow_id", sa.String, sa.ForeignKey("bpf_flows.id"), nullable=False),
    sa.Column("process", sa.String, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("from_stage", sa.String),
    sa.Column("to_stage", sa.String, nullable=False),
    sa.Column("phase", sa.String, nullable=False),
    sa.Column("at", _UTC, nullable=False),
    sa.Column("actor", sa.String),
    # Derived at write time, for the reports:
    sa.Column("seconds", sa.Float),  # length of the stay in from_stage this entry ends
    sa.Column("entered_first", sa.SmallInteger, nullable=False),  # 1: first entry into to_stage
    sa.Column("advanced_first", sa.SmallInteger, nullable=False),  # 1: first "next" out of from
    sa.Index("ix_bpf_history_flow", "flow_id", "id"),
    sa.Index("ix_bpf_history_entered", "process", "entered_first", "to_stage"),
    sa.Index("ix_bpf_history_advanced", "process", "advanced_first", "from_stage"),
    sa.Index("ix_bpf_history_stay", "process", "from_stage", "seconds"),
)

records = sa.Table(
    "bpf_records", metadata,
    sa.Column("record_id", sa.String, primary_key=True),
    sa.Column("active_flow_id", sa.String, sa.ForeignKey("bpf_flows.id")),
    # The latest stage change on the record, by any flow:
    sa.Column("last_flow_id", sa.String, sa.ForeignKey("bpf_flows.id")),
    sa.Column("last_process", sa.String),
    sa.Column("last_version", sa.Integer),
    sa.Column("last_kind", sa.String),
    sa.Column("last_from_stage", sa.String),
    sa.Column("last_to_stage", sa.String),
    sa.Column("last_phase", sa.String),
    sa.Column("last_at", _UTC),
    sa.Column("last_actor", sa.String),
)

_FLOW_COLUMNS = (
    "id", "process", "version", "record_id", "stage", "stage_started_at", "traversed", "status",
    "started_at", "completed_at", "outcome", "revision", "changed_at", "entered", "advanced",
)
_HISTORY_COLUMNS = (
    "flow_id", "process", "version", "record_id", "kind", "from_stage", "to_stage", "phase",
    "at", "actor",
)
_LAST_COLUMNS = (
    "last_flow_id", "last_process", "last_version", "last_kind", "last_from_stage",
    "last_to_stage", "last_phase", "last_at", "last_actor",
)

# The write statements take positional parameters: one tuple per row, built in these orders
# (`_Statements` checks them against what SQLAlchemy compiled). A tuple is cheaper to
# build and to bind than a dict, which matters on the bulk path (docs/performance.md).
_FIXED_COLUMNS = ("id", "process", "record_id", "started_at")  # never changed by an UPDATE
_UPDATED_COLUMNS = tuple(c for c in _FLOW_COLUMNS if c not in _FIXED_COLUMNS)
_UPDATE_ORDER = (*_UPDATED_COLUMNS, "b_id", "b_expected")
_HISTORY_ORDER = (*_HISTORY_COLUMNS, "seconds", "entered_first", "advanced_first")
_LAST_ORDER = ("record_id", *_LAST_COLUMNS)
_ACTIVE_ORDER = ("record_id", "active_flow_id")
_SPAN_ORDER = ("flow_id", "entity", "record_id", "position")
_SINGLE_MOVE_ORDER = (
    *_UPDATE_ORDER, *(f"h_{c}" for c in _HISTORY_ORDER), *(f"r_{c}" for c in _LAST_ORDER)
)

# -- statements, built once --------------------------------------------------------------------

_INSERT_FLOW = flows.insert()
_INSERT_FLOW_RECORD = flow_records.insert()
_INSERT_HISTORY = history.insert()
# SET takes the columns of the parameters; those that never change are left out of them.
_UPDATE_FLOW = flows.update().where(
    flows.c.id == sa.bindparam("b_id"), flows.c.revision == sa.bindparam("b_expected")
)
_FLOW_ROW_COLUMNS = (
    flows.c.id, flows.c.process, flows.c.version, flows.c.stage, flows.c.stage_started_at,
    flows.c.traversed, flows.c.status, flows.c.started_at, flows.c.completed_at,
    flows.c.outcome, flows.c.revision, flows.c.changed_at, flows.c.entered, flows.c.advanced,
)
_GET_FLOW = (
    sa.select(*_FLOW_ROW_COLUMNS, flow_records.c.entity, flow_records.c.record_id)
    .join_from(flows, flow_records, flow_records.c.flow_id == flows.c.id)
    .where(flows.c.id == sa.bindparam("flow_id"))
    .order_by(flow_records.c.position)
)
_spans = flow_records.alias("spans")
_RECORD_FLOWS = (
    sa.select(*_FLOW_ROW_COLUMNS, flow_records.c.entity, flow_records.c.record_id)
    .select_from(_spans)
    .join(flows, flows.c.id == _spans.c.flow_id)
    .join(flow_records, flow_records.c.flow_id == flows.c.id)
    .where(_spans.c.record_id == sa.bindparam("record_id"))
    .order_by(_spans.c.id, flow_records.c.position)
)
_HISTORY = (
    sa.select(*(history.c[c] for c in _HISTORY_COLUMNS))
    .where(history.c.flow_id == sa.bindparam("flow_id"))
    .order_by(history.c.id)
)
_ACTIVE_FLOW = sa.select(records.c.active_flow_id).where(
    records.c.record_id == sa.bindparam("record_id")
)
_FLOW_STATE = sa.select(
    flows.c.revision, flows.c.status, flows.c.changed_at, flows.c.entered, flows.c.advanced
).where(flows.c.id == sa.bindparam("id"))
_LAST_CHANGE = sa.select(*(records.c[c] for c in _LAST_COLUMNS)).where(
    records.c.record_id == sa.bindparam("record_id"), records.c.last_flow_id.is_not(None)
)


_last_datetime: tuple[datetime | None, str] = (None, "")


def _sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores, for an aware datetime, in UTC."""
    global _last_datetime
    last = _last_datetime  # one read: threads may replace it
    if value is last[0]:  # a move writes one instant three or four times
        return last[1]
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: bpf stores aware UTC datetimes only")
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.isoformat(" ")[:-6]  # C-fast; drop the "+00:00"
    if not utc.microsecond:
        text += ".000000"
    _last_datetime = (value, text)
    return text


def _json_list(items: Iterable[str]) -> str:
    """``json.dumps(list(items))`` for strings, without the encoder's Python layers."""
    return "[" + ", ".join(map(_quote, items)) + "]"


def _aware(value: datetime) -> datetime:
    """PostgreSQL's driver takes aware datetimes as they are; naive ones are refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: bpf stores aware UTC datetimes only")
    return value


def _single_move_statement() -> Any:
    """PostgreSQL: update a flow at its expected revision and, only if that matched, insert
    its history row and upsert the record's last change; selects how many flows matched."""

    def params(table: sa.Table, prefix: str, columns: Sequence[str]) -> sa.Select[Any]:
        return sa.select(*(
            sa.cast(sa.bindparam(prefix + c, type_=table.c[c].type), table.c[c].type)
            for c in columns
        ))

    updated = (
        flows.update()
        .where(flows.c.id == sa.bindparam("b_id"),
               flows.c.revision == sa.bindparam("b_expected"))
        .values({c: sa.bindparam(c, type_=flows.c[c].type) for c in _UPDATED_COLUMNS})
        .returning(flows.c.id)
        .cte("moved")
    )
    entry = history.insert().from_select(
        _HISTORY_ORDER, params(history, "h_", _HISTORY_ORDER).select_from(updated)
    ).cte("entry")
    last = pg_dialect.insert(records).from_select(
        _LAST_ORDER, params(records, "r_", _LAST_ORDER).select_from(updated)
    )
    last = last.on_conflict_do_update(
        index_elements=[records.c.record_id],
        set_={c: last.excluded[c] for c in _LAST_COLUMNS},
    ).cte("last")
    return sa.select(sa.func.count()).select_from(updated).add_cte(entry).add_cte(last)


def _upserts(dialect: str) -> tuple[Any, Any]:
    """The two upserts of bpf_records (active flow; last change) for ``dialect``."""
    make = sqlite_dialect.insert if dialect == "sqlite" else pg_dialect.insert
    active = make(records)
    active = active.on_conflict_do_update(
        index_elements=[records.c.record_id],
        set_={"active_flow_id": active.excluded.active_flow_id},
    )
    last = make(records)
    last = last.on_conflict_do_update(
        index_elements=[records.c.record_id],
        set_={c: last.excluded[c] for c in _LAST_COLUMNS},
    )
    return active, last


class _Statements:
    """The write statements, compiled once per store for its dialect and schema, with
    positional parameters (``?`` on SQLite, ``%s`` on PostgreSQL) taking the tuples the
    ``_*_params`` functions build."""

    def __init__(self, dialect: sa.Dialect, schema: str | None) -> None:
        positional = type(dialect)(paramstyle="qmark" if dialect.name == "sqlite" else "format")
        translate = {None: schema} if schema is not None else None
        upsert_active, upsert_last = _upserts(dialect.name)
        self._sql: dict[str, tuple[str, Callable[[Any], tuple[Any, ...]] | None]] = {}

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
            self._sql[name] = (str(compiled), reorder)

        add("insert_flow", _INSERT_FLOW, _FLOW_COLUMNS, _FLOW_COLUMNS)
        add("update_flow", _UPDATE_FLOW, _UPDATE_ORDER, _UPDATE_ORDER)
        add("insert_flow_record", _INSERT_FLOW_RECORD, _SPAN_ORDER, _SPAN_ORDER)
        add("insert_history", _INSERT_HISTORY, _HISTORY_ORDER, _HISTORY_ORDER)
        add("upsert_active", upsert_active, _ACTIVE_ORDER, _ACTIVE_ORDER)
        add("upsert_last", upsert_last, _LAST_ORDER, _LAST_ORDER)
        add("flow_state", _FLOW_STATE, ("id",))
        if dialect.name != "sqlite":
            add("single_move", _single_move_statement(), _SINGLE_MOVE_ORDER)

    def execute(self, cursor: Any, name: str, params: Any) -> Any:
        """Run statement ``name`` on ``cursor`` with one tuple, or a list of them; the cursor."""
        sql, reorder = self._sql[name]
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


# -- URLs and errors ---------------------------------------------------------------------------


def _hide(url: str) -> str:
    """A URL string we could not parse, with anything that looks like a password masked."""
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def _show(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _cause(exc: BaseException) -> str:
    """What went wrong, in the driver's words, on one line, without the SQL statement."""
    orig = getattr(exc, "orig", None)
    if isinstance(exc, sa_exc.StatementError) and orig is not None:  # DBAPIError included
        exc = orig
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, sa_exc.SQLAlchemyError):
        text = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", text)
    return f"{type(exc).__name__}: {text}"


def _retry_dropped(read: Callable[..., Any]) -> Callable[..., Any]:
    """Run a read once more when its pooled connection had been dropped by the server.

    SQLAlchemy marks the error (``connection_invalidated``) and discards the pool's stale
    connections, so the second try gets a fresh one. Writes do the same in `SQLStore.write`.
    This replaces a ping on every checkout, which cost a round trip per move.
    """

    @functools.wraps(read)
    def retrying(self: SQLStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return read(self, *args, **kwargs)
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, sa_exc.DBAPIError) and cause.connection_invalidated:
                return read(self, *args, **kwargs)
            raise

    return retrying


class _State:
    """What the store knows of one flow while planning a write."""

    __slots__ = ("advanced", "changed_at", "entered", "revision", "running")

    def __init__(
        self, revision: int, running: bool, changed_at: datetime | None,
        entered: set[str], advanced: set[str],
    ) -> None:
        self.revision = revision
        self.running = running  # the clock runs (the last entry is not finish/abandon)
        self.changed_at = changed_at
        self.entered = entered
        self.advanced = advanced

    def copy(self) -> _State:
        return _State(self.revision, self.running, self.changed_at, set(self.entered),
                      set(self.advanced))


def _stored_state(
    revision: int, status: str, changed_at: datetime | None, entered: str, advanced: str
) -> _State:
    """A flow's state from its stored columns (``changed_at`` as an aware datetime)."""
    return _State(revision, status == "active", changed_at, set(json.loads(entered)),
                  set(json.loads(advanced)))


def _state_of(r: Any) -> _State:
    """A flow's state from a row read through SQLAlchemy."""
    return _stored_state(r.revision, r.status, r.changed_at, r.entered, r.advanced)


DateTimeIn = Callable[[datetime], Any]  # an aware datetime as the driver takes it


def _history_params(entry: StageChange, state: _State, dt: DateTimeIn) -> tuple[Any, ...]:
    """The history row of ``entry`` (`_HISTORY_ORDER`), advancing ``state`` past it."""
    seconds = None
    kind = entry.kind
    from_stage = entry.from_stage
    migrating = kind == "migrate"  # not a move in the business: the stay goes on
    if state.running and state.changed_at is not None and from_stage is not None and not migrating:
        seconds = (entry.at - state.changed_at).total_seconds()
    entered_first = entry.to_stage not in state.entered
    advanced_first = kind == "next" and from_stage is not None and from_stage not in state.advanced
    if entered_first:
        state.entered.add(entry.to_stage)
    if advanced_first:
        state.advanced.add(from_stage)  # type: ignore[arg-type]
    if not migrating:
        state.changed_at = entry.at
        state.running = kind not in _STOPPED
    return (
        entry.flow_id, entry.process, entry.version, entry.record_id, kind, from_stage,
        entry.to_stage, entry.phase, dt(entry.at), entry.actor,
        seconds, int(entered_first), int(advanced_first),
    )


def _last_params(record_id: str, c: StageChange, dt: DateTimeIn) -> tuple[Any, ...]:
    """The bpf_records row of a record's last stage change (`_LAST_ORDER`)."""
    return (
        record_id, c.flow_id, c.process, c.version, c.kind, c.from_stage, c.to_stage, c.phase,
        dt(c.at), c.actor,
    )


def _update_params(flow: Any, state: _State, expected: int, dt: DateTimeIn) -> tuple[Any, ...]:
    """A flow's UPDATE from revision ``expected`` to where it stands now (`_UPDATE_ORDER`)."""
    completed = flow.completed_at
    return (
        flow._compiled.definition.version, flow._stage.stage.id, dt(flow.stage_started_at),
        _json_list(flow._traversed), flow.status, None if completed is None else dt(completed),
        flow.outcome, flow.revision, dt(state.changed_at or flow.stage_started_at),
        _json_list(sorted(state.entered)), _json_list(sorted(state.advanced)),
        flow.id, expected,
    )


def _insert_params(flow: Any, state: _State, dt: DateTimeIn) -> tuple[Any, ...]:
    """A new flow's row as it stands now (`_FLOW_COLUMNS`)."""
    completed = flow.completed_at
    definition = flow._compiled.definition
    return (
        flow.id, definition.process, definition.version, flow._records[0][1],
        flow._stage.stage.id, dt(flow.stage_started_at), _json_list(flow._traversed),
        flow.status, dt(flow.started_at), None if completed is None else dt(completed),
        flow.outcome, flow.revision, dt(state.changed_at or flow.stage_started_at),
        _json_list(sorted(state.entered)), _json_list(sorted(state.advanced)),
    )


def _flow_rows(result: Iterable[Any], states: dict[str, _State]) -> list[FlowRow]:
    """FlowRows from rows of a flow joined with its records, each flow's rows consecutive;
    the store's state of each flow goes into ``states``."""
    out: list[FlowRow] = []
    current: Any = None
    spans: list[tuple[str, str]] = []
    for r in result:
        if current is None or r.id != current.id:
            if current is not None:
                out.append(_flow_row(current, spans))
            current, spans = r, []
            states[r.id] = _state_of(r)
        if (r.entity, r.record_id) not in spans:
            spans.append((r.entity, r.record_id))
    if current is not None:
        out.append(_flow_row(current, spans))
    return out


def _flow_row(r: Any, spans: list[tuple[str, str]]) -> FlowRow:
    return FlowRow(
        id=r.id, process=r.process, version=r.version, records=tuple(spans), stage=r.stage,
        stage_started_at=r.stage_started_at, traversed=tuple(json.loads(r.traversed)),
        status=r.status, started_at=r.started_at, completed_at=r.completed_at,
        outcome=r.outcome, revision=r.revision,
    )


class SQLStore(Store):
    """Flows in SQLite or PostgreSQL, through SQLAlchemy Core.

    ``target`` is a database URL (``"sqlite:///bpf.db"``, ``"postgresql+psycopg://user@host/db"``;
    a plain ``postgresql://`` URL uses psycopg 3 unless psycopg2 is installed) or a SQLAlchemy
    `Engine` of the caller's own, so bpf's tables live in the application's database.

    ``schema`` puts the tables in that PostgreSQL schema. ``synchronous`` is SQLite's
    ``PRAGMA synchronous`` for a URL-opened file: ``"full"`` (the default) makes every
    committed move survive a power cut; ``"normal"`` is faster in WAL mode and still survives
    a crash of the process, but may lose the last commits on a power cut. The URL may carry it
    as ``?synchronous=normal``. ``busy_timeout`` is how long (seconds) a SQLite writer waits
    for another process's transaction instead of failing.

    The tables are created on first use and the schema version is checked: a database written
    by a newer bpf is refused with `bpf.StoreError`.
    """

    live = False

    def __init__(
        self,
        target: str | sa.Engine,
        *,
        schema: str | None = None,
        synchronous: str | None = None,
        busy_timeout: float = 30.0,
    ) -> None:
        self._own = not isinstance(target, sa.Engine)
        self._schema = schema
        if isinstance(target, sa.Engine):
            engine = target
            self.url = _show(engine.url)
        elif isinstance(target, str):
            engine = self._create_engine(target, synchronous, busy_timeout)
        else:
            raise StoreError(
                f"SQLStore takes a database URL or a SQLAlchemy Engine, got {type(target).__name__}"
            )
        self.dialect = engine.dialect.name
        if self.dialect not in ("sqlite", "postgresql"):
            raise StoreError(
                f"{self.url}: bpf stores flows in SQLite or PostgreSQL, not {self.dialect}"
            )
        if schema is not None:
            engine = engine.execution_options(schema_translate_map={None: schema})
        self._engine = engine
        self._sqlite = self.dialect == "sqlite"
        # One shared connection (StaticPool), or one database per thread (SingletonThreadPool,
        # an in-memory SQLite): reads must stay in the caller's thread.
        self.concurrent_reads = not isinstance(engine.pool, StaticPool | SingletonThreadPool)
        # The write path runs on the driver's cursor (see `_Statements`): its errors are
        # translated too.
        self._driver_error: type[BaseException] = engine.dialect.loaded_dbapi.Error
        # What the store turns into StoreError (with the URL, password hidden).
        self._db_errors = (sa_exc.SQLAlchemyError, OSError, ValueError, self._driver_error)
        self._integrity_errors = (sa_exc.IntegrityError, engine.dialect.loaded_dbapi.IntegrityError)
        self._datetime: DateTimeIn = _sqlite_datetime if self._sqlite else _aware
        #: The state of flows as last written or read here, by id (see `_remember`).
        self._known: dict[str, _State] = {}
        self._statements: _Statements | None = None  # compiled on the first write
        # The connection writes go through, kept out of the pool (see `_write`).
        self._write_lock = threading.Lock()
        self._writer: Any = None
        self._writer_cursor: Any = None
        self._writer_pid = 0
        try:
            with self._errors("cannot open the store"):
                self._open()
        except BaseException:
            self.close()
            raise

    # -- opening ---------------------------------------------------------------------------------

    def _create_engine(self, text: str, synchronous: str | None, busy_timeout: float) -> sa.Engine:
        try:
            url = make_url(text)
        except sa_exc.ArgumentError as exc:
            self.url = _hide(text)
            raise StoreError(
                f"{self.url}: not a database URL ({_cause(exc)}); use 'sqlite:///path/bpf.db' or "
                "'postgresql+psycopg://user:password@host/database'"
            ) from exc
        self.url = _show(url)
        backend = url.get_backend_name()
        try:
            if backend == "sqlite":
                return self._sqlite_engine(url, synchronous, busy_timeout)
            if backend == "postgresql":
                return self._postgres_engine(url)
        except ImportError as exc:
            hint = " (pip install 'bpf[postgres]')" if backend == "postgresql" else ""
            raise StoreError(
                f"{self.url}: the database driver is not installed{hint}: {_cause(exc)}"
            ) from exc
        except sa_exc.SQLAlchemyError as exc:
            raise StoreError(f"{self.url}: cannot use this URL: {_cause(exc)}") from exc
        raise StoreError(
            f"{self.url}: bpf stores flows in SQLite ('sqlite:///path/bpf.db') or PostgreSQL "
            f"('postgresql+psycopg://user@host/db'), not {backend}"
        )

    def _sqlite_engine(self, url: URL, synchronous: str | None, busy_timeout: float) -> sa.Engine:
        query = dict(url.query)
        level = str(synchronous or query.pop("synchronous", None) or "full").lower()
        url = url.difference_update_query(["synchronous"])
        if level not in SYNCHRONOUS:
            raise StoreError(
                f"{self.url}: synchronous={level!r} is not a SQLite synchronous mode; use one of "
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
                    f"{self.url}: cannot create the database file: the directory {parent} does "
                    "not exist"
                )
        engine = sa.create_engine(url, connect_args=connect_args, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # bpf emits BEGIN itself (BEGIN IMMEDIATE for writes): the recipe of SQLAlchemy's
            # "Enabling Non-Legacy SQLite Transactional Modes".
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            try:
                if not memory:
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute(f"PRAGMA synchronous={level.upper()}")
                cursor.execute("PRAGMA foreign_keys=ON")
            finally:
                cursor.close()

        return engine

    def _postgres_engine(self, url: URL) -> sa.Engine:
        if url.drivername == "postgresql" and importlib.util.find_spec("psycopg2") is None:
            url = url.set(drivername="postgresql+psycopg")
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in url.query:
            connect_args["connect_timeout"] = 10
        # No pre-ping: writes (`write`) and reads (`_retry_dropped`) retry once on a
        # connection the server dropped.
        return sa.create_engine(url, connect_args=connect_args)

    def _open(self) -> None:
        """Create the tables on first use; check (and migrate) the stored schema version."""
        with self._transaction(write=True) as conn:
            if not self._sqlite:
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
                if self._schema is not None:
                    conn.execute(sa.schema.CreateSchema(self._schema, if_not_exists=True))
            stored = None
            if conn.dialect.has_table(conn, meta.name, schema=self._schema):
                value = conn.scalar(sa.select(meta.c.value).where(meta.c.key == "schema_version"))
                stored = int(value) if value is not None else None
            if stored is not None and stored > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.url}: the bpf tables have schema version {stored}, written by a newer "
                    f"bpf; this bpf knows versions up to {SCHEMA_VERSION}: upgrade bpf"
                )
            if stored is None:
                metadata.create_all(conn, checkfirst=True)
                conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
                return
            for version in range(stored, SCHEMA_VERSION):
                MIGRATIONS[version](conn)
            if stored != SCHEMA_VERSION:
                conn.execute(
                    meta.update().where(meta.c.key == "schema_version")
                    .values(value=str(SCHEMA_VERSION))
                )

    @_retry_dropped
    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self._errors("cannot read the schema version"), self._transaction() as conn:
            return int(conn.scalar(sa.select(meta.c.value).where(meta.c.key == "schema_version")))

    # -- transactions and errors -----------------------------------------------------------------

    @contextlib.contextmanager
    def _transaction(self, *, write: bool = False) -> Iterator[Connection]:
        """One transaction; committed when the block ends normally, rolled back otherwise.

        On SQLite a write transaction starts with BEGIN IMMEDIATE: it takes the write lock up
        front (waiting up to the busy timeout), so two writers never deadlock upgrading a read
        lock. A read transaction gives the statements of a read one snapshot.
        """
        with self._engine.connect() as conn:
            if self._sqlite and not conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
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
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except BpfError:
            raise
        except self._db_errors as exc:
            raise StoreError(f"{self.url}: {doing}: {_cause(exc)}") from exc

    def close(self) -> None:
        """Release connections (a caller's own Engine is left to the caller)."""
        with self._write_lock:
            writer, self._writer = self._writer, None
            if writer is not None and self._writer_pid == os.getpid():
                with contextlib.suppress(Exception):  # a dropped connection: nothing to reset
                    if not self._sqlite:
                        writer.driver_connection.autocommit = False
                writer.close()  # back to the pool
        if self._own:
            self._engine.dispose()

    def __repr__(self) -> str:
        return f"<SQLStore {self.url}>"

    # -- writing ---------------------------------------------------------------------------------

    def write(self, ops: Sequence[Op]) -> None:
        if not ops:
            return
        inserted = [op for op in ops if type(op) is InsertFlow]
        if inserted:
            self._check_duplicate_inserts(inserted)
        single = self._single_move(ops)
        for attempt in (1, 2):
            try:
                states = self._write(ops, single)
                break
            except BpfError:
                raise
            except self._db_errors as exc:
                # A connection the server dropped (restart, idle timeout) fails before the
                # commit, so nothing was written: try once more on a fresh connection. This
                # replaces a ping before every write, which cost a round trip per move.
                if attempt == 1 and getattr(exc, "_bpf_dropped", False):
                    continue
                if inserted and isinstance(exc, self._integrity_errors):
                    self._raise_if_exists(inserted)
                raise StoreError(f"{self.url}: cannot write: {_cause(exc)}") from exc
        self._remember(states)

    def _single_move(self, ops: Sequence[Op]) -> tuple[Any, int, StageChange, _State] | None:
        """The (flow, expected revision, entry, state) of a write that is one plain stage
        change of a flow this store knows at that revision, else None: the common case, which
        has a path of its own."""
        if len(ops) != 2:
            return None
        update, last = ops
        if (type(update) is not UpdateFlow or type(last) is not SetLastChange
                or update.new_records or len(update.entries) != 1
                or last.change is not update.entries[0]):
            return None
        known = self._known.get(update.flow.id)
        if known is None or known.revision != update.expected_revision:
            return None
        return update.flow, update.expected_revision, last.change, known

    def _write(
        self, ops: Sequence[Op], single: tuple[Any, int, StageChange, _State] | None
    ) -> dict[str, _State]:
        """``ops`` in one transaction on the store's write connection.

        The store keeps one connection for its writes rather than taking one from the pool
        per write: checking a connection out and back in (with its reset) cost more client CPU
        than the statements of a move (docs/performance.md). Writes through one store are
        serialized anyway, by the engine's lock and, on SQLite, by the database's single
        writer. On SQLite the transaction starts with BEGIN IMMEDIATE, which takes the write
        lock up front (waiting up to the busy timeout), so two writers never deadlock
        upgrading a read lock. On PostgreSQL the connection stays in autocommit: a single
        stage change is one statement (`_single_move_statement`), anything else runs in an
        explicit transaction.
        """
        with self._write_lock:
            if self._writer is None or self._writer_pid != os.getpid():
                self._open_writer()
            writer = self._writer
            driver = writer.driver_connection
            cursor = self._writer_cursor
            try:
                if self._sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                    if single is None:
                        states = self._apply(cursor, ops)
                    else:
                        states = self._apply_move(cursor, *single)
                    driver.commit()
                elif single is not None:
                    states = self._postgres_move(cursor, *single)
                else:
                    with driver.transaction():
                        states = self._apply(cursor, ops)
            except BaseException as exc:
                if self._sqlite:
                    if driver.in_transaction:
                        driver.rollback()
                elif (isinstance(exc, self._driver_error)
                        and self._engine.dialect.is_disconnect(exc, writer.dbapi_connection,
                                                               cursor)):
                    # Dropped before the commit: the server rolled back, a retry is safe.
                    # Had it committed a single move before the connection dropped, the retry
                    # finds the next revision and raises ConcurrencyError: never a double move.
                    exc._bpf_dropped = True  # type: ignore[attr-defined]
                    self._writer = None
                    writer.invalidate()
                elif not isinstance(exc, Exception):
                    # Interrupted (KeyboardInterrupt...) with a statement perhaps in flight:
                    # the connection's state is unknown, so the next write takes a new one.
                    self._writer = None
                    writer.invalidate()
                raise
        return states

    def _open_writer(self) -> None:
        """Take the write connection from the pool (again after a fork: the parent's
        connection is not ours to use)."""
        self._statements = self._statements or _Statements(self._engine.dialect, self._schema)
        if self._writer is not None and self._own:
            # A forked child: the pool holds the parent's connections too. Start a new pool
            # without closing them (SQLAlchemy's advice for engines crossing a fork).
            self._engine.dispose(close=False)
        writer = self._engine.raw_connection()
        try:
            if not self._sqlite:
                writer.driver_connection.autocommit = True
            cursor = writer.driver_connection.cursor()
        except BaseException:
            writer.close()
            raise
        self._writer, self._writer_cursor, self._writer_pid = writer, cursor, os.getpid()

    def _postgres_move(
        self, cursor: Any, flow: Any, expected: int, entry: StageChange, known: _State
    ) -> dict[str, _State]:
        """One stage change as ONE autocommitted statement (data-modifying CTEs: the flow's
        UPDATE, and the history row and the record's last change inserted only if the UPDATE
        found the expected revision): one round trip instead of five (BEGIN, three statements,
        COMMIT), with the same all-or-nothing outcome."""
        statements = self._statements
        assert statements is not None
        state, update, row = self._plan_move(flow, expected, entry, known)
        params = (*update, *row, *_last_params(entry.record_id, entry, _aware))
        (updated,) = statements.execute(cursor, "single_move", params).fetchone()
        if updated != 1:
            self._raise_conflict(cursor, [update])
        return {flow.id: state}

    def _plan_move(
        self, flow: Any, expected: int, entry: StageChange, known: _State
    ) -> tuple[_State, tuple[Any, ...], tuple[Any, ...]]:
        """A single stage change: the flow's state after it, its UPDATE and its history row."""
        state = known.copy()
        row = _history_params(entry, state, self._datetime)
        state.revision = expected + 1
        if flow.revision != state.revision:  # the engine and the ops disagree
            raise self._conflict(flow.id, flow.revision, state.revision)
        return state, _update_params(flow, state, expected, self._datetime), row

    def _apply(self, cursor: Any, ops: Sequence[Op]) -> dict[str, _State]:
        """Write ``ops`` with ``cursor``; returns the state each written flow is left in."""
        states: dict[str, _State] = {}
        unknown = []
        for op in ops:
            flow_id = op.flow.id if isinstance(op, InsertFlow | UpdateFlow) else None
            if flow_id is None or flow_id in states:
                continue
            if isinstance(op, InsertFlow):
                states[flow_id] = _State(0, False, None, set(), set())
                continue
            known = self._known.get(flow_id)
            if known is not None and known.revision == op.expected_revision:
                states[flow_id] = known.copy()
            else:
                unknown.append(flow_id)
        if unknown:
            self._read_states(cursor, unknown, states)

        dt = self._datetime
        inserted: dict[str, Any] = {}  # flow id -> flow, for flows new in this write
        updated: dict[str, tuple[Any, int]] = {}  # flow id -> (flow, revision it was read at)
        spans: list[tuple[Any, ...]] = []
        entries: list[tuple[Any, ...]] = []
        active: dict[str, tuple[str, str]] = {}
        last: dict[str, StageChange] = {}
        for op in ops:
            kind = type(op)
            if kind is UpdateFlow:
                flow = op.flow
                state = states[flow.id]
                if state.revision != op.expected_revision:
                    raise self._conflict(flow.id, state.revision, op.expected_revision)
                for e in op.entries:
                    entries.append(_history_params(e, state, dt))
                state.revision = op.expected_revision + 1
                if flow.id not in inserted and flow.id not in updated:
                    # Several changes of one flow in a batch: one UPDATE from the first revision.
                    updated[flow.id] = (flow, op.expected_revision)
                if op.new_records:
                    positions = {rid: i for i, (_, rid, _) in enumerate(flow._records)}
                    spans.extend((flow.id, e, rid, positions[rid]) for e, rid in op.new_records)
            elif kind is SetLastChange:
                last[op.record_id] = op.change
            elif kind is InsertFlow:
                flow = op.flow
                state = states[flow.id]
                for e in op.entries:
                    entries.append(_history_params(e, state, dt))
                state.revision = 1
                inserted[flow.id] = flow
                spans.extend(
                    (flow.id, e, rid, i) for i, (e, rid, _) in enumerate(flow._records)
                )
            elif kind is SetActiveFlow:
                active[op.record_id] = (op.record_id, op.flow_id)
        statements = self._statements
        assert statements is not None
        run = statements.execute
        if inserted:
            run(cursor, "insert_flow",
                [_insert_params(flow, states[i], dt) for i, flow in inserted.items()])
        if updated:
            # In id order, so concurrent writers lock rows in one order (no deadlock).
            params = []
            for i in sorted(updated):
                flow, expected = updated[i]
                if flow.revision != states[i].revision:  # the engine and the ops disagree
                    raise self._conflict(i, flow.revision, states[i].revision)
                params.append(_update_params(flow, states[i], expected, dt))
            if run(cursor, "update_flow", params).rowcount != len(params):
                self._raise_conflict(cursor, params)
        if spans:
            run(cursor, "insert_flow_record", spans)
        if entries:
            run(cursor, "insert_history", entries)
        if active:
            run(cursor, "upsert_active", [active[k] for k in sorted(active)])
        if last:
            run(cursor, "upsert_last", [_last_params(k, last[k], dt) for k in sorted(last)])
        return states

    def _apply_move(
        self, cursor: Any, flow: Any, expected: int, entry: StageChange, known: _State
    ) -> dict[str, _State]:
        """`_apply` for one stage change of a flow known at its revision: three statements."""
        statements = self._statements
        assert statements is not None
        state, update, row = self._plan_move(flow, expected, entry, known)
        if statements.execute(cursor, "update_flow", update).rowcount != 1:
            self._raise_conflict(cursor, [update])
        statements.execute(cursor, "insert_history", row)
        statements.execute(
            cursor, "upsert_last", _last_params(entry.record_id, entry, self._datetime)
        )
        return {flow.id: state}

    def _read_states(self, cursor: Any, ids: list[str], states: dict[str, _State]) -> None:
        """The stored state of flows this store has not seen at their current revision."""
        for flow_id in ids:
            found = self._state_in_store(cursor, flow_id)
            if found is None:
                raise FlowNotFoundError(
                    f"flow {flow_id!r} is not in the store {self.url} (was it started on "
                    "another database?)"
                )
            states[flow_id] = found

    def _state_in_store(self, cursor: Any, flow_id: str) -> _State | None:
        assert self._statements is not None
        row = self._statements.execute(cursor, "flow_state", (flow_id,)).fetchone()
        if row is None:
            return None
        revision, status, changed_at, entered, advanced = row
        # Read on the driver's cursor, so without _UTC's conversion: SQLite keeps naive text.
        if isinstance(changed_at, str):
            changed_at = datetime.fromisoformat(changed_at).replace(tzinfo=UTC)
        elif changed_at is not None:
            changed_at = changed_at.astimezone(UTC)
        return _stored_state(revision, status, changed_at, entered, advanced)

    def _raise_conflict(self, cursor: Any, params: list[tuple[Any, ...]]) -> None:
        """An UPDATE found another revision: raise `ConcurrencyError` naming the flow."""
        for p in params:
            flow_id, expected = p[-2:]  # b_id, b_expected
            found = self._state_in_store(cursor, flow_id)
            if found is None:
                raise FlowNotFoundError(f"flow {flow_id!r} is no longer in the store {self.url}")
            if found.revision != expected:
                raise self._conflict(flow_id, found.revision, expected)
        raise ConcurrencyError("a flow was changed by someone else; refresh it and try again")

    def _conflict(self, flow_id: str, stored: int, expected: int) -> ConcurrencyError:
        self._known.pop(flow_id, None)
        return ConcurrencyError(
            f"flow {flow_id!r} was changed by someone else: it is at revision {stored}, this "
            f"change was made on revision {expected}; call flow.refresh() and try again"
        )

    def _remember(self, states: Mapping[str, _State]) -> None:
        """Keep the state of flows as written or read: the next write of a flow at that
        revision needs no read. A revision names one committed state, so an entry is right for
        as long as the flow stays at its revision; the UPDATE's revision check catches the rest."""
        known = self._known
        if len(known) + len(states) > _KNOWN:
            known.clear()
        known.update(states)

    @staticmethod
    def _check_duplicate_inserts(inserted: list[InsertFlow]) -> None:
        seen: set[tuple[str, str]] = set()
        for op in inserted:
            flow = op.flow
            key = (flow._compiled.definition.process, flow.record_id)
            if key in seen:
                raise FlowExistsError(f"record {key[1]!r} already has a {key[0]!r} flow")
            seen.add(key)

    def _raise_if_exists(self, inserted: list[InsertFlow]) -> None:
        """After a failed insert: `FlowExistsError` when a (process, record) is already taken."""
        keys = [(op.flow._compiled.definition.process, op.flow.record_id) for op in inserted]
        with self._errors("cannot write"), self._transaction() as conn:
            for chunk in _chunks(keys):
                found = conn.execute(
                    sa.select(flows.c.process, flows.c.record_id).where(
                        sa.tuple_(flows.c.process, flows.c.record_id).in_(chunk)
                    ).limit(1)
                ).first()
                if found is not None:
                    raise FlowExistsError(
                        f"record {found.record_id!r} already has a {found.process!r} flow"
                    )

    # -- reading ---------------------------------------------------------------------------------

    @_retry_dropped
    def record_flows(self, record_id: str) -> list[FlowRow]:
        states: dict[str, _State] = {}
        with self._errors("cannot read flows"), self._transaction() as conn:
            found = _flow_rows(conn.execute(_RECORD_FLOWS, {"record_id": record_id}), states)
        self._remember(states)
        return found

    @_retry_dropped
    def get_flow(self, flow_id: str) -> FlowRow | None:
        states: dict[str, _State] = {}
        with self._errors("cannot read a flow"), self._transaction() as conn:
            found = _flow_rows(conn.execute(_GET_FLOW, {"flow_id": flow_id}), states)
        self._remember(states)
        return found[0] if found else None

    @_retry_dropped
    def history(self, flow_id: str) -> list[StageChange]:
        with self._errors("cannot read history"), self._transaction() as conn:
            return [StageChange(*r) for r in conn.execute(_HISTORY, {"flow_id": flow_id})]

    @_retry_dropped
    def active_flow_id(self, record_id: str) -> str | None:
        with self._errors("cannot read a record"), self._transaction() as conn:
            return conn.scalar(_ACTIVE_FLOW, {"record_id": record_id})

    @_retry_dropped
    def last_change(self, record_id: str) -> StageChange | None:
        with self._errors("cannot read a record"), self._transaction() as conn:
            r = conn.execute(_LAST_CHANGE, {"record_id": record_id}).first()
        if r is None:
            return None
        return StageChange(
            r.last_flow_id, r.last_process, r.last_version, record_id, r.last_kind,
            r.last_from_stage, r.last_to_stage, r.last_phase, r.last_at, r.last_actor,
        )

    def iter_flows(
        self, process: str | None = None, *, version: int | None = None,
        status: str | None = None,
    ) -> Iterator[FlowRow]:
        conditions = []
        if process is not None:
            conditions.append(flows.c.process == process)
        if version is not None:
            conditions.append(flows.c.version == version)
        if status is not None:
            conditions.append(flows.c.status == status)
        return self._pages(conditions)

    def _pages(self, conditions: list[Any]) -> Iterator[FlowRow]:
        """Flows matching ``conditions``, a page per short transaction (keyset on the id), so a
        slow consumer holds no connection and never has every flow in memory."""
        after = ""
        while True:
            page = (
                sa.select(flows.c.id).where(*conditions, flows.c.id > after)
                .order_by(flows.c.id).limit(_PAGE).subquery()
            )
            statement = (
                sa.select(*_FLOW_ROW_COLUMNS, flow_records.c.entity, flow_records.c.record_id)
                .join_from(flows, page, page.c.id == flows.c.id)
                .join(flow_records, flow_records.c.flow_id == flows.c.id)
                .order_by(flows.c.id, flow_records.c.position)
            )
            states: dict[str, _State] = {}
            with self._errors("cannot read flows"), self._transaction() as conn:
                rows = _flow_rows(conn.execute(statement), states)
            self._remember(states)
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1].id

    # -- reports ---------------------------------------------------------------------------------

    @_retry_dropped
    def stage_counts(
        self, process: str, *, status: str | None = "active"
    ) -> dict[tuple[int, str], int]:
        f = flows.c
        conditions = [f.process == process]
        if status is not None:
            conditions.append(f.status == status)
        statement = (
            sa.select(f.stage, f.version, sa.func.count())
            .where(*conditions).group_by(f.stage, f.version)
        )
        with self._errors("cannot count flows"), self._transaction() as conn:
            return {(v, s): n for s, v, n in conn.execute(statement)}

    def _count_by(self, statement: Any) -> dict[str, int]:
        """``{key: count}`` from a two-column GROUP BY."""
        with self._errors("cannot count flows"), self._transaction() as conn:
            return {k: n for k, n in conn.execute(statement)}

    @_retry_dropped
    def status_counts(self, process: str) -> dict[str, int]:
        f = flows.c
        statement = (
            sa.select(f.status, sa.func.count()).where(f.process == process).group_by(f.status)
        )
        return self._count_by(statement)

    @_retry_dropped
    def reached_counts(self, process: str) -> dict[str, int]:
        h = history.c
        statement = (
            sa.select(h.to_stage, sa.func.count())
            .where(h.process == process, h.entered_first == 1).group_by(h.to_stage)
        )
        return self._count_by(statement)

    @_retry_dropped
    def advanced_counts(self, process: str) -> dict[str, int]:
        h = history.c
        statement = (
            sa.select(h.from_stage, sa.func.count())
            .where(h.process == process, h.advanced_first == 1).group_by(h.from_stage)
        )
        return self._count_by(statement)

    def _stale_condition(self, key: tuple[int, str], cutoff: datetime) -> list[Any]:
        f = flows.c
        version, stage = key
        return [f.stage == stage, f.version == version, f.stage_started_at < cutoff]

    @_retry_dropped
    def stale_counts(
        self, process: str, cutoffs: Mapping[tuple[int, str], datetime]
    ) -> dict[tuple[int, str], int]:
        f = flows.c
        out: dict[tuple[int, str], int] = {}
        with self._errors("cannot count flows"), self._transaction() as conn:
            for key, cutoff in cutoffs.items():
                n = conn.scalar(
                    sa.select(sa.func.count()).select_from(flows).where(
                        f.process == process, f.status == "active",
                        *self._stale_condition(key, cutoff),
                    )
                )
                if n:
                    out[key] = n
        return out

    def stale(
        self, process: str, cutoffs: Mapping[tuple[int, str], datetime]
    ) -> Iterator[FlowRow]:
        f = flows.c
        for key, cutoff in cutoffs.items():
            yield from self._pages(
                [f.process == process, f.status == "active", *self._stale_condition(key, cutoff)]
            )

    @_retry_dropped
    def time_in_stage(self, process: str) -> dict[str, StageTime]:
        h = history.c
        # from_stage IS NOT NULL skips the start entries in the index range.
        conditions = [h.process == process, h.from_stage.is_not(None), h.seconds.is_not(None)]
        totals = (
            sa.select(h.from_stage, sa.func.count(), sa.func.sum(h.seconds))
            .where(*conditions).group_by(h.from_stage)
        )
        middle = (
            sa.select(h.seconds)
            .where(*conditions, h.from_stage == sa.bindparam("stage"))
            .order_by(h.seconds)
            .limit(sa.bindparam("n")).offset(sa.bindparam("skip"))
        )
        out: dict[str, StageTime] = {}
        with self._errors("cannot measure time in stage"), self._transaction() as conn:
            for stage, count, total in conn.execute(totals).all():
                # The median from the (process, from_stage, seconds) index: skip to the middle.
                values = conn.scalars(
                    middle, {"stage": stage, "n": 2 - count % 2, "skip": (count - 1) // 2}
                ).all()
                out[stage] = StageTime(count, float(total), sum(values) / len(values))
        return out


def _chunks(items: Sequence[Any], size: int = _PAGE) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SQLStore"]
