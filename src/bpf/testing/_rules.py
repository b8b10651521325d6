"""The Hypothesis rules: each draws the arguments of an operation (which flow, record, actor,
values) and hands it to the driver; one invariant runs the checks after every step.

No rule has a precondition but ``reopen`` (a rule with nothing to do does nothing): the set of
rules a step chooses from then never changes, which lets the shrinker delete steps freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis import target
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bpf.definition.model import Step
from bpf.runtime.flow import Actor
from bpf.testing._driver import Driver
from bpf.testing._failure import Violation
from bpf.testing._invariants import check_flow, check_record
from bpf.testing._strategies import filled_values
from bpf.testing._world import FlowModel, branch_taken


class FlowRules(Driver, RuleBasedStateMachine):
    """Rules and checks shared by every `FlowMachine`; subclasses carry the definitions and the
    strategies drawn from them."""

    max_records: ClassVar[int] = 3
    _fields: ClassVar[dict[str, dict[str, st.SearchStrategy[Any]]]] = {}
    _actors: ClassVar[st.SearchStrategy[Actor | None]]
    _some_fields: ClassVar[dict[str, st.SearchStrategy[list[str]]]] = {}
    _edit_order: ClassVar[dict[str, list[str]]] = {}
    _constants: ClassVar[dict[str, list[Any]]] = {}
    _start_entities: ClassVar[tuple[str, ...]] = ()
    _step_of: ClassVar[dict[str, Step]] = {}
    _actor_order: ClassVar[list[Actor | None]] = []

    def teardown(self) -> None:
        if not self.replaying:
            # Steer generation towards examples that reach more of the process.
            target(float(len(self.entered)), label="distinct stages entered")
        self.close()

    # -- drawing -----------------------------------------------------------------------------------

    @staticmethod
    def _choose(data: st.DataObject, options: Sequence[Any]) -> Any:
        # An index, not st.sampled_from(options): integer strategies are cached, and an index
        # keeps its meaning when the shrinker deletes steps.
        return options[data.draw(st.integers(0, len(options) - 1))]

    def _actor(self, data: st.DataObject) -> Actor | None:
        return data.draw(self._actors)

    def _draw_fields(self, data: st.DataObject, entity: str) -> dict[str, Any]:
        # A few fields at most: the rest arrive by edits, which read (and shrink) better.
        strategies = self._fields.get(entity, {})
        if not strategies:
            return {}
        return {f: data.draw(strategies[f]) for f in data.draw(self._some_fields[entity])}

    def _draw_fill(self, data: st.DataObject, model: FlowModel) -> dict[str, Any]:
        """Values for every missing required step of the flow's active stage."""
        stage = model.definition.stage(model.stage)
        record = model.records[stage.entity]
        values: dict[str, Any] = {}
        for step in stage.required_steps:
            if step.field in self._pipeline_fields or step.is_satisfied(record.get(step.field)):
                continue
            # Half the time a field a branch reads gets one of the constants it is compared
            # with, so that each branch is taken.
            constants = [c for c in self._constants.get(step.field, ()) if step.is_satisfied(c)]
            if constants and data.draw(st.booleans()):
                values[step.field] = self._choose(data, constants)
            else:
                values[step.field] = data.draw(filled_values(step))
        return values

    def _draw_steer(self, data: st.DataObject, model: FlowModel) -> tuple[str, Any] | None:
        """A field the branches of the flow's active stage read, and a constant they compare it
        with: random edits rarely land on the side of a threshold that matters, just when it
        matters."""
        stage = model.definition.stage(model.stage)
        fields = sorted({
            f for b in model.definition.branches(stage.id) if b.when is not None
            for f in b.when.fields if self._constants.get(f)
        })
        if not fields:
            return None
        field = self._choose(data, fields)
        return field, self._choose(data, self._constants[field])

    # -- records -----------------------------------------------------------------------------------

    @initialize(data=st.data())
    def first_flow(self, data: st.DataObject) -> None:
        """Every example begins with a record and a flow of the process on it."""
        definition = self.definitions[0]
        entity = definition.first_stage.entity
        rid = self._new_id(entity)
        self._apply("record", rid=rid, entity=entity, fields=self._draw_fields(data, entity))
        self._apply("start", process=definition.process, rid=rid, actor=self._actor(data))

    @rule(data=st.data())
    def add_record(self, data: st.DataObject) -> None:
        if len(self.world.records) >= self.max_records:
            return
        entity = self._choose(data, self._start_entities)
        rid = self._new_id(entity)
        self._apply("record", rid=rid, entity=entity, fields=self._draw_fields(data, entity))

    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        entity_of = self.world.entity_of
        editable = [r for r in self.world.records if self._fields.get(entity_of[r["id"]])]
        if not editable:
            return
        record = self._choose(data, editable)
        entity = entity_of[record["id"]]
        field = self._choose(data, self._edit_order[entity])
        self._apply("edit", rid=record["id"], field=field,
                    value=data.draw(self._fields[entity][field]))

    # -- flows -------------------------------------------------------------------------------------

    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        """Start a process on a record of its entity that has no flow of it yet."""
        world = self.world
        definition = self._choose(data, self.definitions)
        entity = definition.first_stage.entity
        running = {r["id"] for m in world.models if m.definition is definition
                   for r in m.records.values()}
        free = [r for r in world.records if world.entity_of[r["id"]] == entity
                and r["id"] not in running]
        if free:
            rid = self._choose(data, free)["id"]
        elif len(world.records) < self.max_records:
            rid = self._new_id(entity)
            self._apply("record", rid=rid, entity=entity, fields=self._draw_fields(data, entity))
        else:
            return
        self._apply("start", process=definition.process, rid=rid, actor=self._actor(data))

    @rule(data=st.data())
    def start_again(self, data: st.DataObject) -> None:
        """Start a process on a record that already has a flow of it."""
        if self.world.models:
            model = self._choose(data, self.world.models)
            self._apply("start", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    @rule(data=st.data())
    def next(self, data: st.DataObject) -> None:
        self._next(data, self.world.models)

    # A flow gets through a process only by many nexts: more weight, on active flows mostly.
    @rule(data=st.data())
    def next_active(self, data: st.DataObject) -> None:
        self._next(data, [m for m in self.world.models if m.status == "active"])

    @rule(data=st.data())
    def next_active_again(self, data: st.DataObject) -> None:
        self._next(data, [m for m in self.world.models if m.status == "active"])

    @rule(data=st.data())
    def next_active_once_more(self, data: st.DataObject) -> None:
        self._next(data, [m for m in self.world.models if m.status == "active"])

    def _next(self, data: st.DataObject, models: list[FlowModel]) -> None:
        if not models:
            return
        model = self._choose(data, models)
        stage = model.definition.stage(model.stage)
        rid = model.records[stage.entity]["id"]
        # Three times in four fill the gate and steer the branch first, so that flows get
        # somewhere (and shrink towards not filling).
        if model.status == "active" and data.draw(st.integers(0, 3)) > 0:
            values = self._draw_fill(data, model)
            if values:
                self._apply("fill", rid=rid, values=values)
            steer = self._draw_steer(data, model)
            if steer is not None:
                self._apply("edit", rid=rid, field=steer[0], value=steer[1])
        actor = self._actor(data)
        extra: dict[str, Any] = {}
        taken = branch_taken(model.definition, stage.id, model.records[stage.entity].get)
        entity = model.definition.stage(taken.stage).entity if taken else None
        if entity is not None and entity not in model.records:
            world = self.world
            existing = [r["id"] for r in world.records if world.entity_of[r["id"]] == entity]
            choice = self._choose(data, ["new", "none", *existing])
            if choice == "new":
                extra["new_rid"] = self._new_id(entity)
                extra["new_fields"] = self._draw_fields(data, entity)
            elif choice != "none":
                extra["existing"] = choice
        self._apply("next", process=model.definition.process, rid=model.primary, actor=actor,
                    **extra)

    @rule(data=st.data())
    def previous(self, data: st.DataObject) -> None:
        if self.world.models:
            model = self._choose(data, self.world.models)
            self._apply("previous", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    @rule(data=st.data())
    def set_active(self, data: st.DataObject) -> None:
        if self.world.models:
            model = self._choose(data, self.world.models)
            actor = self._actor(data)
            stage_ids = [s.id for s in model.definition.stages]
            self._apply("set_active", process=model.definition.process, rid=model.primary,
                        stage=self._choose(data, [*stage_ids, "no-such-stage"]), actor=actor)

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        if self.world.models:
            model = self._choose(data, self.world.models)
            actor = self._actor(data)
            outcomes = [None, *model.definition.outcomes, "no-such-outcome"]
            self._apply("finish", process=model.definition.process, rid=model.primary,
                        outcome=self._choose(data, outcomes), actor=actor)

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        if self.world.models:
            model = self._choose(data, self.world.models)
            self._apply("abandon", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    @rule(data=st.data())
    def reactivate(self, data: st.DataObject) -> None:
        if self.world.models:
            model = self._choose(data, self.world.models)
            self._apply("reactivate", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    @precondition(lambda self: self.store_kind != "memory")
    @rule()
    def reopen(self) -> None:
        """A new engine on the same store must see what this one wrote."""
        self._apply("reopen")

    # -- the checks after every step ---------------------------------------------------------------

    @invariant()
    def behaves(self) -> None:
        try:
            for model in self.world.models:
                check_flow(model)
            for record in self.world.records:
                check_record(self.world, self.engine, record)
        except Violation as found:
            self._fail(found.property, found.text, as_step=found.as_step)
