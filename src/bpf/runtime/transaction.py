"""Applying decided changes: in memory, written alone, added to the open batch, or written
through the application's transaction; undone exactly on failure (`bpf.runtime.unit`)."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from bpf._errors import RecordError, StoreError
from bpf.runtime.changes import Change
from bpf.runtime.flow import Flow, FlowEvent
from bpf.runtime.hooks import Hooks, run_actions
from bpf.runtime.identity import IdentityMap, new_event_id
from bpf.runtime.joined import listen_for_end
from bpf.runtime.outbox import ACTION_KINDS
from bpf.runtime.records import set_field
from bpf.runtime.unit import Snapshot, Unit
from bpf.store.base import (
    AppendEvent,
    Event,
    InsertFlow,
    Op,
    SetActiveFlow,
    SetLastChange,
    Store,
    UpdateFlow,
)

if TYPE_CHECKING:
    from bpf.runtime.compiled import CompiledProcess

_new = tuple.__new__  # see bpf.runtime.changes
_STATUS_KINDS = frozenset({"finish", "abandon", "reactivate"})


class Transactions:
    """How an engine applies changes: one by one (each its own store transaction), in a batch
    (one store transaction bpf commits), or inside the application's own transaction."""

    def __init__(self, store: Store, hooks: Hooks, flows: IdentityMap,
                 lock: threading.RLock) -> None:
        self._store = store
        self._hooks = hooks
        self._flows = flows
        self._lock = lock
        #: the open batch or joined transaction, if any
        self.unit: Unit | None = None
        #: delivers after_enter/after_exit actions once a change committed (`bpf.runtime.outbox`):
        #: called with the flow id, or None for every partition after a unit
        self.after_commit: Callable[[str | None], None] | None = None

    def apply(
        self, flow: Flow, change: Change, record: Any, bound: tuple[Any, ...],
        actor: Any, *, active: tuple[str, str] | None = None,
        compiled: CompiledProcess | None = None, quiet: bool = False,
        save: Callable[[Any], Any] | None = None,
    ) -> None:
        """Apply ``change`` to ``flow`` and ``record`` in memory, run its stage actions and
        write it (or add it to the open batch); on any failure restore the snapshot and
        re-raise. Then run the ``*_changed`` hooks (after the batch, inside one)."""
        entry = change.entry
        unit = self.unit
        h = flow._history
        # The flow as it was, to restore on failure: kept in locals, a Snapshot is made only
        # for a unit (which may roll back after this call) or on failure.
        state, stage, old_bound, old_compiled = flow._state, flow._stage, flow._bound, \
            flow._compiled
        length = None if h is None else len(h)
        undos: list[Callable[[], None]] = []
        try:
            flow._state = change.after
            flow._stage = change.target
            flow._bound = bound
            if compiled is not None:
                flow._compiled = compiled
            if h is not None:
                h.append(entry)
            for field, value in change.writes:
                undos.append(set_field(record, field, value))
            if change.on_exit or change.on_enter:  # most stages have no actions: skip the calls
                _run_stage_actions(flow, change, record, actor)
            before = change.before
            event = _new(AppendEvent, (_event(change),))
            if unit is None:
                # One change alone, the common case: its ops built here, without the unit.
                if before is None:
                    entity, rid = active  # type: ignore[misc]
                    ops: list[Op] = [InsertFlow(change.after, (entry,)),
                                     SetActiveFlow(rid, change.after.id, entity),
                                     SetLastChange(rid, entry, entity)]
                else:
                    ops = [_new(UpdateFlow, (change.after, before.revision, (entry,),
                                             change.new_records))]
                    if change.sets_last_change:
                        ops.append(_new(SetLastChange, (entry.record_id, entry,
                                                        change.target.stage.entity)))
                ops.append(event)
                self._store.write(ops)
                if before is None:
                    self._flows.add(flow)
                if save is not None and change.writes:
                    save(record)  # after the commit
            else:
                last = ((change.target.stage.entity, entry.record_id)
                        if change.sets_last_change else None)
                if unit.connection is not None:
                    self._store.write([*_ops(change, last, active), event],
                                      connection=unit.connection)
                    if save is not None and change.writes:
                        save(record)  # inside the application's transaction
                else:
                    unit.add(flow, before, entry, change.new_records, last, active)
                    unit.events.append(event)
                    if save is not None and change.writes:
                        unit.saves[id(record)] = (save, record)
                unit.snapshots.append(_new(Snapshot, (flow, state, old_compiled, stage, old_bound,
                                                      length, undos)))
                if before is None:
                    self._flows.add(flow)
                    unit.started.append(flow)
        except BaseException:
            _new(Snapshot, (flow, state, old_compiled, stage, old_bound, length, undos)).restore()
            raise
        target = change.target
        if (target.after_enter or (change.source is not None and change.source.after_exit)) \
                and self.after_commit is not None and change.kind in ACTION_KINDS:
            if unit is None:
                self.after_commit(change.after.id)
            elif not unit.deliver and (unit.connection is None or unit.session is not None):
                # Not for an application's Connection: SQLAlchemy tells of its commit before
                # the commit is done; engine.deliver() (or the partition's next delivery)
                # runs those after-actions.
                unit.deliver = True
                unit.after.append(functools.partial(self.after_commit, None))
        if quiet:
            return
        after = change.after
        if change.kind in _STATUS_KINDS:
            event, from_status = "status_changed", change.before.status  # type: ignore[union-attr]
        else:
            event, from_status = "stage_changed", after.status
        if self._hooks[event]:
            info = _new(FlowEvent, (event, flow, change.kind, entry.from_stage, entry.to_stage,
                                    from_status, after.status, actor,
                                    after.outcome if event == "status_changed" else None,
                                    record))
            if unit is None:
                self._hooks.after(info)
            else:
                unit.after.append(functools.partial(self._hooks.after, info))

    def set_active(self, entity: str, record_id: str, flow_id: str) -> None:
        op = SetActiveFlow(record_id, flow_id, entity)
        unit = self.unit
        if unit is None:
            self._store.write([op])
        elif unit.connection is not None:
            self._store.write([op], connection=unit.connection)
        else:
            unit.records[(SetActiveFlow, entity, record_id)] = op

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        with self._lock:
            if self.unit is not None:
                yield  # nested: part of the outer batch or transaction
                return
            unit = self.unit = Unit()
            try:
                yield
                if unit.flows or unit.records:
                    self._store.write(unit.ops())
            except BaseException:
                self._undo(unit)
                raise
            finally:
                self.unit = None
            self._committed(unit)

    @contextlib.contextmanager
    def join(self, conn: Any) -> Iterator[None]:
        """bpf's writes go through the application's ``conn`` until its transaction ends."""
        with self._lock:
            if self.unit is not None:
                raise StoreError(
                    "engine.transaction() inside a batch or another transaction: bpf can join "
                    "one transaction at a time"
                )
            if not self._store.durable:
                raise StoreError(
                    "engine.transaction() needs a database store (SQLite or PostgreSQL); the "
                    "memory store has no transaction to share"
                )
            unit = Unit(connection=None)
            unit.connection = listen_for_end(
                conn, lambda: self._ended(unit, True), lambda: self._ended(unit, False))
            unit.session = conn if unit.connection is not conn else None
            self.unit = unit
            try:
                yield
            finally:
                self.unit = None

    def _session(self, what: str) -> Any:
        unit = self.unit
        if unit is None or unit.session is None:
            raise RecordError(
                f"{what} through a SQLAlchemy model needs the application's session: run it "
                "inside `with engine.transaction(session):`"
            )
        return unit.session

    def orm_get(self, binding: Any, rid: str) -> Any:
        """Load a mapped row by its id with the joined session."""
        session = self._session(f"loading the {binding.name} record {rid!r}")
        from sqlalchemy import inspect

        column = inspect(binding.model).primary_key[0]
        try:
            key = column.type.python_type(rid)
        except (NotImplementedError, ValueError, TypeError):
            key = rid
        return session.get(binding.model, key)

    def orm_add(self, record: Any) -> None:
        """Save a mapped row bpf changed: the joined session flushes it with the commit.
        Outside `Engine.transaction`, the row's own session (if any) saves it when the
        application commits it."""
        unit = self.unit
        if unit is not None and unit.session is not None and record not in unit.session:
            unit.session.add(record)

    def _ended(self, unit: Unit, committed: bool) -> None:
        with self._lock:
            if committed:
                self._committed(unit)
            else:
                self._undo(unit)

    def _undo(self, unit: Unit) -> None:
        unit.rollback(rolled_back=unit.connection is not None)
        for flow in unit.started:
            self._flows.discard(flow._state.id)

    @staticmethod
    def _committed(unit: Unit) -> None:
        for save, record in unit.saves.values():
            save(record)
        for fn in unit.after:
            fn()


def _event(change: Change) -> Event:
    """The outbox event of a change: what other systems learn of it."""
    entry = change.entry
    before = change.before
    after = change.after
    return _new(Event, (
        new_event_id(), 0, entry.flow_id, entry.process, entry.version,
        change.target.stage.entity, entry.record_id, entry.kind, entry.from_stage,
        entry.to_stage, None if before is None else before.status, after.status,
        after.outcome, entry.actor, entry.at,
    ))


def _run_stage_actions(flow: Flow, change: Change, record: Any, actor: Any) -> None:
    entry = change.entry
    status = change.after.status
    for event, actions, stage in (("on_exit", change.on_exit, entry.from_stage),
                                  ("on_enter", change.on_enter, entry.to_stage)):
        if actions:
            run_actions(event, actions, FlowEvent(
                event, flow, change.kind, entry.from_stage, entry.to_stage, status, status,
                actor, change.after.outcome, record,
            ), stage)


def _ops(change: Change, last: tuple[str, str] | None, active: tuple[str, str] | None
         ) -> list[Op]:
    """The ops of one change written on its own."""
    entry = change.entry
    if change.before is None:
        entity, rid = active  # type: ignore[misc]
        return [InsertFlow(change.after, (entry,)), SetActiveFlow(rid, change.after.id, entity),
                SetLastChange(rid, entry, entity)]
    update = UpdateFlow(change.after, change.before.revision, (entry,), change.new_records)
    if last is None:
        return [update]
    return [update, SetLastChange(last[1], entry, last[0])]
