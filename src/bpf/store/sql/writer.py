"""Writing: a list of ops applied in one transaction, with the checks that make a stale or
duplicate write fail and change nothing.

Optimistic concurrency on each flow's ``revision`` (``UPDATE ... WHERE id = :id AND revision
= :expected``) makes a stale writer fail with `bpf.ConcurrencyError`; the unique (process,
primary record) makes a duplicate start fail with `bpf.FlowExistsError`. A history row is
written in the same transaction as the flow change it describes, so a crash leaves both or
neither.

The report columns of a history row need the flow's `FlowState`. The writer keeps the state of
the flows it wrote or the store read, by id: a write of a flow at the revision it knows needs no
read first; any other reads the state in its transaction, under the lock of the update.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bpf._errors import BpfError, ConcurrencyError, FlowExistsError, FlowNotFoundError, StoreError
from bpf.store.base import (
    AppendEvent,
    Event,
    InsertFlow,
    Op,
    SetActiveFlow,
    SetLastChange,
    UpdateFlow,
)
from bpf.store.sql.connection import Database, WriteConnection, cause
from bpf.store.sql.events import event_params, single_move_params
from bpf.store.sql.rows import (
    FlowState,
    aware,
    driver_datetime,
    history_params,
    insert_params,
    last_params,
    sqlite_datetime,
    update_params,
)
from bpf.store.sql.statements import Statements
from bpf.store.sql.tables import flows

_KNOWN = 100_000  # flow states kept to spare a read before an update
_CHUNK = 500  # keys per IN list


class Writer:
    """The write side of one `SQLStore`: its write connection, its compiled statements and
    the flow states it knows."""

    def __init__(self, db: Database, committed: Callable[[], None] | None = None) -> None:
        self._db = db
        #: called after a commit of the store's own that wrote outbox events (PostgreSQL's
        #: `bpf.store.sql.notifier.Notifier`)
        self._committed = committed
        self._connection = WriteConnection(db)
        self._statements: Statements | None = None  # compiled on the first write
        self._datetime = sqlite_datetime if db.sqlite else aware
        self._known: dict[str, FlowState] = {}
        #: states written through an application's connection, kept when it commits
        self._pending: weakref.WeakKeyDictionary[Connection, dict[str, FlowState]] = (
            weakref.WeakKeyDictionary()
        )
        self._listening: weakref.WeakSet[Connection] = weakref.WeakSet()

    def write(self, ops: Sequence[Op], via: WriteConnection | None = None) -> None:
        """See `bpf.store.Store.write`: in a transaction of the store's own, on its write
        connection or on ``via`` (the asyncio store writes on several)."""
        if not ops:
            return
        inserted = [op for op in ops if type(op) is InsertFlow]
        if inserted:
            _check_duplicate_inserts(inserted)
        if self._statements is None:
            self._statements = Statements(self._db.engine.dialect, self._db.schema)
        single = self._single_move(ops, self._known)
        run = (via or self._connection).run
        try:
            if single is None:
                states = run(lambda cursor: self._apply(cursor, ops))
            elif self._db.sqlite:
                states = run(lambda cursor: self._apply_move(cursor, *single))
            else:
                states = run(lambda cursor: self._postgres_move(cursor, *single),
                             one_statement=True)
        except BpfError:
            raise
        except self._db.db_errors as exc:
            if inserted and isinstance(exc, self._db.integrity_errors):
                self._raise_if_exists(inserted)
            raise StoreError(f"{self._db.url}: cannot write: {cause(exc)}") from exc
        self.remember(states)
        if self._committed is not None and (
                single[3] is not None if single is not None
                else any(type(op) is AppendEvent for op in ops)):
            self._committed()

    def remember(self, states: Mapping[str, FlowState]) -> None:
        """Keep the state of flows as written or read: the next write of a flow at that
        revision needs no read. A revision names one committed state, so an entry is right for
        as long as the flow stays at its revision; the UPDATE's revision check catches the rest."""
        known = self._known
        if len(known) + len(states) > _KNOWN:
            known.clear()
        known.update(states)

    def close(self) -> None:
        self._connection.close()

    # -- inside the application's transaction ------------------------------------------------------

    def write_through(self, ops: Sequence[Op], connection: Connection) -> None:
        """See `bpf.store.Store.write`: through the application's ``connection``, inside its
        transaction, which bpf neither begins, commits nor retries.

        The ops run inside a SAVEPOINT: a refused or failed write leaves nothing of itself
        in the application's transaction, and a duplicate start (an integrity error) does not
        leave a PostgreSQL transaction aborted: bpf rolls back to the savepoint and raises
        `bpf.FlowExistsError`. A single stage change on PostgreSQL is one statement, all or
        nothing by itself, and a stale revision matches no row without an error: it runs
        without the savepoint, so it costs what a move of the store's own costs. A database
        error of that statement (a dropped connection...) leaves the transaction aborted,
        for the application to roll back.

        The flow states written here are kept (see `remember`) only once the application
        commits: until then they describe revisions that may yet be rolled back.
        """
        if not ops:
            return
        if not isinstance(connection, Connection):
            raise StoreError(
                f"{self._db.url}: cannot write: the connection must be a SQLAlchemy Connection "
                f"on the store's database, not {type(connection).__name__}"
            )
        if connection.dialect.name != self._db.dialect:
            raise StoreError(
                f"{self._db.url}: cannot write through a {connection.dialect.name} connection: "
                f"the store is on {self._db.dialect}"
            )
        inserted = [op for op in ops if type(op) is InsertFlow]
        if inserted:
            _check_duplicate_inserts(inserted)
        if self._statements is None:
            self._statements = Statements(self._db.engine.dialect, self._db.schema)
        pending = self._pending.get(connection)
        known = self._known if pending is None else collections.ChainMap(pending, self._known)
        single = self._single_move(ops, known)
        sqlite = self._db.sqlite
        with self._db.errors("cannot write"):
            dbapi = connection.connection
            cursor = dbapi.cursor()
            try:
                if sqlite and not dbapi.driver_connection.in_transaction:
                    # The application's transaction, not begun yet by pysqlite (which begins
                    # before its first change): begin it, so that the savepoint is inside it
                    # and its release commits nothing.
                    cursor.execute("BEGIN")
                if single is not None and not sqlite:
                    states = self._postgres_move(cursor, *single, notify=True)
                else:
                    states = self._in_savepoint(cursor, ops, single, known, inserted)
            finally:
                cursor.close()
        self._remember_on_commit(connection, states)

    def _ended(self, connection: Connection, committed: bool, *_args: Any) -> None:
        pending = self._pending.pop(connection, None)
        if committed and pending:
            self.remember(pending)

    def _in_savepoint(
        self, cursor: Any, ops: Sequence[Op], single: Any, known: Mapping[str, FlowState],
        inserted: list[InsertFlow],
    ) -> dict[str, FlowState]:
        cursor.execute("SAVEPOINT bpf_write")
        try:
            if single is not None:
                states = self._apply_move(cursor, *single)
            else:
                states = self._apply(cursor, ops, known, notify=True)
        except BaseException as exc:
            cursor.execute("ROLLBACK TO SAVEPOINT bpf_write")
            cursor.execute("RELEASE SAVEPOINT bpf_write")
            if inserted and isinstance(exc, self._db.integrity_errors):
                self._raise_if_taken(cursor, inserted)
            raise
        cursor.execute("RELEASE SAVEPOINT bpf_write")
        return states

    def remember_through(self, connection: Connection, states: dict[str, FlowState]) -> None:
        """Keep the states of flows read through the application's ``connection``: its next
        write of a flow at that revision needs no read first (a read then a write in one
        SQLite transaction can fail where a write alone waits its turn)."""
        if states:
            self._remember_on_commit(connection, states)

    def _remember_on_commit(self, connection: Connection, states: dict[str, FlowState]) -> None:
        """Keep ``states`` when the application's transaction on ``connection`` commits; drop
        them on its rollback, or on the rollback of any savepoint of it (bpf's writes may have
        been inside)."""
        pending = self._pending.get(connection)
        if pending is None:
            pending = self._pending[connection] = {}
            if connection not in self._listening:
                # Listening for good: a listener may not be removed while its event runs.
                self._listening.add(connection)
                for name in ("commit", "rollback", "rollback_savepoint"):
                    sa.event.listen(connection, name, functools.partial(
                        self._ended, connection, name == "commit"))
        pending.update(states)

    # -- one stage change: the common case, with a path of its own --------------------------------

    def _single_move(
        self, ops: Sequence[Op], known_states: Mapping[str, FlowState]
    ) -> tuple[UpdateFlow, tuple[str, str], FlowState, Event | None] | None:
        """(the update, the (entity, record id) of its last change, the flow's known state, its
        outbox event) when ``ops`` are one stage change of a flow this store knows at its
        revision; else None."""
        event = None
        if len(ops) == 3 and type(ops[2]) is AppendEvent:
            event = ops[2].event
            ops = ops[:2]
        if len(ops) != 2:
            return None
        update, last = ops
        if (type(update) is not UpdateFlow or type(last) is not SetLastChange
                or update.new_records or len(update.entries) != 1):
            return None
        entry = update.entries[0]
        if last.change is not entry and last.change != entry:
            return None
        known = known_states.get(update.row.id)
        if known is None or known.revision != update.expected_revision:
            return None
        return update, (last.entity, last.record_id), known, event  # type: ignore[return-value]

    def _plan_move(
        self, update: UpdateFlow, known: FlowState
    ) -> tuple[FlowState, tuple[Any, ...], tuple[Any, ...]]:
        """The flow's state after a single stage change, its UPDATE and its history row."""
        state = known.copy()
        entry = history_params(update.entries[0], state, self._datetime)
        state.revision = update.row.revision
        return state, update_params(update.row, state, update.expected_revision,
                                    self._datetime), entry

    def _apply_move(
        self, cursor: Any, update: UpdateFlow, record: tuple[str, str], known: FlowState,
        event: Event | None,
    ) -> dict[str, FlowState]:
        """SQLite: one stage change in three statements, four with its event."""
        statements = self._statements
        assert statements is not None
        state, flow, entry = self._plan_move(update, known)
        if statements.execute(cursor, "update_flow", flow).rowcount != 1:
            self._raise_conflict(cursor, [flow])
        statements.execute(cursor, "insert_history", entry)
        statements.execute(
            cursor, "upsert_last", last_params(*record, update.entries[0], self._datetime)
        )
        if event is not None:
            self._append_events(cursor, [event_params(event, self._datetime)], notify=False)
        return {update.row.id: state}

    def _postgres_move(
        self, cursor: Any, update: UpdateFlow, record: tuple[str, str], known: FlowState,
        event: Event | None, *, notify: bool = False,
    ) -> dict[str, FlowState]:
        """PostgreSQL: one stage change as ONE autocommitted statement (data-modifying CTEs:
        the flow's UPDATE, and the history row, the record's last change and the pending
        outbox event inserted only if the UPDATE found the expected revision): one round trip
        instead of five (BEGIN, three statements, COMMIT), with the same all-or-nothing
        outcome. ``notify``: NOTIFY in the statement (a write through the application's
        transaction; the store's own are notified after their commit)."""
        statements = self._statements
        assert statements is not None
        state, flow, entry = self._plan_move(update, known)
        params = (*flow, *entry, *last_params(*record, update.entries[0], aware))
        if event is None:
            (updated,) = statements.execute(cursor, "single_move", params).fetchone()
        else:
            params = (*params, *single_move_params(event))
            name = "single_move_event_notify" if notify else "single_move_event"
            (updated,) = statements.execute(cursor, name, params).fetchone()
        if updated != 1:
            self._raise_conflict(cursor, [flow])
        return {update.row.id: state}

    # -- any write ---------------------------------------------------------------------------------

    def _apply(
        self, cursor: Any, ops: Sequence[Op], known: Mapping[str, FlowState] | None = None,
        *, notify: bool = False,
    ) -> dict[str, FlowState]:
        """Write ``ops`` with ``cursor``; returns the state each written flow is left in.
        ``notify``: NOTIFY waiting consumers in the transaction (PostgreSQL)."""
        states = self._states(cursor, ops, self._known if known is None else known)
        dt = _memo(self._datetime) if len(ops) > 3 else self._datetime
        inserts: list[tuple[Any, ...]] = []
        updates: list[tuple[Any, ...]] = []
        spans: list[tuple[Any, ...]] = []
        entries: list[tuple[Any, ...]] = []
        active: dict[tuple[str, str], tuple[str, str, str]] = {}
        last: dict[tuple[str, str], tuple[Any, ...]] = {}
        appended: list[tuple[Any, ...]] = []
        for op in ops:
            if type(op) is UpdateFlow:
                row = op.row
                state = states[row.id]
                if state.revision != op.expected_revision:
                    raise self._conflict(row.id, state.revision, op.expected_revision)
                entries.extend([history_params(e, state, dt) for e in op.entries])
                state.revision = row.revision
                updates.append(update_params(row, state, op.expected_revision, dt))
                if op.new_records:
                    positions = {record: i for i, record in enumerate(row.records)}
                    spans.extend((row.id, e, rid, positions[e, rid]) for e, rid in op.new_records)
            elif type(op) is SetLastChange:
                key = (op.entity, op.record_id)
                last[key] = last_params(op.entity, op.record_id, op.change, dt)
            elif type(op) is InsertFlow:
                row = op.row
                state = states[row.id]
                entries.extend([history_params(e, state, dt) for e in op.entries])
                state.revision = row.revision
                inserts.append(insert_params(row, state, dt))
                spans.extend((row.id, e, rid, i) for i, (e, rid) in enumerate(row.records))
            elif type(op) is SetActiveFlow:
                active[op.entity, op.record_id] = (op.entity, op.record_id, op.flow_id)
            elif type(op) is AppendEvent:
                appended.append(event_params(op.event, dt))
        statements = self._statements
        assert statements is not None
        run = statements.execute
        if inserts:
            run(cursor, "insert_flow", inserts)
        if updates:
            # In id order, so concurrent writers lock rows in one order (no deadlock).
            updates.sort(key=lambda p: p[-2])
            if run(cursor, "update_flow", updates).rowcount != len(updates):
                self._raise_conflict(cursor, updates)
        if spans:
            run(cursor, "insert_flow_record", spans)
        if entries:
            run(cursor, "insert_history", entries)
        if active:
            run(cursor, "upsert_active", [active[k] for k in sorted(active)])
        if last:
            run(cursor, "upsert_last", [last[k] for k in sorted(last)])
        if appended:
            self._append_events(cursor, appended, notify)
        return states

    def _append_events(self, cursor: Any, appended: list[tuple[Any, ...]], notify: bool) -> None:
        """Insert outbox events: numbered by SQLite itself; pending on PostgreSQL, with a
        NOTIFY if ``notify`` (`bpf.store.sql.events`)."""
        statements = self._statements
        assert statements is not None
        statements.execute(cursor, "insert_event", appended)
        if notify and not self._db.sqlite:
            statements.execute(cursor, "notify", ())

    def _states(
        self, cursor: Any, ops: Sequence[Op], known_states: Mapping[str, FlowState]
    ) -> dict[str, FlowState]:
        """The state of each flow ``ops`` write, before the write: new, known at its expected
        revision, or read from the store."""
        states: dict[str, FlowState] = {}
        unknown: dict[str, None] = {}  # a dict: ordered, and a quick `in`
        for op in ops:
            if type(op) is InsertFlow or type(op) is UpdateFlow:
                flow_id = op.row.id
                if flow_id in states or flow_id in unknown:
                    raise StoreError(
                        f"{self._db.url}: cannot write: flow {flow_id!r} is in two ops of one "
                        "write (the engine folds the changes of a flow into one op)"
                    )
                if type(op) is InsertFlow:
                    states[flow_id] = FlowState.new()
                    continue
                known = known_states.get(flow_id)
                if known is not None and known.revision == op.expected_revision:
                    states[flow_id] = known.copy()
                else:
                    unknown[flow_id] = None
        for flow_id in unknown:
            found = self._state_in_store(cursor, flow_id)
            if found is None:
                raise FlowNotFoundError(
                    f"flow {flow_id!r} is not in the store {self._db.url} (was it started on "
                    "another database?)"
                )
            states[flow_id] = found
        return states

    # -- checks ----------------------------------------------------------------------------------

    def _state_in_store(self, cursor: Any, flow_id: str) -> FlowState | None:
        assert self._statements is not None
        row = self._statements.execute(cursor, "flow_state", (flow_id,)).fetchone()
        if row is None:
            return None
        revision, status, changed_at, entered, advanced = row
        return FlowState.stored(revision, status, driver_datetime(changed_at), entered, advanced)

    def _raise_conflict(self, cursor: Any, updates: list[tuple[Any, ...]]) -> None:
        """An UPDATE found another revision: raise `ConcurrencyError` naming the flow."""
        for p in updates:
            flow_id, expected = p[-2:]  # b_id, b_expected
            found = self._state_in_store(cursor, flow_id)
            if found is None:
                raise FlowNotFoundError(
                    f"flow {flow_id!r} is no longer in the store {self._db.url}"
                )
            if found.revision != expected:
                raise self._conflict(flow_id, found.revision, expected)
        raise ConcurrencyError("a flow was changed by someone else; refresh it and try again")

    def _conflict(self, flow_id: str, stored: int, expected: int) -> ConcurrencyError:
        self._known.pop(flow_id, None)
        return ConcurrencyError(
            f"flow {flow_id!r} was changed by someone else: it is at revision {stored}, this "
            f"change was made on revision {expected}; call flow.refresh() and try again"
        )

    def _raise_if_exists(self, inserted: list[InsertFlow], conn: Any = None) -> None:
        """After a failed insert: `FlowExistsError` when a (process, primary record) is already
        taken. Read on ``conn`` (a SQLAlchemy Connection) if given, else in a read of its own."""
        keys = [(op.row.process, *op.row.records[0]) for op in inserted]
        c = flows.c
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(self._db.reading("cannot write"))
            for chunk in _chunks(keys):
                found = conn.execute(
                    sa.select(c.process, c.entity, c.record_id).where(
                        sa.tuple_(c.process, c.entity, c.record_id).in_(chunk)
                    ).limit(1)
                ).first()
                if found is not None:
                    raise _exists(found.process, found.entity, found.record_id)


    def _raise_if_taken(self, cursor: Any, inserted: list[InsertFlow]) -> None:
        """After a failed insert inside the application's transaction: `FlowExistsError` when a
        (process, primary record) is taken, read on its ``cursor`` (it sees its own flows)."""
        assert self._statements is not None
        for op in inserted:
            key = (op.row.process, *op.row.records[0])
            if self._statements.execute(cursor, "find_flow", key).fetchone() is not None:
                raise _exists(*key)


def _exists(process: str, entity: str, record_id: str) -> FlowExistsError:
    return FlowExistsError(f"{entity} {record_id!r} already has a {process!r} flow")


def _check_duplicate_inserts(inserted: list[InsertFlow]) -> None:
    """Two starts on one (process, primary record) in one write: `FlowExistsError`."""
    seen: set[tuple[str, str, str]] = set()
    for op in inserted:
        key = (op.row.process, *op.row.records[0])
        if key in seen:
            raise _exists(*key)
        seen.add(key)


def _memo(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` remembering its results: a batch writes each instant in its history row,
    its event and maybe the flow and the record's last change, not in one run."""
    done: dict[Any, Any] = {}
    get = done.get

    def converted(value: Any) -> Any:
        out = get(value)
        if out is None:
            out = done[value] = convert(value)
        return out

    return converted


def _chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[Sequence[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
