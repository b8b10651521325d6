"""The engine: registers processes, starts and moves flows on records, keeps their history.

Every operation follows one pattern, so a refused or failed one changes nothing:

1. check (status, roles, gate, target) and run the cancelable ``*_changing`` hooks;
2. change the flow and the record in memory, remembering how to undo it;
3. run the stage actions (on_exit, on_enter) and write to the store in one transaction;
4. on any exception in 3, undo 2 and re-raise; otherwise run the ``*_changed`` hooks.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from bpf._errors import (
    AccessDenied,
    BpfError,
    Cancel,
    FlowExistsError,
    FlowNotFoundError,
    HookError,
    PipelineFieldWarning,
    RecordError,
    RegistrationError,
    StageGateError,
    TransitionError,
    UnknownProcessError,
)
from bpf.definition.model import ProcessDefinition, Stage, Step
from bpf.runtime.compiled import CompiledProcess, compile_process
from bpf.runtime.flow import Actor, Flow, FlowEvent, StageChange, record_entry
from bpf.runtime.records import field_getter, record_id, set_field
from bpf.store.base import (
    FlowRow,
    InsertFlow,
    Op,
    SetActiveFlow,
    SetLastChange,
    Store,
    UpdateFlow,
)

#: The events `Engine.on` accepts.
EVENTS = ("stage_changing", "stage_changed", "status_changing", "status_changed")

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


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


class _Unit:
    """The writes and undo steps of one operation, or of a whole batch."""

    __slots__ = ("after", "ops", "undo")

    def __init__(self) -> None:
        self.ops: list[Op] = []
        self.undo: list[Callable[[], None]] = []
        self.after: list[Callable[[], None]] = []

    def rollback(self) -> None:
        for step in reversed(self.undo):
            step()


class Engine:
    """Runs business process flows on records.

    ``store`` is where flows live: None or ``"memory"`` for this process only, a database URL
    (``"sqlite:///bpf.db"``, ``"postgresql+psycopg://user@host/db"``), a SQLAlchemy `Engine`,
    or a `bpf.store.Store`. ``clock`` returns timezone-aware UTC datetimes.
    """

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
        self._hooks: dict[str, list[Callable[[FlowEvent], Any]]] = {e: [] for e in EVENTS}
        self._factories: dict[str, Callable[[Flow, Any], Any]] = {}
        self._compiled: dict[tuple[str, int], CompiledProcess] = {}
        self._latest: dict[str, CompiledProcess] = {}
        self._lock = threading.RLock()
        self._unit: _Unit | None = None  # the open batch, if any
        # Flows materialized from a database store, so one flow is one object per engine.
        self._loaded: weakref.WeakValueDictionary[str, Flow] = weakref.WeakValueDictionary()

    # -- configuration ---------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        return self._store

    def register(self, definition: ProcessDefinition) -> ProcessDefinition:
        """Make a process (one version of it) available to `start`; returns it.

        Several processes may run on one entity. Registering a newer version makes it the one
        new flows start on; flows already running stay on theirs (see `migrate`).
        """
        if not isinstance(definition, ProcessDefinition):
            raise RegistrationError(
                f"register() takes a ProcessDefinition, got {type(definition).__name__}"
            )
        key = (definition.process, definition.version)
        with self._lock:
            known = self._compiled.get(key)
            if known is not None:
                if known.definition != definition:
                    raise RegistrationError(
                        f"process {definition.process!r} version {definition.version} is already "
                        "registered with a different definition; give the new one a new version"
                    )
                return definition
            compiled = compile_process(definition, self.actions)
            self._warn_shared_pipeline_field(definition)
            self._compiled[key] = compiled
            latest = self._latest.get(definition.process)
            if latest is None or latest.definition.version < definition.version:
                self._latest[definition.process] = compiled
        return definition

    def _warn_shared_pipeline_field(self, definition: ProcessDefinition) -> None:
        field = definition.pipeline_field
        if field is None:
            return
        entities = set(definition.entities)
        for other in self._latest.values():
            o = other.definition
            if o.process == definition.process or o.pipeline_field != field:
                continue
            shared = entities & set(o.entities)
            if shared:
                warnings.warn(
                    PipelineFieldWarning(
                        f"processes {o.process!r} and {definition.process!r} both write "
                        f"{', '.join(sorted(shared))}.{field}: with flows of both on one record it "
                        "holds the last stage change of either; use each flow's own stage or "
                        "Engine.last_stage_change(record) for an unambiguous answer"
                    ),
                    stacklevel=3,
                )

    def processes(self) -> tuple[ProcessDefinition, ...]:
        """Every registered definition, every version."""
        return tuple(c.definition for c in self._compiled.values())

    def process(self, name: str, version: int | None = None) -> ProcessDefinition:
        """A registered definition: the latest version unless ``version`` is given."""
        return self._compiled_for(name, version).definition

    def on(self, event: str, fn: Callable[[FlowEvent], Any]) -> Callable[[FlowEvent], Any]:
        """Call ``fn(FlowEvent)`` on ``event``; a ``*_changing`` handler cancels by raising
        `bpf.Cancel`. Returns ``fn``, so it also works as a decorator factory's target."""
        if event not in self._hooks:
            raise RegistrationError(f"unknown event {event!r}; events: {', '.join(EVENTS)}")
        self._hooks[event].append(fn)
        return fn

    def record_factory(self, entity: str, fn: Callable[[Flow, Any], Any]) -> None:
        """Create the ``entity`` record a flow needs when it first enters a stage on it.

        ``fn(flow, record)`` gets the flow and the record being left, and returns the new record.
        """
        self._factories[entity] = fn

    def _compiled_for(self, name: str, version: int | None = None) -> CompiledProcess:
        if version is None:
            compiled = self._latest.get(name)
        else:
            compiled = self._compiled.get((name, version))
        if compiled is None:
            known = ", ".join(sorted(self._latest)) or "none"
            what = name if version is None else f"{name} version {version}"
            raise UnknownProcessError(f"process {what!r} is not registered (registered: {known})")
        return compiled

    # -- lookups ---------------------------------------------------------------------------------

    def flows(self, record: Any) -> list[Flow]:
        """Every flow on the record (a record object or its id), all processes, in start order."""
        rid = record_id(record)
        with self._lock:
            flows = [self._materialize(x) for x in self._store.record_flows(rid)]
            if not isinstance(record, str):
                for flow in flows:
                    self._bind_if_matches(flow, rid, record)
            return flows

    def flow(self, record: Any, process: str) -> Flow:
        """The record's flow of ``process``; `bpf.FlowNotFoundError` when there is none."""
        flow = self._find_flow(record, process)
        if flow is None:
            raise FlowNotFoundError(f"record {record_id(record)!r} has no {process!r} flow")
        return flow

    def _find_flow(self, record: Any, process: str) -> Flow | None:
        for flow in self.flows(record):
            if flow._compiled.definition.process == process:
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
        for found in self._store.iter_flows(process, version=version, status=status):
            with self._lock:
                yield self._materialize(found)

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
        compiled = self._compiled_for(process, version)
        rid = record_id(record)
        with self._lock:
            self._check_role(compiled.definition, actor, "start")
            # Checked before any hook runs; inside a batch on a database the store's unique
            # constraint catches it at commit instead, sparing a query per start of a bulk load.
            if self._unit is None or self._store.live:
                for other in self._store.record_flows(rid):
                    if self._materialize(other)._compiled.definition.process == process:
                        raise FlowExistsError(f"record {rid!r} already has a {process!r} flow")
            return self._start(compiled, record, rid, actor)

    def switch(self, record: Any, process: str, *, actor: Actor | None = None) -> Flow:
        """Dynamics' "Switch process": make the record show its ``process`` flow, starting it
        when the record has none. Flows keep their own stages."""
        rid = record_id(record)
        with self._lock:
            flow = self._find_flow(record, process)
            if flow is None:
                return self.start(process, record, actor=actor)
            self._check_role(flow._compiled.definition, actor, "switch to")
            self._transact(flow, [SetActiveFlow(rid, flow.id)], _nothing, (), (), "switch", None,
                           flow._stage.stage.id, actor, record, quiet=True)
            return flow

    def _start(self, compiled: CompiledProcess, record: Any, rid: str, actor: Actor | None) -> Flow:
        definition = compiled.definition
        first = compiled.first
        stage = first.stage
        at = self._now()
        flow = Flow(
            self, _new_id(), compiled, first, ((stage.entity, rid, record),),
            started_at=at, stage_started_at=at, traversed=(stage.id,), history=[],
        )
        if self._hooks["stage_changing"]:
            self._before("stage_changing", flow, "start", None, stage.id, actor)
        entry = StageChange(
            flow.id, definition.process, definition.version, rid, "start", None, stage.id,
            stage.phase, at, actor.name if actor else None,
        )
        flow._history.append(entry)  # type: ignore[union-attr]
        # Nothing else has changed yet: a record refusing the field leaves no trace.
        undo = (
            set_field(record, definition.pipeline_field, stage.phase)
            if definition.pipeline_field is not None else None
        )
        ops = [
            InsertFlow(flow, (entry,)),
            SetActiveFlow(rid, flow.id),
            SetLastChange(rid, entry),
        ]
        self._transact(flow, ops, _Rollback(flow, None, undo), (), first.on_enter, "start", None,
                       stage.id, actor, record)
        if not self._store.live:
            self._loaded[flow.id] = flow
        return flow

    # -- moving ----------------------------------------------------------------------------------

    def _next(self, flow: Flow, actor: Actor | None, record: Any) -> Stage:
        with self._lock:
            self._check_move(flow, actor, "move")
            current = flow._stage
            get = self._getter(flow, current.stage.entity)
            if current.required:
                missing = [s for s in current.required if not s.is_satisfied(get(s.field))]
                if missing:
                    raise StageGateError(
                        f"cannot leave stage {current.stage.name!r} of "
                        f"{flow._compiled.definition.process!r}: required "
                        + ", ".join(f"{s.label} ({s.field})" for s in missing)
                        + (" is" if len(missing) == 1 else " are")
                        + " not filled",
                        missing=missing,
                    )
            if not current.branches:
                raise TransitionError(
                    f"stage {current.stage.id!r} is the end of "
                    f"{flow._compiled.definition.process!r}: there is no next stage; finish the "
                    "flow instead",
                    reason="end",
                )
            return self._move(flow, "next", _pick(current.branches, get), actor, record)

    def _previous(self, flow: Flow, actor: Actor | None) -> Stage:
        with self._lock:
            self._check_move(flow, actor, "move")
            if len(flow._traversed) < 2:
                raise TransitionError(
                    f"stage {flow._stage.stage.id!r} is the beginning of the flow: "
                    "there is no previous stage",
                    reason="beginning",
                )
            return self._move(flow, "previous", flow._traversed[-2], actor, None)

    def _set_active(self, flow: Flow, stage_id: str, actor: Actor | None) -> Stage:
        with self._lock:
            self._check_move(flow, actor, "move")
            flow._compiled.definition.stage(stage_id)  # unknown: UnknownStageError
            if stage_id == flow._stage.stage.id:
                raise TransitionError(f"stage {stage_id!r} is already active", reason="active")
            if stage_id not in flow._traversed:
                raise TransitionError(
                    f"stage {stage_id!r} is unreachable: set_active only returns to a stage on the "
                    f"traversed path ({' > '.join(flow._traversed)})",
                    reason="unreachable",
                )
            return self._move(flow, "set_active", stage_id, actor, None)

    def _move(
        self, flow: Flow, kind: str, target_id: str, actor: Actor | None, given: Any
    ) -> Stage:
        compiled = flow._compiled
        definition = compiled.definition
        source = flow._stage
        target = compiled.stages[target_id]
        stage = target.stage
        entity = stage.entity
        records = flow._records
        rid = obj = None
        for e, r, o in records:
            if e == entity:
                rid, obj = r, o
                break
        if given is not None:
            given_id = record_id(given)
            if rid is not None and given_id != rid:
                raise TransitionError(
                    f"the flow's {entity} record is {rid!r}, not {given_id!r}", reason="entity"
                )
        elif rid is None and entity not in self._factories:
            raise TransitionError(
                f"stage {target_id!r} is on the {entity!r} entity: pass its record with "
                f"next(record=...) or register engine.record_factory({entity!r}, fn)",
                reason="entity",
            )
        elif obj is None and rid is not None:
            raise TransitionError(
                f"stage {target_id!r} needs the {entity} record {rid!r}, which is not bound in "
                "this engine: pass it with record=... or flow.bind(record)",
                reason="entity",
            )
        at = self._now()
        if self._hooks["stage_changing"]:
            self._before("stage_changing", flow, kind, source.stage.id, target_id, actor)
        new_records: tuple[tuple[str, str], ...] = ()
        if rid is None:
            if given is None:
                leaving = self._record_obj(flow, source.stage.entity)
                given = self._call_factory(entity, flow, leaving)
            rid = record_id(given)
            new_records = ((entity, rid),)
        if given is not None and given is not obj:
            obj = given
            records = _with_record(records, entity, rid, obj)
        entry = StageChange(
            flow.id, definition.process, definition.version, rid, kind, source.stage.id,
            target_id, stage.phase, at, actor.name if actor else None,
        )
        saved = _save(flow)
        undo = None
        try:
            flow._records = records
            flow._stage = target
            flow.stage_started_at = at
            if kind == "next":
                flow._traversed = (*flow._traversed, target_id)
            else:
                flow._traversed = flow._traversed[: flow._traversed.index(target_id) + 1]
            flow.revision += 1
            if flow._history is not None:
                flow._history.append(entry)
            if definition.pipeline_field is not None:
                undo = set_field(obj, definition.pipeline_field, stage.phase)
        except BaseException:
            _restore(flow, saved)
            raise
        ops = [
            UpdateFlow(flow, saved[6], (entry,), new_records),
            SetLastChange(rid, entry),
        ]
        self._transact(flow, ops, _Rollback(flow, saved, undo), source.on_exit, target.on_enter,
                       kind, source.stage.id, target_id, actor, obj)
        return stage

    # -- status ----------------------------------------------------------------------------------

    def _finish(self, flow: Flow, outcome: str | None, actor: Actor | None) -> None:
        with self._lock:
            self._check_move(flow, actor, "finish")
            definition = flow._compiled.definition
            if not flow._stage.is_last:
                raise TransitionError(
                    f"stage {flow._stage.stage.id!r} is not the last stage of "
                    f"{definition.process!r}: a flow finishes only at its last stage",
                    reason="end",
                )
            setters: Mapping[str, Any] = {}
            if outcome is not None:
                found = definition.outcomes.get(outcome)
                if found is None:
                    known = ", ".join(definition.outcomes) or "none"
                    raise TransitionError(
                        f"unknown outcome {outcome!r} for {definition.process!r} "
                        f"(outcomes: {known})",
                        reason="outcome",
                    )
                setters = found.set
            record = self._record_obj(flow, flow._stage.stage.entity) if setters else None
            self._status(flow, "finish", "finished", actor, outcome, record, setters)

    def _abandon(self, flow: Flow, actor: Actor | None) -> None:
        with self._lock:
            self._check_move(flow, actor, "abandon")
            self._status(flow, "abandon", "aborted", actor, None, None, {})

    def _reactivate(self, flow: Flow, actor: Actor | None) -> None:
        with self._lock:
            self._check_role(flow._compiled.definition, actor, "reactivate")
            if flow.status == "active":
                raise TransitionError(
                    "the flow is already active; only a finished or aborted flow can be "
                    "reactivated",
                    reason="status",
                )
            self._status(flow, "reactivate", "active", actor, None, None, {})

    def _status(
        self,
        flow: Flow,
        kind: str,
        status: str,
        actor: Actor | None,
        outcome: str | None,
        record: Any,
        setters: Mapping[str, Any],
    ) -> None:
        definition = flow._compiled.definition
        stage = flow._stage.stage
        from_status = flow.status
        if self._hooks["status_changing"]:
            self._before("status_changing", flow, kind, stage.id, stage.id, actor,
                         from_status=from_status, to_status=status, outcome=outcome)
        at = self._now()
        entry = StageChange(
            flow.id, definition.process, definition.version,
            self._record_id(flow, stage.entity), kind, stage.id, stage.id, stage.phase, at,
            actor.name if actor else None,
        )
        saved = _save(flow)
        undos: list[Callable[[], None]] = []

        def rollback() -> None:
            for step in reversed(undos):
                step()
            _restore(flow, saved)

        try:
            flow.status = status  # type: ignore[assignment]
            flow.completed_at = None if status == "active" else at
            flow.outcome = outcome
            flow.revision += 1
            if flow._history is not None:
                flow._history.append(entry)
            for field, value in setters.items():
                undos.append(set_field(record, field, value))
        except BaseException:
            rollback()
            raise
        ops = [UpdateFlow(flow, saved[6], (entry,))]
        self._transact(flow, ops, rollback, (), (), kind, stage.id, stage.id, actor, record,
                       from_status=from_status, outcome=outcome)

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
            unit = self._unit = _Unit()
            try:
                yield self
                if unit.ops:
                    self._store.write(unit.ops)
            except BaseException:
                unit.rollback()
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
        themselves. A stage with no mapping is an error before anything changes. Each flow
        gets a ``migrate`` history entry. Returns how many flows moved.
        """
        from bpf.runtime.migrate import migrate

        return migrate(self, process, to_version, stage_map, actor=actor)

    # -- the transaction pattern ------------------------------------------------------------------

    def _transact(
        self,
        flow: Flow,
        ops: list[Op],
        rollback: Callable[[], None],
        on_exit: tuple[tuple[str, Callable[..., Any]], ...],
        on_enter: tuple[tuple[str, Callable[..., Any]], ...],
        kind: str,
        from_stage: str | None,
        to_stage: str,
        actor: Actor | None,
        record: Any,
        *,
        from_status: str | None = None,
        outcome: str | None = None,
        quiet: bool = False,
    ) -> None:
        """Run the stage actions and write ``ops``; on any failure call ``rollback`` and
        re-raise. Then run the ``*_changed`` hooks (after the batch, inside one)."""
        batch = self._unit
        try:
            if on_exit or on_enter:  # most stages have no actions: skip the loop
                for event_name, actions in (("on_exit", on_exit), ("on_enter", on_enter)):
                    for name, fn in actions:
                        try:
                            fn(FlowEvent(event_name, flow, kind, from_stage, to_stage, flow.status,
                                         flow.status, actor, flow.outcome, record))
                        except BpfError:
                            raise
                        except Exception as exc:
                            stage = to_stage if event_name == "on_enter" else from_stage
                            raise HookError(
                                f"{event_name} action {name!r} of stage {stage!r} failed: "
                                f"{type(exc).__name__}: {exc}"
                            ) from exc
            if batch is None:
                self._store.write(ops)
            else:
                batch.ops.extend(ops)
                batch.undo.append(rollback)
        except BaseException:
            rollback()
            raise
        event = "stage_changed" if from_status is None else "status_changed"
        if self._hooks[event] and not quiet:
            info = FlowEvent(event, flow, kind, from_stage, to_stage, from_status or flow.status,
                             flow.status, actor, outcome, record)
            if batch is None:
                self._after(event, info)
            else:
                batch.after.append(functools.partial(self._after, event, info))

    def _before(
        self, event: str, flow: Flow, kind: str, from_stage: str | None, to_stage: str,
        actor: Actor | None, *, from_status: str | None = None, to_status: str | None = None,
        outcome: str | None = None,
    ) -> None:
        info = FlowEvent(event, flow, kind, from_stage, to_stage, from_status or flow.status,
                         to_status or flow.status, actor, outcome)
        for fn in self._hooks[event]:
            try:
                fn(info)
            except Cancel:
                raise
            except Exception as exc:
                raise HookError(
                    f"{event} handler {getattr(fn, '__qualname__', fn)!r} failed: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc

    def _after(self, event: str, info: FlowEvent) -> None:
        for fn in self._hooks[event]:
            try:
                fn(info)
            except Exception as exc:
                raise HookError(
                    f"{event} handler {getattr(fn, '__qualname__', fn)!r} failed after the "
                    f"change was committed (the change stands): {type(exc).__name__}: {exc}"
                ) from exc

    # -- checks and helpers ----------------------------------------------------------------------

    def _now(self) -> datetime:
        at = self._clock()
        if at.tzinfo is None:
            raise BpfError("the engine's clock returned a naive datetime: it must be aware (UTC)")
        return at if at.tzinfo is UTC else at.astimezone(UTC)

    def _check_role(self, definition: ProcessDefinition, actor: Actor | None, what: str) -> None:
        roles = definition.roles
        if not roles:
            return
        if actor is None or actor.roles.isdisjoint(roles):
            who = "an anonymous caller" if actor is None else f"actor {actor.name!r}"
            raise AccessDenied(
                f"{who} may not {what} a {definition.process!r} flow: it needs one of the roles "
                f"{', '.join(roles)}"
            )

    def _check_move(self, flow: Flow, actor: Actor | None, what: str) -> None:
        if flow.status != "active":
            raise TransitionError(
                f"the flow is {flow.status}: reactivate it before you {what} it", reason="status"
            )
        self._check_role(flow._compiled.definition, actor, what)

    def _record_obj(self, flow: Flow, entity: str) -> Any:
        # The loop of `record_entry`, inlined: next() reads its gate through here.
        for e, rid, obj in flow._records:
            if e == entity:
                if obj is None:
                    raise RecordError(
                        f"the flow needs its {entity} record {rid!r}, which is not bound in this "
                        "engine: look the flow up with that record (engine.flows(record)) or call "
                        "flow.bind(record)"
                    )
                return obj
        raise RecordError(f"the flow has no {entity} record yet")

    def _record_id(self, flow: Flow, entity: str) -> str:
        rid = record_entry(flow._records, entity)[0]
        return flow._records[0][1] if rid is None else rid

    def _getter(self, flow: Flow, entity: str) -> Callable[[str], Any]:
        return field_getter(self._record_obj(flow, entity))

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
        get = self._getter(flow, current.stage.entity)
        return [s for s in current.required if not s.is_satisfied(get(s.field))]

    def _active_path(self, flow: Flow) -> tuple[str, ...]:
        compiled = flow._compiled
        path = list(flow._traversed)
        seen = set(path)
        stage = flow._stage
        while stage.branches:
            get = self._lenient_getter(flow, stage.stage.entity)
            target = _pick(stage.branches, get)
            if target in seen:  # the checks forbid cycles; never loop on a bad definition
                break
            path.append(target)
            seen.add(target)
            stage = compiled.stages[target]
        return tuple(path)

    def _lenient_getter(self, flow: Flow, entity: str) -> Callable[[str], Any]:
        # Stages ahead on an entity without a record yet are predicted from empty values.
        obj = record_entry(flow._records, entity)[1]
        if obj is not None:
            return field_getter(obj)
        return lambda field: None

    def _time_in_stage(self, flow: Flow, stage_id: str, now: datetime | None) -> timedelta:
        total = timedelta(0)
        current: str | None = None
        since: datetime | None = None
        for entry in flow.history:
            if entry.kind == "migrate":
                # Not a move in the business: the stay goes on, under the stage's id in the
                # new version, as the reports (bpf.reports.time_in_stage) count it.
                current = entry.to_stage
                continue
            if since is not None and current == stage_id:
                total += entry.at - since
            if entry.kind in ("finish", "abandon"):
                since = None
            else:
                current, since = entry.to_stage, entry.at
        if since is not None and current == stage_id:
            total += (now or self._now()) - since
        return total

    def _load_history(self, flow: Flow) -> list[StageChange]:
        return self._store.history(flow.id)

    # -- rows from a database store ---------------------------------------------------------

    def _materialize(self, found: Any) -> Flow:
        if isinstance(found, Flow):
            return found
        row: FlowRow = found
        flow = self._loaded.get(row.id)
        compiled = self._compiled_for(row.process, row.version)
        if flow is not None:
            if flow.revision != row.revision:
                self._apply_row(flow, row, compiled)
            return flow
        flow = Flow(
            self, row.id, compiled, compiled.stages[row.stage],
            tuple((e, rid, None) for e, rid in row.records),
            started_at=row.started_at, stage_started_at=row.stage_started_at,
            traversed=tuple(row.traversed), status=row.status, completed_at=row.completed_at,
            outcome=row.outcome, revision=row.revision, history=None,
        )
        self._loaded[row.id] = flow
        return flow

    def _apply_row(self, flow: Flow, row: FlowRow, compiled: CompiledProcess) -> None:
        bound = {e: obj for e, _, obj in flow._records}
        flow._compiled = compiled
        flow._stage = compiled.stages[row.stage]
        flow._records = tuple((e, rid, bound.get(e)) for e, rid in row.records)
        flow.stage_started_at = row.stage_started_at
        flow._traversed = tuple(row.traversed)
        flow.status = row.status  # type: ignore[assignment]
        flow.completed_at = row.completed_at
        flow.outcome = row.outcome
        flow.revision = row.revision
        flow._history = None

    def _refresh(self, flow: Flow) -> None:
        with self._lock:
            found = self._store.get_flow(flow.id)
            if found is None:
                raise FlowNotFoundError(f"flow {flow.id!r} is no longer in the store")
            if not isinstance(found, Flow):
                self._apply_row(flow, found, self._compiled_for(found.process, found.version))

    def _bind(self, flow: Flow, record: Any) -> None:
        rid = record_id(record)
        with self._lock:
            if not self._bind_if_matches(flow, rid, record):
                raise RecordError(
                    f"record {rid!r} is not one of the flow's records ({flow.record_ids})"
                )

    @staticmethod
    def _bind_if_matches(flow: Flow, rid: str, record: Any) -> bool:
        records = flow._records
        for i, (e, r, obj) in enumerate(records):
            if r == rid:
                if obj is not record:
                    flow._records = (*records[:i], (e, r, record), *records[i + 1:])
                return True
        return False

    def close(self) -> None:
        """Release the store's connections."""
        self._store.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<bpf.Engine store={self._store.url!r} processes={sorted(self._latest)}>"


def _pick(branches: tuple[tuple[Any, str], ...], get: Callable[[str], Any]) -> str:
    for test, target in branches:
        if test is None or test(get):
            return target
    # The definition checks make the last branch a default; a hand-built definition may not.
    raise TransitionError(
        "no branch condition holds and the stage has no default branch", reason="branch"
    )


def _with_record(
    records: tuple[tuple[str, str, Any], ...], entity: str, rid: str, obj: Any
) -> tuple[tuple[str, str, Any], ...]:
    for i, (e, _, _) in enumerate(records):
        if e == entity:
            return (*records[:i], (entity, rid, obj), *records[i + 1:])
    return (*records, (entity, rid, obj))


def _nothing() -> None:
    pass


def _save(flow: Flow) -> tuple[Any, ...]:
    """Everything an operation may change on a flow; index 6 is the revision."""
    return (flow._stage, flow.stage_started_at, flow._traversed, flow.status, flow.completed_at,
            flow.outcome, flow.revision, flow._records,
            None if flow._history is None else len(flow._history))


def _restore(flow: Flow, saved: tuple[Any, ...]) -> None:
    (flow._stage, flow.stage_started_at, flow._traversed, flow.status, flow.completed_at,
     flow.outcome, flow.revision, flow._records, n) = saved
    if n is not None and flow._history is not None:
        del flow._history[n:]


class _Rollback:
    """Undoes one operation: the record field it wrote, then the flow's saved fields."""

    __slots__ = ("flow", "saved", "undo")

    def __init__(
        self, flow: Flow, saved: tuple[Any, ...] | None, undo: Callable[[], None] | None
    ) -> None:
        self.flow = flow
        self.saved = saved
        self.undo = undo

    def __call__(self) -> None:
        if self.undo is not None:
            self.undo()
        if self.saved is not None:
            _restore(self.flow, self.saved)


__all__ = ["EVENTS", "Engine", "utcnow"]
