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
from bpf.testing._strategies import empty_values, filled_values, invalid_values
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
    _witnesses: ClassVar[dict[tuple[str, str], list[list[dict[str, Any]]]]] = {}

    def teardown(self) -> None:
        if not self.replaying:
            # Steer generation towards examples that reach more of the process.
            target(float(len(self.entered) + len(self.taken) + len(self.reached)),
                   label="distinct stages, branches and outcomes reached")
        self.close()

    # -- drawing -----------------------------------------------------------------------------------

    @staticmethod
    def _choose(data: st.DataObject, options: Sequence[Any]) -> Any:
        # An index, not st.sampled_from(options): integer strategies are cached, and an index
        # keeps its meaning when the shrinker deletes steps.
        if len(options) == 1:  # no choice: no draw (draws are most of an example's cost)
            return options[0]
        return options[data.draw(st.integers(0, len(options) - 1))]

    def _spread(self, data: st.DataObject, options: Sequence[Any]) -> Any:
        """Like `_choose`, offset by how far the example got: Hypothesis favours small
        integers, and the branches and outcomes listed last would be rare."""
        if len(options) == 1:
            return options[0]
        return options[(data.draw(st.integers(0, len(options) - 1)) + len(self.ops))
                       % len(options)]

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

    # Advancing on purpose (the gate filled, a branch's values typed, an outcome chosen) twice
    # as often as any other rule, and back and forth: deep stages, every branch and every
    # outcome are reached, and actions that misbehave on a second entry show.
    @rule(data=st.data())
    def advance(self, data: st.DataObject) -> None:
        self._advance(data, [m for m in self.world.models if m.status == "active"])

    @rule(data=st.data())
    def advance_again(self, data: st.DataObject) -> None:
        self._advance(data, [m for m in self.world.models if m.status == "active"])

    @rule(data=st.data())
    def run_through(self, data: st.DataObject) -> None:
        """Advance one flow several times in a row: the last stages and the outcomes are
        reached early in an example, with steps left to do things there."""
        models = [m for m in self.world.models if m.status == "active"]
        if not models:
            return
        model = self._choose(data, models)
        # Through to the end mostly (Hypothesis favours small integers: count down from it).
        stages = len(model.definition.stages)
        for _ in range(stages + 1 - data.draw(st.integers(0, stages))):
            if model.status != "active":
                break
            self._advance(data, [model])
        # Finished with one outcome: reactivate and finish with one not reached yet. An
        # example reaching every outcome scores higher, and generation builds on it; without
        # this the examples it built on all finished alike, and an outcome could stay out of
        # reach for a whole run (14 finishes, none 'activated', on about 2% of seeds).
        process = model.definition.process
        if model.status == "finished" and any(
                (process, o) not in self.reached for o in model.definition.outcomes):
            self._apply("reactivate", process=process, rid=model.primary,
                        actor=self._actor_order[0])  # one with a role: refusals come elsewhere
            self._advance(data, [model] if model.status == "active" else [])

    @rule(data=st.data())
    def back_and_forth(self, data: st.DataObject) -> None:
        """Previous (or back to an earlier stage), then on again: re-entries."""
        models = [m for m in self.world.models if m.status == "active" and len(m.traversed) > 1]
        if not models:
            return
        model = self._choose(data, models)
        process, actor = model.definition.process, self._actor(data)
        if data.draw(st.integers(0, 3)) > 0:
            self._apply("previous", process=process, rid=model.primary, actor=actor)
        else:
            self._apply("set_active", process=process, rid=model.primary, actor=actor,
                        stage=self._choose(data, model.traversed[:-1]))
        self._advance(data, [model] if model.status == "active" else [])

    def _advance(self, data: st.DataObject, models: list[FlowModel]) -> None:
        """Fill the gate of a flow's active stage and type the values that take one of its
        branches (one not taken yet, mostly), then next; at a last stage, finish with an
        outcome (one not reached yet, mostly). Now and then one required step gets an empty
        or invalid value instead, and the gate refuses."""
        if not models:
            return
        model = self._choose(data, models)
        definition = model.definition
        process = definition.process
        stage = definition.stage(model.stage)
        record = model.records[stage.entity]
        required = [s for s in stage.required_steps if s.field not in self._pipeline_fields]
        values: dict[str, Any] = {}
        # One draw decides the odd cases: 0 re-types the filled steps too, 1 spoils one step,
        # 2 ignores which branches this example took already.
        odd = data.draw(st.integers(0, 11)) if required or len(self._witnesses.get(
            (process, stage.id), ())) > 1 else 11
        for step in required:
            if odd == 0 or not step.is_satisfied(record.get(step.field)):
                values[step.field] = data.draw(filled_values(step))
        options = self._witnesses[process, stage.id]
        usable = [i for i, w in enumerate(options) if w]
        if usable:
            fresh = [i for i in usable if (process, stage.id, i) not in self.taken]
            pool = fresh if fresh and odd != 2 else usable
            values.update(self._spread(data, options[self._spread(data, pool)]))
        if required and odd == 1:
            step = self._choose(data, required)
            values[step.field] = data.draw(st.one_of(empty_values(step), invalid_values(step)))
        if values:
            self._apply("fill", rid=record["id"], values=values)
        if definition.branches(stage.id):
            self._next(data, [model], fill=False)
            return
        outcomes = list(definition.outcomes)
        fresh = [o for o in outcomes if (process, o) not in self.reached]
        pool = fresh if fresh and odd != 2 else [None, *outcomes]
        self._apply("finish", process=process, rid=model.primary,
                    outcome=self._spread(data, pool), actor=self._actor(data))

    def _next(self, data: st.DataObject, models: list[FlowModel], *, fill: bool = True) -> None:
        if not models:
            return
        model = self._choose(data, models)
        stage = model.definition.stage(model.stage)
        rid = model.records[stage.entity]["id"]
        # Three times in four fill the gate and steer the branch first, so that flows get
        # somewhere (and shrink towards not filling).
        if fill and model.status == "active" and data.draw(st.integers(0, 3)) > 0:
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
            for check in self.user_invariants:
                try:
                    check(self)
                except AssertionError as broken:
                    name = getattr(check, "__name__", repr(check))
                    raise Violation("invariant", f"{name}: {broken}".rstrip(": ")) from None
        except Violation as found:
            self._fail(found.property, found.text, as_step=found.as_step)
