"""The oracle: what the definition says should happen, decided from the definition alone.

The world keeps the records as the user holds them and, for every flow, what it should be: the
stage, the traversed path, the status, the history. For every operation it says which refusals
the definition calls for (a `bpf.Reason`, the sentence why, the property a success would
break), where a move should lead, and what each record's last stage change and pipeline field
should be. It never asks the engine: the engine's own helpers (``missing()``, its compiled
branches) could not vouch for themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs

from bpf._errors import BpfError, FlowError, Reason, UnknownStageError
from bpf.definition.model import Branch, ProcessDefinition, Stage, Step
from bpf.runtime.flow import Actor, Flow
from bpf.testing._strategies import show_record, show_value

#: The refusal of set_active to a stage the process does not have: `bpf.UnknownStageError` is a
#: lookup error, not a refused move, so it has no `bpf.Reason`.
UNKNOWN_STAGE = "unknown"


def refusal_reason(exc: BpfError) -> str:
    """The reason a refusal is reported with: the `bpf.Reason` of a refused operation,
    `UNKNOWN_STAGE` for an unknown stage, else the class of the error."""
    if isinstance(exc, FlowError):
        return exc.reason
    if isinstance(exc, UnknownStageError):
        return UNKNOWN_STAGE
    return type(exc).__name__


class Refusal(NamedTuple):
    """A refusal the definition calls for."""

    #: a `bpf.Reason`, or `UNKNOWN_STAGE`
    reason: str
    #: why, in the words of the process
    why: str
    #: the property broken if the operation succeeds all the same
    property: str


class Unreplayable(Exception):
    """A replayed operation refers to something an earlier deleted operation made."""


def name(actor: Actor | None) -> str | None:
    return None if actor is None else actor.name


@attrs.define(eq=False)
class FlowModel:
    """What one flow should be, from its definition and the operations that succeeded."""

    definition: ProcessDefinition
    label: str
    #: the id of the record the flow started on
    primary: str
    #: the engine's flow, read by the checks
    flow: Flow
    #: the record of every entity the flow spans, by entity
    records: dict[str, dict[str, Any]]
    stage: str
    traversed: list[str]
    status: str = "active"
    outcome: str | None = None
    #: (kind, from_stage, to_stage, phase, record_id, actor name)
    history: list[tuple[Any, ...]] = attrs.field(factory=list)

    def moved(self, kind: str, target: Stage, actor: Actor | None) -> None:
        """A stage change to ``target`` succeeded: forward (next) or back along the path."""
        source = self.stage
        if kind == "next":
            self.traversed.append(target.id)
        else:
            del self.traversed[self.traversed.index(target.id) + 1:]
        self.stage = target.id
        entered = self.records[target.entity]["id"]
        self.history.append((kind, source, target.id, target.phase, entered, name(actor)))

    def status_changed(self, kind: str, status: str, outcome: str | None,
                       actor: Actor | None) -> None:
        """A finish, abandon or reactivate succeeded."""
        stage = self.definition.stage(self.stage)
        self.status = status
        self.outcome = outcome
        rid = self.records[stage.entity]["id"]
        self.history.append((kind, stage.id, stage.id, stage.phase, rid, name(actor)))


class World:
    """The records as the user holds them, the flows on them, and what each record should show."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.entity_of: dict[str, str] = {}
        self.models: list[FlowModel] = []
        #: record id -> (flow id, process, kind, to_stage, phase) of its last stage change
        self.last: dict[str, tuple[Any, ...]] = {}
        #: record id -> {pipeline field: expected value}
        self.pipeline: dict[str, dict[str, Any]] = {}

    def record(self, rid: str) -> dict[str, Any]:
        for record in self.records:
            if record["id"] == rid:
                return record
        raise Unreplayable(f"no record {rid}")

    def flow(self, process: str, rid: str) -> FlowModel:
        for model in self.models:
            if model.definition.process == process and model.primary == rid:
                return model
        raise Unreplayable(f"no {process} flow on {rid}")

    def add_record(self, record: dict[str, Any], entity: str) -> None:
        self.records.append(record)
        self.entity_of[record["id"]] = entity

    def forget_record(self, record: dict[str, Any]) -> None:
        self.records.remove(record)
        del self.entity_of[record["id"]]

    def spans(self, model: FlowModel, rid: str) -> bool:
        return any(r["id"] == rid for r in model.records.values())

    def processes_on(self, rid: str) -> list[str]:
        """The processes with a flow spanning the record, sorted."""
        return sorted(m.definition.process for m in self.models if self.spans(m, rid))

    def start(self, definition: ProcessDefinition, record: dict[str, Any], flow: Flow,
              actor: Actor | None) -> FlowModel:
        """A start succeeded: the new flow is at the first stage."""
        first = definition.first_stage
        rid = record["id"]
        model = FlowModel(definition, f"{definition.process} on {rid}", rid, flow,
                          {first.entity: record}, first.id, [first.id])
        model.history.append(("start", None, first.id, first.phase, rid, name(actor)))
        self.models.append(model)
        return model

    def stage_changed(self, model: FlowModel, stage: Stage, record: Mapping[str, Any],
                      kind: str) -> None:
        """``model`` entered ``stage`` on ``record``: it is the record's last stage change, and
        its pipeline field holds the stage's phase."""
        definition = model.definition
        rid = record["id"]
        self.last[rid] = (model.flow.id, definition.process, kind, stage.id, stage.phase)
        if definition.pipeline_field is not None:
            self.pipeline.setdefault(rid, {})[definition.pipeline_field] = stage.phase

    def field_written(self, rid: str, field: str, value: Any) -> None:
        """An outcome wrote a pipeline field: it holds that value until the next stage change."""
        self.pipeline.setdefault(rid, {})[field] = value

    # -- what the definition refuses ---------------------------------------------------------------

    def has_flow(self, process: str, rid: str) -> bool:
        """Whether a flow of ``process`` spans the record (one flow per process and record)."""
        return any(m.definition.process == process and self.spans(m, rid) for m in self.models)

    def start_refusals(self, definition: ProcessDefinition, rid: str,
                       actor: Actor | None) -> list[Refusal]:
        refusals = role_refusals(definition, actor)
        if self.has_flow(definition.process, rid):
            refusals.append(exists(definition.process, rid))
        return refusals


def allowed(definition: ProcessDefinition, actor: Actor | None) -> bool:
    """Whether ``actor`` may start and move flows of ``definition``."""
    if not definition.roles:
        return True
    return actor is not None and not actor.roles.isdisjoint(definition.roles)


def role_refusals(definition: ProcessDefinition, actor: Actor | None) -> list[Refusal]:
    if allowed(definition, actor):
        return []
    roles = ", ".join(definition.roles)
    if actor is None:
        why = f"no actor was given and the process needs one of the roles {roles}"
    else:
        why = f"{actor.name} holds none of the roles {roles}"
    return [Refusal(Reason.ROLE, why, "roles")]


def exists(process: str, rid: str) -> Refusal:
    """The refusal of a second flow of ``process`` on the record, started or moved into it."""
    return Refusal(Reason.EXISTS, f"{rid} already has a {process} flow", "one-flow")


def move_refusals(model: FlowModel, actor: Actor | None) -> list[Refusal]:
    """The refusals of any operation on an existing flow but reactivate."""
    refusals = []
    if model.status != "active":
        refusals.append(Refusal(Reason.STATUS, f"the flow is {model.status}", "status"))
    return refusals + role_refusals(model.definition, actor)


def missing_steps(stage: Stage, record: Mapping[str, Any]) -> list[Step]:
    """The gate: the required steps of ``stage`` the record does not fill."""
    return [s for s in stage.required_steps if not s.is_satisfied(record.get(s.field))]


def gate_refusal(missing: Sequence[Step], record: Mapping[str, Any]) -> Refusal:
    why = " and ".join(why_missing(s, record) for s in missing)
    return Refusal(Reason.GATE, why, "gate")


def why_missing(step: Step, record: Mapping[str, Any]) -> str:
    value = record.get(step.field)
    if step.type == "boolean":
        if value is None:
            return f"{step.field} is not marked complete"
        return f"{step.field} is {show_value(value)}, not True"
    if value is None:
        return f"{step.field} is empty"
    return f"{step.field} is {show_value(value)}, which counts as empty"


def branch_taken(definition: ProcessDefinition, stage_id: str,
                 get: Callable[[str], Any]) -> Branch | None:
    """The first branch after ``stage_id`` whose condition holds on the record read by ``get``."""
    for branch in definition.branches(stage_id):
        if branch.when is None or branch.when.evaluate(get):
            return branch
    return None


class NextMove(NamedTuple):
    """What the definition says of a next, from the record as it is at the moment of the move."""

    refusals: list[Refusal]
    #: the required steps of the active stage not filled
    missing: list[Step]
    branches: tuple[Branch, ...]
    #: the branch taken, and the stage and entity it leads to (None when there is none)
    taken: Branch | None
    target: str | None
    target_entity: str | None
    #: the next stage is on an entity the flow has no record of yet
    needs_record: bool

    def without_record(self) -> Refusal:
        """The refusal when the move needs a record and none was given."""
        return Refusal(
            Reason.ENTITY, f"{self.target} is on {self.target_entity} and no "
            f"{self.target_entity} record was given", "entity",
        )

    def why_there(self, rid: str, seen: Mapping[str, Any]) -> str:
        """Why the target is where the move should lead (for a wrong stage's message)."""
        if self.taken is not None and self.taken.when is not None:
            return f" (the first branch whose condition holds: {self.taken.when})"
        if len(self.branches) > 1:
            return f" (the default: no condition before it holds on {rid} {show_record(seen)})"
        return ""


def next_move(model: FlowModel, actor: Actor | None, seen: Mapping[str, Any]) -> NextMove:
    """What a next of ``model`` by ``actor`` should do, on the record ``seen`` as it is when the
    move is made."""
    definition = model.definition
    stage = definition.stage(model.stage)
    refusals = move_refusals(model, actor)
    missing = missing_steps(stage, seen)
    if missing:
        refusals.append(gate_refusal(missing, seen))
    branches = definition.branches(stage.id)
    taken = branch_taken(definition, stage.id, seen.get)
    target = taken.stage if taken is not None else None
    if not branches:
        refusals.append(Refusal(Reason.END, f"{stage.id} is a last stage", "path"))
    elif target is None:
        refusals.append(Refusal(Reason.BRANCH, f"no branch after {stage.id} holds", "branch"))
    entity = definition.stage(target).entity if target is not None else None
    return NextMove(refusals, missing, branches, taken, target, entity,
                    entity is not None and entity not in model.records)


def previous_refusals(model: FlowModel, actor: Actor | None) -> list[Refusal]:
    refusals = move_refusals(model, actor)
    if len(model.traversed) < 2:
        refusals.append(Refusal(Reason.BEGINNING, f"{model.stage} is the first stage of the "
                                "traversed path", "path"))
    return refusals


def set_active_refusals(model: FlowModel, stage: str, actor: Actor | None) -> list[Refusal]:
    refusals = move_refusals(model, actor)
    if not model.definition.has_stage(stage):
        refusals.append(Refusal(UNKNOWN_STAGE, f"the process has no stage {stage}", "path"))
    elif stage == model.stage:
        refusals.append(Refusal(Reason.ACTIVE, f"{stage} is already active", "path"))
    elif stage not in model.traversed:
        refusals.append(Refusal(Reason.UNREACHABLE, f"{stage} is not on the traversed path "
                                f"{' > '.join(model.traversed)}", "path"))
    return refusals


def finish_refusals(model: FlowModel, outcome: str | None, actor: Actor | None,
                    missing: Sequence[Step]) -> list[Refusal]:
    """``missing``: the required steps of the active stage not filled; they gate finishing at
    a last stage, as they gate leaving any other."""
    definition = model.definition
    refusals = move_refusals(model, actor)
    if not definition.is_last(model.stage):
        refusals.append(Refusal(Reason.END, f"{model.stage} is not a last stage", "status"))
    elif missing:
        record = model.records[definition.stage(model.stage).entity]
        refusals.append(gate_refusal(missing, record))
    if outcome is not None and outcome not in definition.outcomes:
        refusals.append(Refusal(Reason.OUTCOME, f"the process has no outcome {outcome}",
                                "outcomes"))
    return refusals


def reactivate_refusals(model: FlowModel, actor: Actor | None) -> list[Refusal]:
    refusals = role_refusals(model.definition, actor)
    if model.status == "active":
        refusals.append(Refusal(Reason.STATUS, "the flow is already active", "status"))
    return refusals


def predicted_path(model: FlowModel, traversed: Sequence[str]) -> tuple[str, ...]:
    """The active path: ``traversed``, then the stages the records' values lead to."""
    definition = model.definition
    path = list(traversed)
    current = path[-1]
    while True:
        entity = definition.stage(current).entity
        taken = branch_taken(definition, current, model.records.get(entity, {}).get)
        if taken is None or taken.stage in path:
            return tuple(path)
        path.append(taken.stage)
        current = taken.stage
