"""Moves and status changes of one flow: decided by the move core, applied by the engine.

`Moves` is the part of `bpf.Engine` that `bpf.Flow`'s methods call: each operation checks what
the caller saw (stale-click protection), lets the core decide, gets the records the change
needs (given, bound, loaded through a binding, or made by a record factory), runs the
cancelable hooks and hands the change to the engine's `Transactions`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from bpf._errors import BpfError, ConcurrencyError, HookError, Reason, RecordError, TransitionError
from bpf.definition.model import Stage
from bpf.runtime import changes, core
from bpf.runtime.bindings import raiser
from bpf.runtime.core import Refusal
from bpf.runtime.flow import Actor, Flow, FlowEvent
from bpf.runtime.registry import refuse_unregistered
from bpf.store.base import FlowRow

if TYPE_CHECKING:
    from datetime import datetime

    from bpf.runtime.bindings import Bindings, Records
    from bpf.runtime.hooks import Hooks
    from bpf.runtime.transaction import Transactions
    from bpf.store.base import Store


class Moves:
    """The flow operations of an engine (mixed into `bpf.Engine`)."""

    _lock: Any
    _store: Store
    _hooks: Hooks
    _bindings: Bindings
    _records: Records
    _tx: Transactions
    _factories: dict[str, Callable[[Flow, Any], Any]]

    if TYPE_CHECKING:
        def now(self) -> datetime: ...

    @staticmethod
    def _expect(flow: Flow, stage: str | None, revision: int | None, actor: Actor | None
                ) -> None:
        """Stale-click protection: the caller says what it saw; anything else changed nothing.
        Also refuses to move a flow whose definition is known from the store only. The role
        comes first: an actor without it learns nothing of the flow."""
        refusal = core.role_refusal(flow._compiled.definition, actor, "change")
        if refusal is not None:
            raise refusal.error()
        if not flow._compiled.registered:
            refuse_unregistered(flow._compiled)
        state = flow._state
        if (stage is not None and stage != state.stage) or (
            revision is not None and revision != state.revision
        ):
            saw = ", ".join(x for x in (stage and f"stage {stage!r}",
                                        revision is not None and f"revision {revision}") if x)
            raise ConcurrencyError(
                f"flow {state.id!r} changed since it was shown ({saw}): it is now at stage "
                f"{state.stage!r}, revision {state.revision}; nothing was changed"
            )

    def _next(self, flow: Flow, actor: Actor | None, record: Any, stage: str | None = None,
              revision: int | None = None) -> Stage:
        with self._lock:
            if stage is not None or revision is not None or not flow._compiled.registered:
                self._expect(flow, stage, revision, actor)
            try:
                get = self._records.getter(flow, flow._stage.stage.entity)
            except RecordError as exc:
                get = raiser(exc)
            target = core.decide_next(flow._compiled, flow._state, get, actor)
            if type(target) is not str:
                raise target.error()  # type: ignore[union-attr]
            return self._move(flow, "next", target, actor, record)

    def _previous(self, flow: Flow, actor: Actor | None, stage: str | None = None,
                  revision: int | None = None) -> Stage:
        with self._lock:
            self._expect(flow, stage, revision, actor)
            target = core.decide_previous(flow._compiled, flow._state, actor)
            if type(target) is not str:
                raise target.error()  # type: ignore[union-attr]
            return self._move(flow, "previous", target, actor, None)

    def _set_active(self, flow: Flow, stage_id: str, actor: Actor | None,
                    stage: str | None = None, revision: int | None = None) -> Stage:
        with self._lock:
            self._expect(flow, stage, revision, actor)
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
            _, given_id = self._records.key(given, entity)
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
            obj = self._records.obj(flow, entity)  # loads it through its entity binding
            bound = flow._bound
        at = self.now()
        if self._hooks["stage_changing"]:
            self._hooks.before(FlowEvent("stage_changing", flow, kind, state.stage, target_id,
                                         state.status, state.status, actor))
        new_records: tuple[tuple[str, str], ...] = ()
        if rid is None:
            if given is None:
                leaving = self._records.obj(flow, flow._stage.stage.entity)
                given = self._call_factory(entity, flow, leaving)
            _, rid = self._records.key(given, entity)
            self._refuse_second_flow(state.process, entity, rid, state)
            new_records = ((entity, rid),)
            bound = (*flow._bound, given)
        elif given is not None and given is not obj:
            bound = (*bound[:index], given, *bound[index + 1:])
        if given is not None:
            obj = given
        change = changes.enter(compiled, state, kind, target_id, rid, new_records, at, actor)
        self._tx.apply(flow, change, obj, bound, actor,
                       save=self._records.save_of(entity) if self._bindings.any else None)
        return target.stage

    def _refuse_second_flow(self, process: str, entity: str, rid: str, state: FlowRow) -> None:
        """One flow per process per record holds across entities: a flow may not move into
        a record that already has a flow of its process."""
        for row in self._store.record_flows(rid, entity):
            if row.process == process and row.id != state.id:
                first = row.records[0]
                raise TransitionError(
                    f"{entity} {rid!r} already has a {process!r} flow (from {first[0]} "
                    f"{first[1]!r}): a record has one flow per process; finish or abandon "
                    "this one, or give it a new record",
                    reason=Reason.EXISTS,
                )

    # -- status ----------------------------------------------------------------------------------

    def _finish(self, flow: Flow, outcome: str | None, actor: Actor | None,
                stage: str | None = None, revision: int | None = None) -> None:
        with self._lock:
            self._expect(flow, stage, revision, actor)
            try:
                get = self._records.getter(flow, flow._stage.stage.entity)
            except RecordError as exc:
                get = raiser(exc)
            setters = core.decide_finish(flow._compiled, flow._state, outcome, actor, get)
            if type(setters) is Refusal:
                raise setters.error()
            self._status(flow, "finish", actor, outcome, setters)  # type: ignore[arg-type]

    def _abandon(self, flow: Flow, actor: Actor | None, stage: str | None = None,
                 revision: int | None = None) -> None:
        with self._lock:
            self._expect(flow, stage, revision, actor)
            refusal = core.decide_abandon(flow._compiled, flow._state, actor)
            if refusal is not None:
                raise refusal.error()
            self._status(flow, "abandon", actor, None, None)

    def _reactivate(self, flow: Flow, actor: Actor | None, stage: str | None = None,
                    revision: int | None = None) -> None:
        with self._lock:
            self._expect(flow, stage, revision, actor)
            setters = core.decide_reactivate(flow._compiled, flow._state, actor)
            if type(setters) is Refusal:
                raise setters.error()
            self._status(flow, "reactivate", actor, None, setters)  # type: ignore[arg-type]

    def _status(
        self, flow: Flow, kind: str, actor: Actor | None, outcome: str | None,
        setters: Mapping[str, Any] | None,
    ) -> None:
        state = flow._state
        stage = state.stage
        entity = flow._stage.stage.entity
        record = self._records.obj(flow, entity) if setters else None
        if self._hooks["status_changing"]:
            self._hooks.before(FlowEvent(
                "status_changing", flow, kind, stage, stage, state.status,
                changes.STATUS_OF[kind], actor, outcome,
            ))
        rid = changes.record_of(state.records, entity) or state.records[0][1]
        change = changes.change_status(flow._compiled, state, kind, rid, self.now(), actor,
                                    outcome, setters)
        self._tx.apply(flow, change, record, flow._bound, actor,
                       save=self._records.save_of(entity) if setters else None)

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
