"""The changes the move core decides: a flow's new state, given a decision, without any I/O.

`bpf.runtime.core` says where an operation goes, or why it cannot; the functions here take
that answer, the flow's state (a `FlowRow`), its compiled process and the time, and return a
`Change`: the new state, the history entry, the fields to write on the record, the stage
actions to run. The engines apply changes, the stores persist them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from bpf._history import StageChange
from bpf.runtime.compiled import CompiledProcess, CompiledStage
from bpf.store.base import FlowRow

# Values are built with tuple.__new__: a named tuple's generated __new__ is one more Python
# call per value, and a move builds three of them.
_new = tuple.__new__
Actions = tuple[tuple[str, Callable[..., Any]], ...]


class Change(NamedTuple):
    """One decided change of one flow, to apply in memory and write in one transaction."""

    kind: str
    #: the state before (None for a start) and after the change
    before: FlowRow | None
    after: FlowRow
    entry: StageChange
    #: the stage left (None for a start; the same stage for a status change) and entered
    source: CompiledStage | None
    target: CompiledStage
    #: (field, value) to set on the record ``entry.record_id``
    writes: tuple[tuple[str, Any], ...]
    #: records the flow spans from now on, (entity, record id)
    new_records: tuple[tuple[str, str], ...]
    #: whether the record's last stage change (its pipeline phase) becomes ``entry``
    sets_last_change: bool
    on_exit: Actions
    on_enter: Actions


def _name(actor: Any) -> str | None:
    return actor.name if actor is not None else None


def start(
    compiled: CompiledProcess, flow_id: str, record_id: str, at: datetime, actor: Any
) -> Change:
    """A new flow on ``record_id`` at the process's first stage."""
    definition = compiled.definition
    first = compiled.first
    stage = first.stage
    state = FlowRow(
        flow_id, definition.process, definition.version, ((stage.entity, record_id),),
        stage.id, at, (stage.id,), "active", at, None, None, 1,
    )
    entry = StageChange(
        flow_id, definition.process, definition.version, record_id, "start", None, stage.id,
        stage.phase, at, _name(actor),
    )
    field = definition.pipeline_field
    return Change(
        "start", None, state, entry, None, first,
        ((field, stage.phase),) if field is not None else (),
        (), True, (), first.on_enter,
    )


def enter(
    compiled: CompiledProcess,
    state: FlowRow,
    kind: str,
    target_id: str,
    record_id: str,
    new_records: tuple[tuple[str, str], ...],
    at: datetime,
    actor: Any,
) -> Change:
    """A stage change (next, previous, set_active) into ``target_id``, on the record
    ``record_id`` of the target's entity (``new_records`` when the flow spans it from now)."""
    definition = compiled.definition
    source = compiled.stages[state.stage]
    target = compiled.stages[target_id]
    stage = target.stage
    traversed = state.traversed
    traversed = (
        (*traversed, target_id) if kind == "next"
        else traversed[: traversed.index(target_id) + 1]
    )
    after = _new(FlowRow, (
        state.id, state.process, state.version,
        (*state.records, *new_records) if new_records else state.records,
        target_id, at, traversed, state.status, state.started_at, state.completed_at,
        state.outcome, state.revision + 1,
    ))
    entry = _new(StageChange, (
        state.id, definition.process, definition.version, record_id, kind, state.stage,
        target_id, stage.phase, at, None if actor is None else actor.name,
    ))
    field = definition.pipeline_field
    return _new(Change, (
        kind, state, after, entry, source, target,
        ((field, stage.phase),) if field is not None else (),
        new_records, True, source.on_exit, target.on_enter,
    ))


STATUS_OF = {"finish": "finished", "abandon": "aborted", "reactivate": "active"}


def change_status(
    compiled: CompiledProcess,
    state: FlowRow,
    kind: str,
    record_id: str,
    at: datetime,
    actor: Any,
    outcome: str | None = None,
    writes: Mapping[str, Any] | None = None,
) -> Change:
    """A status change (finish, abandon, reactivate) at the flow's stage."""
    definition = compiled.definition
    current = compiled.stages[state.stage]
    status = STATUS_OF[kind]
    after = FlowRow(
        state.id, state.process, state.version, state.records, state.stage,
        state.stage_started_at, state.traversed, status, state.started_at,
        None if status == "active" else at, outcome, state.revision + 1,
    )
    entry = StageChange(
        state.id, definition.process, definition.version, record_id, kind, state.stage,
        state.stage, current.stage.phase, at, _name(actor),
    )
    return Change(
        kind, state, after, entry, current, current, tuple((writes or {}).items()),
        (), False, (), (),
    )


def migrate(
    target: CompiledProcess,
    state: FlowRow,
    source: CompiledStage,
    new_stage: str,
    traversed: tuple[str, ...],
    record_id: str,
    at: datetime,
    actor: Any,
) -> Change:
    """The flow moved onto another version of its process, at ``new_stage`` with the mapped
    ``traversed`` path. Its stage clock keeps running: a migration is not a business move."""
    definition = target.definition
    stage = target.stages[new_stage]
    after = FlowRow(
        state.id, state.process, definition.version, state.records, new_stage,
        state.stage_started_at, traversed, state.status, state.started_at, state.completed_at,
        state.outcome, state.revision + 1,
    )
    entry = StageChange(
        state.id, definition.process, definition.version, record_id, "migrate", state.stage,
        new_stage, stage.stage.phase, at, _name(actor),
    )
    phase_changed = stage.stage.phase != source.stage.phase
    field = definition.pipeline_field
    return Change(
        "migrate", state, after, entry, source, stage,
        ((field, stage.stage.phase),) if phase_changed and field is not None else (),
        (), phase_changed, (), (),
    )


def record_of(records: tuple[tuple[str, str], ...], entity: str) -> str | None:
    """The id of the flow's record of ``entity``, or None while it spans none."""
    for e, rid in records:
        if e == entity:
            return rid
    return None
