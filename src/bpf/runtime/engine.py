"""The engine: registers processes, starts and moves flows on records, keeps their history.

Every operation follows one pattern, so a refused or failed one changes nothing:

1. the move core (`bpf.runtime.core`) decides: a refusal, or a change (new state, history
   entry, fields to write); the cancelable ``*_changing`` hooks run;
2. the change is applied to the flow and the record in memory, under a named `Snapshot`;
3. the stage actions (on_exit, on_enter) run and the store writes the change in one
   transaction (or the open batch collects it);
4. on any exception in 2–3 the snapshot is restored and the exception re-raised; otherwise
   the ``*_changed`` hooks run.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from bpf._clock import Clock, as_utc, utcnow
from bpf._errors import (
    BpfError,
    FlowExistsError,
    FlowNotFoundError,
    HookError,
    Reason,
    RecordError,
    TransitionError,
)
from bpf._history import StageChange
from bpf.definition.model import ProcessDefinition, Stage, Step
from bpf.runtime import core
from bpf.runtime import migrate as migration
from bpf.runtime.compiled import CompiledProcess
from bpf.runtime.core import Change, Refusal
from bpf.runtime.flow import Actor, Flow, FlowEvent
from bpf.runtime.hooks import EVENTS, Hooks, run_actions
from bpf.runtime.identity import IdentityMap
from bpf.runtime.records import field_getter, record_id, set_field
from bpf.runtime.registry import Registry
from bpf.runtime.transaction import Snapshot, Unit
from bpf.store.base import FlowRow, InsertFlow, SetActiveFlow, SetLastChange, Store, UpdateFlow


class _Ids:
    """Flow ids: a random 64-bit prefix per process and a counter, as 32 hex digits.

    Unique across processes and machines sharing a database (the prefix is drawn again in a
    forked child) at a tenth of the cost of a uuid4 per flow.
    """

    def __init__(self) -> None:
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self) -> None:
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def __call__(self) -> str:
        return f"{self.prefix}{next(self.counter):016x}"


_new_id = _Ids()


_new = tuple.__new__  # see bpf.runtime.core


def _raiser(exc: BpfError) -> Callable[[str], Any]:
    # The record is needed only if the gate reads it, after the status and role checks.
    def get(field: str) -> Any:
        raise exc

    return get


def _no_record(entity: str) -> Callable[[str], Any]:
    # Stages ahead on an entity without a bound record are predicted from empty values.
    return lambda field: None


class Engine:
    """Runs business process flows on records.

    ``store`` is where flows live: None or ``"memory"`` for this process only, a database URL
    (``"sqlite:///bpf.db"``, ``"postgresql+psycopg://user@host/db"``), a SQLAlchemy `Engine`,
    or a `bpf.store.Store`. ``clock`` returns timezone-aware UTC datetimes.
    """

    __module__ = "bpf"  # shown as bpf.Engine, its public name

    def __init__(
        self,
        store: Any = None,
        *,
        clock: Clock | None = None,
        actions: Mapping[str, Callable[..., Any]] | None = None,
    ) -> None:
        from bpf.store import open_store

        self._store: Store = open_store(store)
        self._clock: Clock = clock or utcnow
        #: Stage actions by name, for ``on_enter``/``on_exit``; fill before `register`.
        self.actions: dict[str, Callable[..., Any]] = dict(actions or {})
        self._lock = threading.RLock()
        self._registry = Registry(self.actions, self._lock)
        self._hooks = Hooks()
        self._factories: dict[str, Callable[[Flow, Any], Any]] = {}
        self._unit: Unit | None = None  # the open batch, if any
        # One object per flow in this engine; kept strongly when the store is not durable,
        # since no other copy of the records bound to the flows exists then.
        self._flows = IdentityMap(strong=not self._store.durable)

    # -- configuration ---------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    def now(self) -> datetime:
        """The engine's clock, read once (UTC)."""
        at = self._clock()
        return at if at.tzinfo is UTC else as_utc(at)

    def register(self, definition: ProcessDefinition) -> ProcessDefinition:
        """Make a process (one version of it) available to `start`; returns it.

        Several processes may run on one entity. Registering a newer version makes it the one
        new flows start on; flows already running stay on theirs (see `migrate`).
        """
        return self._registry.register(definition)

    def processes(self) -> tuple[ProcessDefinition, ...]:
        """Every registered definition, every version."""
        return self._registry.definitions()

    def process(self, name: str, version: int | None = None) -> ProcessDefinition:
        """A registered definition: the latest version unless ``version`` is given."""
        return self._registry.get(name, version).definition

    def on(self, event: str, fn: Callable[[FlowEvent], Any]) -> Callable[[FlowEvent], Any]:
        """Call ``fn(FlowEvent)`` on ``event``; a ``*_changing`` handler cancels by raising
        `bpf.Cancel`. Returns ``fn``, so it also works as a decorator factory's target."""
        return self._hooks.on(event, fn)

    def record_factory(self, entity: str, fn: Callable[[Flow, Any], Any]) -> None:
        """Create the ``entity`` record a flow needs when it first enters a stage on it.

        ``fn(flow, record)`` gets the flow and the record being left, and returns the new record.
        """
        self._factories[entity] = fn

    # -- lookups ---------------------------------------------------------------------------------

    def flows(self, record: Any) -> list[Flow]:
        """Every flow on the record (a record object or its id), all processes, in start order."""
        rid = record_id(record)
        with self._lock:
            flows = [self._materialize(row) for row in self._store.record_flows(rid)]
            if not isinstance(record, str):
                for flow in flows:
                    _bind_if_matches(flow, rid, record)
            return flows

    def flow(self, record: Any, process: str) -> Flow:
        """The record's flow of ``process``; `bpf.FlowNotFoundError` when there is none."""
        flow = self._find_flow(record, process)
        if flow is None:
            raise FlowNotFoundError(f"record {record_id(record)!r} has no {process!r} flow")
        return flow

    def _find_flow(self, record: Any, process: str) -> Flow | None:
        for flow in self.flows(record):
            if flow._state.process == process:
                return flow
        return None

    def active_flow(self, record: Any) -> Flow | None:
        """The flow the record shows: the last one started on it or switched to."""
        rid = record_id(record)
        with self._lock:
            flow_id = self._store.active_flow_id(rid)
            if flow_id is None:
                return None
            for flow in self.flows(record):
                if flow.id == flow_id:
                    return flow
            return None

    def last_stage_change(self, record: Any) -> StageChange | None:
        """The latest stage change on the record made by any flow: the unambiguous source of
        the pipeline phase (which flow, which stage, who, when)."""
        with self._lock:
            return self._store.last_change(record_id(record))

    def get_flow(self, flow_id: str) -> Flow:
        """A flow by its id; `bpf.FlowNotFoundError` when there is none."""
        with self._lock:
            found = self._store.get_flow(flow_id)
            if found is None:
                raise FlowNotFoundError(f"no flow with id {flow_id!r}")
            return self._materialize(found)

    def iter_flows(
        self, process: str | None = None, *, version: int | None = None, status: str | None = None
    ) -> Iterator[Flow]:
        """Flows matching the filters, streamed from the store."""
        for row in self._store.iter_flows(process, version=version, status=status):
            with self._lock:
                yield self._materialize(row)

    def flows_of(self, rows: Iterator[FlowRow] | list[FlowRow]) -> Iterator[Flow]:
        """The engine's flow object for each row a store query returned (`bpf.reports` reads
        stale flows this way)."""
        for row in rows:
            with self._lock:
                yield self._materialize(row)

    # -- starting --------------------------------------------------------------------------------

    def start(
        self,
        process: str,
        record: Any,
        *,
        actor: Actor | None = None,
        version: int | None = None,
    ) -> Flow:
        """Start ``process`` on ``record`` at its first stage; returns the new flow.

        A record has at most one flow per process (`bpf.FlowExistsError`).
        """
        compiled = self._registry.get(process, version)
        rid = record_id(record)
        with self._lock:
            refusal = core.role_refusal(compiled.definition, actor, "start")
            if refusal is not None:
                raise refusal.error()
            # Checked before any hook runs; inside a batch on a database the store's unique
            # constraint catches it at commit instead, sparing a query per start of a bulk load.
            if self._unit is None or not self._store.durable:
                for row in self._store.record_flows(rid):
                    if row.process == process and row.records[0][1] == rid:
                        raise FlowExistsError(f"record {rid!r} already has a {process!r} flow")
            change = core.start(compiled, _new_id(), rid, self.now(), actor)
            flow = Flow(self, compiled, change.after, (record,), [])
            if self._hooks["stage_changing"]:
                self._hooks.before(FlowEvent("stage_changing", flow, "start", None,
                                             change.target.stage.id, "active", "active", actor))
            self._apply(flow, change, record, (record,), actor, active=rid)
            return flow

    def switch(self, record: Any, process: str, *, actor: Actor | None = None) -> Flow:
        """Dynamics' "Switch process": make the record show its ``process`` flow, starting it
        when the record has none. Flows keep their own stages."""
        rid = record_id(record)
        with self._lock:
            flow = self._find_flow(record, process)
            if flow is None:
                return self.start(process, record, actor=actor)
            refusal = core.role_refusal(flow._compiled.definition, actor, "switch to")
            if refusal is not None:
                raise refusal.error()
            op = SetActiveFlow(rid, flow.id)
            if self._unit is None:
                self._store.write([op])
            else:
                self._unit.records[(SetActiveFlow, rid)] = op
            return flow

    # -- moving ----------------------------------------------------------------------------------

    def _getter(self, flow: Flow, entity: str) -> Callable[[str], Any]:
        bound = flow._bound
        if len(bound) == 1 and bound[0] is not None and flow._state.records[0][0] == entity:
            return field_getter(bound[0])  # most flows span one record: skip the search
        return field_getter(self._record_obj(flow, entity))

    def _next(self, flow: Flow, actor: Actor | None, record: Any) -> Stage:
        with self._lock:
            try:
                get = self._getter(flow, flow._stage.stage.entity)
            except RecordError as exc:
                get = _raiser(exc)
            target = core.decide_next(flow._compiled, flow._state, get, actor)
            if type(target) is not str:
                raise target.error()  # type: ignore[union-attr]
            return self._move(flow, "next", target, actor, record)

    def _previous(self, flow: Flow, actor: Actor | None) -> Stage:
        with self._lock:
            target = core.decide_previous(flow._compiled, flow._state, actor)
            if type(target) is not str:
                raise target.error()  # type: ignore[union-attr]
            return self._move(flow, "previous", target, actor, None)

    def _set_active(self, flow: Flow, stage_id: str, actor: Actor | None) -> Stage:
        with self._lock:
            target = core.decide_set_active(flow._compiled, flow._state, stage_id, actor)
            if type(target) is not str:
                raise target.error()  # type: ignore[union-attr]
            return self._move(flow, "set_active", target, actor, None)

    def _move(
        self, flow: Flow, kind: str, target_id: str, actor: Actor | None, given: Any
    ) -> Stage:
        compiled = flow._compiled
        state = flow._state
        target = compiled.stages[target_id]
        entity = target.stage.entity
        records = state.records
        bound = flow._bound
        index = -1
        for i, (e, _) in enumerate(records):
            if e == entity:
                index = i
                break
        rid = records[index][1] if index >= 0 else None
        obj = bound[index] if index >= 0 else None
        if given is not None:
            given_id = record_id(given)
            if rid is not None and given_id != rid:
                raise TransitionError(
                    f"the flow's {entity} record is {rid!r}, not {given_id!r}",
                    reason=Reason.ENTITY,
                )
        elif rid is None and entity not in self._factories:
            raise TransitionError(
                f"stage {target_id!r} is on the {entity!r} entity: pass its record with "
                f"next(record=...) or register engine.record_factory({entity!r}, fn)",
                reason=Reason.ENTITY,
            )
        elif obj is None and rid is not None:
            raise TransitionError(
                f"stage {target_id!r} needs the {entity} record {rid!r}, which is not bound in "
                "this engine: pass it with record=... or flow.bind(record)",
                reason=Reason.ENTITY,
            )
        at = self.now()
        if self._hooks["stage_changing"]:
            self._hooks.before(FlowEvent("stage_changing", flow, kind, state.stage, target_id,
                                         state.status, state.status, actor))
        new_records: tuple[tuple[str, str], ...] = ()
        if rid is None:
            if given is None:
                leaving = self._record_obj(flow, flow._stage.stage.entity)
                given = self._call_factory(entity, flow, leaving)
            rid = record_id(given)
            new_records = ((entity, rid),)
            bound = (*bound, given)
        elif given is not None and given is not obj:
            bound = (*bound[:index], given, *bound[index + 1:])
        if given is not None:
            obj = given
        change = core.enter(compiled, state, kind, target_id, rid, new_records, at, actor)
        self._apply(flow, change, obj, bound, actor)
        return target.stage

    # -- status ----------------------------------------------------------------------------------

    def _finish(self, flow: Flow, outcome: str | None, actor: Actor | None) -> None:
        with self._lock:
            setters = core.decide_finish(flow._compiled, flow._state, outcome, actor)
            if type(setters) is Refusal:
                raise setters.error()
            record = self._record_obj(flow, flow._stage.stage.entity) if setters else None
            self._status(flow, "finish", actor, record, outcome, setters)  # type: ignore[arg-type]

    def _abandon(self, flow: Flow, actor: Actor | None) -> None:
        with self._lock:
            refusal = core.decide_abandon(flow._compiled, flow._state, actor)
            if refusal is not None:
                raise refusal.error()
            self._status(flow, "abandon", actor, None, None, None)

    def _reactivate(self, flow: Flow, actor: Actor | None) -> None:
        with self._lock:
            refusal = core.decide_reactivate(flow._compiled, flow._state, actor)
            if refusal is not None:
                raise refusal.error()
            self._status(flow, "reactivate", actor, None, None, None)

    def _status(
        self, flow: Flow, kind: str, actor: Actor | None, record: Any, outcome: str | None,
        setters: Mapping[str, Any] | None,
    ) -> None:
        state = flow._state
        stage = state.stage
        if self._hooks["status_changing"]:
            self._hooks.before(FlowEvent(
                "status_changing", flow, kind, stage, stage, state.status,
                core._STATUS_OF[kind], actor, outcome,
            ))
        rid = core.record_of(state.records, flow._stage.stage.entity) or state.records[0][1]
        change = core.change_status(flow._compiled, state, kind, rid, self.now(), actor,
                                    outcome, setters)
        self._apply(flow, change, record, flow._bound, actor)

    # -- applying a change -------------------------------------------------------------------------

    def _apply(
        self, flow: Flow, change: Change, record: Any, bound: tuple[Any, ...],
        actor: Actor | None, *, active: str | None = None, compiled: CompiledProcess | None = None,
        quiet: bool = False,
    ) -> None:
        """Apply ``change`` to ``flow`` and ``record`` in memory, run its stage actions and
        write it (or add it to the open batch); on any failure restore the snapshot and
        re-raise. Then run the ``*_changed`` hooks (after the batch, inside one)."""
        entry = change.entry
        unit = self._unit
        h = flow._history
        snapshot = _new(Snapshot, (flow, flow._state, flow._compiled, flow._stage, flow._bound,
                                   None if h is None else len(h), []))
        try:
            flow._state = change.after
            flow._stage = change.target
            flow._bound = bound
            if compiled is not None:
                flow._compiled = compiled
            if flow._history is not None:
                flow._history.append(entry)
            for field, value in change.writes:
                snapshot.undos.append(set_field(record, field, value))
            if change.on_exit or change.on_enter:  # most stages have no actions: skip the calls
                for event, actions, stage in (("on_exit", change.on_exit, entry.from_stage),
                                              ("on_enter", change.on_enter, entry.to_stage)):
                    if actions:
                        status = change.after.status
                        run_actions(event, actions, FlowEvent(
                            event, flow, change.kind, entry.from_stage, entry.to_stage, status,
                            status, actor, change.after.outcome, record,
                        ), stage)
            last = entry.record_id if change.sets_last_change else None
            if unit is None:
                if change.before is None:
                    ops: list[Any] = [InsertFlow(change.after, (entry,)),
                                      SetActiveFlow(active, change.after.id),  # type: ignore[arg-type]
                                      SetLastChange(entry.record_id, entry)]
                elif last is not None:
                    ops = [UpdateFlow(change.after, change.before.revision, (entry,),
                                      change.new_records),
                           SetLastChange(last, entry)]
                else:
                    ops = [UpdateFlow(change.after, change.before.revision, (entry,),
                                      change.new_records)]
                self._store.write(ops)
                if change.before is None:
                    self._flows.add(flow)
            else:
                unit.add(flow, change.before, entry, change.new_records, last, active)
                unit.snapshots.append(snapshot)
                if change.before is None:
                    self._flows.add(flow)
                    unit.started.append(flow)
        except BaseException:
            snapshot.restore()
            raise
        if quiet:
            return
        if change.kind in ("finish", "abandon", "reactivate"):
            event, from_status = "status_changed", change.before.status  # type: ignore[union-attr]
        else:
            event, from_status = "stage_changed", change.after.status
        if self._hooks[event]:
            info = FlowEvent(event, flow, change.kind, entry.from_stage, entry.to_stage,
                             from_status, change.after.status, actor, change.after.outcome
                             if event == "status_changed" else None, record)
            if unit is None:
                self._hooks.after(info)
            else:
                unit.after.append(functools.partial(self._hooks.after, info))

    # -- batches ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def batch(self) -> Iterator[Engine]:
        """Group many operations into one store transaction (bulk imports, migrations).

        If anything inside raises, every change of the batch is undone, in memory and in the
        store. ``*_changed`` hooks run once the batch is committed.
        """
        with self._lock:
            if self._unit is not None:
                yield self  # nested: part of the outer batch
                return
            unit = self._unit = Unit()
            try:
                yield self
                if unit.flows or unit.records:
                    self._store.write(unit.ops())
            except BaseException:
                unit.rollback()
                for flow in unit.started:
                    self._flows.discard(flow.id)
                raise
            finally:
                self._unit = None
            for fn in unit.after:
                fn()

    # -- versions ----------------------------------------------------------------------------------

    def migrate(
        self,
        process: str,
        to_version: int,
        stage_map: Mapping[str, str] | None = None,
        *,
        actor: Actor | None = None,
    ) -> int:
        """Move every active flow of older versions of ``process`` onto ``to_version``.

        ``stage_map`` maps old stage ids to new ones; ids present in both versions map to
        themselves. Everything is checked before anything changes: `bpf.UnknownProcessError`
        when ``to_version`` (or an older version that still has active flows) is not
        registered, `bpf.UnknownStageError` when the map names a stage ``to_version`` lacks,
        and `bpf.TransitionError` (reason ``"migrate"``) naming every stage that active flows
        are in and that has no mapping.

        The whole migration is one batch. Each flow keeps its records, status and the time its
        stage started (a migration is not a move in the business: stale flows stay stale) and
        gets a ``migrate`` history entry. The pipeline field is written (and the record's last
        stage change recorded) only when the phase changes; an unbound record's field is left
        for the caller. No hooks or stage actions run. Returns how many flows moved.
        """
        target = self._registry.get(process, to_version)
        mapping = dict(stage_map or {})
        with self._lock:
            active = self._store.stage_counts(process, status="active")
            versions = migration.check(target.definition, mapping, active)
            for version in versions:
                self._registry.get(process, version)  # its flows cannot be loaded otherwise
            at = self.now()
            moved = 0
            with self.batch():
                for version in versions:
                    rows = list(self._store.iter_flows(process, version=version, status="active"))
                    for row in rows:
                        flow = self._materialize(row)
                        change = migration.change(target, flow._compiled, flow._state, mapping,
                                                  at, actor)
                        obj = flow.records.get(change.target.stage.entity)
                        if obj is None:  # an unbound record's field is left for the caller
                            change = change._replace(writes=())
                        self._apply(flow, change, obj, flow._bound, actor, compiled=target,
                                    quiet=True)
                        moved += 1
            return moved

    # -- records and rows --------------------------------------------------------------------------

    def _record_obj(self, flow: Flow, entity: str) -> Any:
        for (e, rid), obj in zip(flow._state.records, flow._bound, strict=True):
            if e == entity:
                if obj is None:
                    raise RecordError(
                        f"the flow needs its {entity} record {rid!r}, which is not bound in this "
                        "engine: look the flow up with that record (engine.flows(record)) or call "
                        "flow.bind(record)"
                    )
                return obj
        raise RecordError(f"the flow has no {entity} record yet")

    def _call_factory(self, entity: str, flow: Flow, leaving: Any) -> Any:
        try:
            made = self._factories[entity](flow, leaving)
        except BpfError:
            raise
        except Exception as exc:
            raise HookError(
                f"record factory for {entity!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        if made is None:
            raise HookError(f"record factory for {entity!r} returned None instead of a record")
        return made

    def _missing(self, flow: Flow) -> list[Step]:
        current = flow._stage
        if not current.required:
            return []
        return core.missing_steps(current, self._getter(flow, current.stage.entity))

    def _active_path(self, flow: Flow) -> tuple[str, ...]:
        objects = {e: obj for (e, _), obj in zip(flow._state.records, flow._bound, strict=True)}

        def get_for(entity: str) -> Callable[[str], Any]:
            obj = objects.get(entity)
            return field_getter(obj) if obj is not None else _no_record(entity)

        return core.predicted_path(flow._compiled, flow._state, get_for)

    def _materialize(self, row: FlowRow) -> Flow:
        flow = self._flows.get(row.id)
        if flow is not None:
            # A row never moves a flow backwards: an older one (read before a commit, or while
            # this engine's batch is open) leaves the flow as it is.
            if row.revision > flow._state.revision:
                self._apply_row(flow, row)
            return flow
        compiled = self._registry.get(row.process, row.version)
        flow = Flow(self, compiled, row, (None,) * len(row.records))
        self._flows.add(flow)
        return flow

    def _apply_row(self, flow: Flow, row: FlowRow) -> None:
        compiled = self._registry.get(row.process, row.version)
        bound = dict(zip((e for e, _ in flow._state.records), flow._bound, strict=True))
        flow._compiled = compiled
        flow._stage = compiled.stages[row.stage]
        flow._state = row
        flow._bound = tuple(bound.get(e) for e, _ in row.records)
        flow._history = None

    def _refresh(self, flow: Flow) -> None:
        with self._lock:
            row = self._store.get_flow(flow.id)
            if row is None:
                raise FlowNotFoundError(f"flow {flow.id!r} is no longer in the store")
            if row.revision != flow._state.revision:
                self._apply_row(flow, row)

    def _bind(self, flow: Flow, record: Any) -> None:
        rid = record_id(record)
        with self._lock:
            if not _bind_if_matches(flow, rid, record):
                raise RecordError(
                    f"record {rid!r} is not one of the flow's records ({flow.record_ids})"
                )

    def close(self) -> None:
        """Release the store's connections."""
        self._store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<bpf.Engine store={self._store.url!r} processes={self._registry.names()}>"


def _bind_if_matches(flow: Flow, rid: str, record: Any) -> bool:
    for i, (_, r) in enumerate(flow._state.records):
        if r == rid:
            bound = flow._bound
            if bound[i] is not record:
                flow._bound = (*bound[:i], record, *bound[i + 1:])
            return True
    return False


__all__ = ["EVENTS", "Engine", "utcnow"]
