"""The driver: applies operations to real flows, checks each outcome against the world, and logs
it as a readable step.

An operation is plain data, a kind and keyword arguments (records named by id, flows by process
and record id), so a fresh driver can replay it without Hypothesis: the rules draw operations,
`minimize` replays variants of a failing run's. Each ``_do_<kind>`` appends one line to
``steps``, asks the world what the definition says, calls the engine through its public API
and books what succeeded.
"""

from __future__ import annotations

import contextlib
import copy
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, ClassVar

import attrs

from bpf._errors import BpfError, Reason, StageGateError
from bpf.definition.model import ProcessDefinition, Stage, Step
from bpf.runtime.engine import Engine
from bpf.runtime.flow import Actor, Flow
from bpf.testing._engines import example_store, open_engine
from bpf.testing._expected import Attempt, Refuses
from bpf.testing._failure import ProcessCheckFailed, Violation
from bpf.testing._invariants import difference, reopened, snapshot
from bpf.testing._strategies import show_actor, show_record, show_value
from bpf.testing._world import (
    FlowModel,
    Refusal,
    Unreplayable,
    World,
    exists,
    finish_refusals,
    missing_steps,
    move_refusals,
    next_move,
    previous_refusals,
    reactivate_refusals,
    refusal_reason,
    set_active_refusals,
)


@attrs.define
class Stats:
    """What the runs of one machine class exercised."""

    examples: int = 0
    steps: int = 0
    #: how many times each (process, stage) was entered
    stages: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    #: how many times each (process, stage, branch index) was taken by a next
    branches: Counter[tuple[str, str, int]] = attrs.field(factory=Counter)
    #: how many flows finished with each (process, outcome); outcome None: finished without
    outcomes: Counter[tuple[str, str | None]] = attrs.field(factory=Counter)
    results: Counter[str] = attrs.field(factory=Counter)


#: What `Driver._attempt` returns for a refused operation.
REFUSED = object()


class Driver:
    """One example's engine, world and steps; the class attributes are set by `FlowMachine`."""

    definitions: ClassVar[tuple[ProcessDefinition, ...]] = ()
    store_kind: ClassVar[str] = "memory"
    engine_factory: ClassVar[Callable[..., Engine] | None] = None
    stats: ClassVar[Stats]
    #: the refusals the user's engine makes on purpose (check_process's expect_refusals)
    expected: ClassVar[tuple[Refuses, ...]] = ()
    #: the user's own invariants: functions of the machine, called after every step
    user_invariants: ClassVar[tuple[Callable[[Any], None], ...]] = ()
    _pipeline_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.stats.examples += 1
        self.steps: list[str] = []
        #: every operation applied, (kind, keyword arguments), for replays
        self.ops: list[tuple[str, dict[str, Any]]] = []
        self.replaying = False
        self.world = World()
        self.counter: Counter[str] = Counter()
        #: the (process, stage) pairs this example entered
        self.entered: set[tuple[str, str]] = set()
        #: the (process, stage, branch index) this example took, and the (process, outcome)
        #: it finished with: what the rules steer towards has to depend on the example alone
        #: (Hypothesis replays choices and expects the same draws)
        self.taken: set[tuple[str, str, int]] = set()
        self.reached: set[tuple[str, str | None]] = set()
        self._url, self._remove_store = example_store(self.store_kind)
        #: the engine the example runs on (public, for your invariants)
        self.engine = self._new_engine()

    # -- plumbing ----------------------------------------------------------------------------------

    # -- what invariants of your own read ------------------------------------------------------

    @property
    def records(self) -> list[dict[str, Any]]:
        """The example's records as the user holds them (dicts with an ``id``), in order of
        creation; the flows' fields and the pipeline fields the engine wrote are in them."""
        return self.world.records

    @property
    def flows(self) -> list[Flow]:
        """The engine's flows of the example (`bpf.Flow`, read-only), in order of start."""
        return [m.flow for m in self.world.models]

    def _new_engine(self) -> Engine:
        return open_engine(type(self).engine_factory, self._url, self.definitions)

    def close(self) -> None:
        """Close the engine and remove the example's database, if any."""
        with contextlib.suppress(Exception):
            self.engine.close()
        with contextlib.suppress(Exception):  # a schema left behind is no test failure
            self._remove_store()

    def _fail(self, prop: str, text: str, *, as_step: bool = False) -> None:
        main = self.definitions[0]
        steps = list(self.steps)
        if as_step and steps:
            steps[-1] = text
            violation = None
        else:
            violation = text
        failure = ProcessCheckFailed(main.process, steps, violation, prop, main.source)
        failure.ops = list(self.ops)
        raise failure

    def _step(self, line: str) -> None:
        self.stats.steps += 1
        self.steps.append(line)

    def _apply(self, kind: str, **kwargs: Any) -> None:
        """Apply one operation; a violation it shows fails the run with the steps so far."""
        self.ops.append((kind, kwargs))
        try:
            getattr(self, f"_do_{kind}")(**kwargs)
        except Violation as found:
            self._fail(found.property, found.text, as_step=found.as_step)

    def _new_id(self, entity: str) -> str:
        self.counter[entity] += 1
        return f"{entity}-{self.counter[entity]}"

    def _intended(self, kind: str, process: str, record: Mapping[str, Any],
                  actor: Actor | None, flow: Flow | None = None, *, stage: str | None = None,
                  outcome: str | None = None) -> list[Refusal]:
        """The refusals the user declared for this attempt (`Refuses`)."""
        if not self.expected:
            return []
        attempt = Attempt(kind, process, MappingProxyType(dict(record)), actor, flow,
                          stage, outcome)
        return [Refusal(r.reason, r.why, "expected") for r in self.expected
                if r.applies(attempt)]

    def _stage_changed(self, model: FlowModel, stage: Stage, record: Mapping[str, Any],
                       kind: str) -> None:
        """Book a successful stage change into ``stage`` on ``record``."""
        self.world.stage_changed(model, stage, record, kind)
        process = model.definition.process
        self.stats.stages[process, stage.id] += 1
        self.entered.add((process, stage.id))

    def _attempt(
        self,
        kind: str,
        call: Callable[[], Any],
        refusals: list[Refusal],
        done: Callable[[Any], str],
        *,
        missing: Iterable[Step] = (),
        soft: Iterable[str] = (),
    ) -> Any:
        """Run ``call``; check it was refused exactly when ``refusals`` say so, for one of their
        reasons, and that a refusal changed nothing. Returns the result or `REFUSED`.

        Refusal reasons in ``soft`` may also end in success (the engine may know a way the
        definition leaves open, e.g. a record factory)."""
        line = self.steps[-1]
        # Only an expected refusal is compared with the state before it: any other outcome fails
        # (or passes) without it, and a snapshot costs as much as the operation.
        before = snapshot(self.world, self.engine) if refusals else None
        try:
            result = call()
        except BpfError as exc:
            reason = refusal_reason(exc)
            self.stats.results[f"{kind} refused: {reason}"] += 1
            self.steps[-1] = f"{line} → refused ({reason})"
            if not refusals:
                hint = ""
                if reason == Reason.CANCEL:
                    hint = ("; if your hook refuses it on purpose, tell the check: "
                            f"expect_refusals=[Refuses({str(reason)!r}, when=...)]")
                raise Violation("allowed", f"{line} → refused ({type(exc).__name__}: {exc}) "
                                f"although the definition allows it{hint}",
                                as_step=True) from None
            if reason not in {r.reason for r in refusals}:
                expected = "; ".join(r.why for r in refusals)
                raise Violation(
                    "allowed",
                    f"{line} → refused ({reason}: {exc}), but the definition refuses it "
                    f"because {expected}",
                    as_step=True,
                ) from None
            if reason == Reason.GATE and isinstance(exc, StageGateError):
                got = sorted(s.field for s in exc.missing)
                want = sorted(s.field for s in missing)
                if got != want:
                    raise Violation(
                        "gate",
                        f"{line} → refused, naming {', '.join(got)} as missing; the missing "
                        f"required steps are {', '.join(want)}",
                        as_step=True,
                    ) from None
            assert before is not None
            changed = difference(before, snapshot(self.world, self.engine))
            if changed:
                raise Violation("refusal", f"{line} → refused ({reason}), yet {changed}",
                                as_step=True) from None
            return REFUSED
        except Exception as exc:
            self.steps[-1] = f"{line} → raised {type(exc).__name__}: {exc}"
            raise Violation("errors", self.steps[-1], as_step=True) from None
        self.stats.results[f"{kind} succeeded"] += 1
        hard = [r for r in refusals if r.reason not in set(soft)]
        if hard:
            raise Violation(hard[0].property, f"{line} → {done(result)} although {hard[0].why}",
                            as_step=True)
        self.steps[-1] = f"{line} → {done(result)}"
        return result

    def _expect_stage(self, model: FlowModel, target: str, prop: str, detail: str = "") -> None:
        actual = model.flow.stage.id
        if actual != target:
            line = self.steps[-1].rsplit(" → ", 1)[0]
            raise Violation(prop, f"{line} → moved to {actual}; the definition says "
                            f"{target}{detail}", as_step=True)

    # -- records -----------------------------------------------------------------------------------

    def _do_record(self, rid: str, entity: str, fields: Mapping[str, Any]) -> None:
        if rid in self.world.entity_of:
            raise Unreplayable(f"record {rid} exists")
        record: dict[str, Any] = {"id": rid, **fields}
        self.world.add_record(record, entity)
        self._step(f"{rid} = {show_record(record)}")

    def _do_edit(self, rid: str, field: str, value: Any) -> None:
        self.world.record(rid)[field] = value
        self._step(f"set {rid}.{field} = {show_value(value)}")

    def _do_fill(self, rid: str, values: Mapping[str, Any]) -> None:
        self.world.record(rid).update(values)
        shown = ", ".join(f"{f} = {show_value(v)}" for f, v in values.items())
        self._step(f"fill {rid}: {shown}")

    # -- flows -------------------------------------------------------------------------------------

    def _do_start(self, process: str, rid: str, actor: Actor | None) -> None:
        definition = next(d for d in self.definitions if d.process == process)
        record = self.world.record(rid)
        if self.world.entity_of[rid] != definition.first_stage.entity:
            raise Unreplayable(f"{rid} is not a {definition.first_stage.entity}")
        self._step(f"start {process} on {rid} as {show_actor(actor)}")
        flow = self._attempt(
            "start",
            lambda: self.engine.start(process, record, actor=actor),
            [*self.world.start_refusals(definition, rid, actor),
             *self._intended("start", process, record, actor)],
            lambda f: f"started at {f.stage.id}",
        )
        if flow is REFUSED:
            return
        model = self.world.start(definition, record, flow, actor)
        first = definition.first_stage
        self._expect_stage(model, first.id, "allowed", " (the first stage)")
        self._stage_changed(model, first, record, "start")

    def _do_next(
        self, process: str, rid: str, actor: Actor | None, new_rid: str | None = None,
        new_fields: Mapping[str, Any] | None = None, existing: str | None = None,
    ) -> None:
        world = self.world
        model = world.flow(process, rid)
        record = model.records[model.definition.stage(model.stage).entity]
        seen = copy.deepcopy(record)  # the record as it is at the moment of the move
        move = next_move(model, actor, seen)
        refusals = move.refusals
        line = f"{model.label}: next as {show_actor(actor)}"
        given: dict[str, Any] | None = None
        soft: list[str] = []
        if move.needs_record:
            assert move.target_entity is not None
            if new_rid is not None and new_rid not in world.entity_of:
                given = {"id": new_rid, **(new_fields or {})}
                world.add_record(given, move.target_entity)
                line += f" with new {new_rid} {show_record(given)}"
            elif existing is not None and world.entity_of.get(existing) == move.target_entity:
                given = world.record(existing)
                line += f" with {existing}"
                if world.has_flow(process, existing):
                    refusals.append(exists(process, existing))
            else:
                refusals.append(move.without_record())
                soft.append(Reason.ENTITY)  # an engine.record_factory may supply one
        refusals += self._intended("next", process, seen, actor, model.flow)
        self._step(line)
        result = self._attempt(
            "next",
            lambda: model.flow.next(actor=actor, record=given),
            refusals,
            lambda s: f"moved to {model.flow.stage.id}",
            missing=move.missing,
            soft=soft,
        )
        if result is REFUSED:
            if given is not None and new_rid is not None:  # the new record was never used
                world.forget_record(given)
            return
        target, entity = move.target, move.target_entity
        assert target is not None and entity is not None
        self._expect_stage(model, target, "branch" if len(move.branches) > 1 else "allowed",
                           move.why_there(record["id"], seen))
        if given is None and move.needs_record:
            made = model.flow.records.get(entity)
            if made is None:
                raise Violation("entity", f"{line} → moved to {target} without a {entity} "
                                "record", as_step=True)
            given = made
            if made["id"] not in world.entity_of:
                world.add_record(made, entity)
        if given is not None:
            model.records[entity] = given
        target_stage = model.definition.stage(target)
        assert move.taken is not None
        branch = (process, model.stage, move.branches.index(move.taken))
        self.stats.branches[branch] += 1
        self.taken.add(branch)
        model.moved("next", target_stage, actor)
        self._stage_changed(model, target_stage, model.records[entity], "next")

    def _do_previous(self, process: str, rid: str, actor: Actor | None) -> None:
        model = self.world.flow(process, rid)
        self._step(f"{model.label}: previous as {show_actor(actor)}")
        result = self._attempt(
            "previous",
            lambda: model.flow.previous(actor=actor),
            [*previous_refusals(model, actor), *self._intended(
                "previous", process, self._active_record(model), actor, model.flow)],
            lambda s: f"back to {model.flow.stage.id}",
        )
        if result is not REFUSED:
            self._moved_back(model, model.traversed[-2], "previous", actor)

    def _do_set_active(self, process: str, rid: str, stage: str, actor: Actor | None) -> None:
        model = self.world.flow(process, rid)
        self._step(f"{model.label}: set_active {stage} as {show_actor(actor)}")
        result = self._attempt(
            "set_active",
            lambda: model.flow.set_active(stage, actor=actor),
            [*set_active_refusals(model, stage, actor), *self._intended(
                "set_active", process, self._active_record(model), actor, model.flow,
                stage=stage)],
            lambda s: f"{model.flow.stage.id} active",
        )
        if result is not REFUSED:
            self._moved_back(model, stage, "set_active", actor)

    @staticmethod
    def _active_record(model: FlowModel) -> dict[str, Any]:
        return model.records[model.definition.stage(model.stage).entity]

    def _moved_back(self, model: FlowModel, target: str, kind: str, actor: Actor | None) -> None:
        self._expect_stage(model, target, "path", " (back along the traversed path)")
        stage = model.definition.stage(target)
        model.moved(kind, stage, actor)
        self._stage_changed(model, stage, model.records[stage.entity], kind)

    def _do_finish(self, process: str, rid: str, outcome: str | None,
                   actor: Actor | None) -> None:
        model = self.world.flow(process, rid)
        definition = model.definition
        named = f" {outcome}" if outcome else ""
        self._step(f"{model.label}: finish{named} as {show_actor(actor)}")
        stage = definition.stage(model.stage)
        record = model.records[stage.entity]
        missing = missing_steps(stage, record)
        result = self._attempt(
            "finish",
            lambda: model.flow.finish(outcome, actor=actor),
            [*finish_refusals(model, outcome, actor, missing), *self._intended(
                "finish", process, record, actor, model.flow, outcome=outcome)],
            lambda _: f"finished at {model.flow.stage.id}",
            missing=missing,
        )
        if result is REFUSED:
            return
        if outcome is not None:
            for field, value in definition.outcomes[outcome].set.items():
                if record.get(field) != value:
                    raise Violation(
                        "outcomes",
                        f"finished {outcome} but {record['id']}.{field} is "
                        f"{show_value(record.get(field))}, not {show_value(value)}",
                    )
                if field in self._pipeline_fields:
                    self.world.field_written(record["id"], field, value)
        self.stats.outcomes[process, outcome] += 1
        self.reached.add((process, outcome))
        self._status(model, "finish", "finished", outcome, actor)

    def _do_abandon(self, process: str, rid: str, actor: Actor | None) -> None:
        model = self.world.flow(process, rid)
        self._step(f"{model.label}: abandon as {show_actor(actor)}")
        result = self._attempt("abandon", lambda: model.flow.abandon(actor=actor),
                               [*move_refusals(model, actor), *self._intended(
                                   "abandon", process, self._active_record(model), actor,
                                   model.flow)],
                               lambda _: "aborted")
        if result is not REFUSED:
            self._status(model, "abandon", "aborted", None, actor)

    def _do_reactivate(self, process: str, rid: str, actor: Actor | None) -> None:
        model = self.world.flow(process, rid)
        self._step(f"{model.label}: reactivate as {show_actor(actor)}")
        result = self._attempt("reactivate", lambda: model.flow.reactivate(actor=actor),
                               [*reactivate_refusals(model, actor), *self._intended(
                                   "reactivate", process, self._active_record(model), actor,
                                   model.flow)],
                               lambda _: "active again")
        if result is not REFUSED:
            self._status(model, "reactivate", "active", None, actor)

    def _status(self, model: FlowModel, kind: str, status: str, outcome: str | None,
                actor: Actor | None) -> None:
        flow = model.flow
        if flow.status != status or flow.outcome != outcome or flow.stage.id != model.stage:
            raise Violation(
                "allowed",
                f"after {kind} {model.label} is {flow.status} at {flow.stage.id} "
                f"(outcome {flow.outcome!r}); expected {status} at {model.stage} "
                f"(outcome {outcome!r})",
            )
        model.status_changed(kind, status, outcome, actor)

    def _do_reopen(self) -> None:
        if self.store_kind == "memory":
            raise Unreplayable("reopen needs a store")
        self._step("open the store in a new engine")
        new = self._new_engine()
        try:
            found = reopened(self.world, self.engine, new)
        except BaseException:
            new.close()
            raise
        for model, flow in zip(self.world.models, found, strict=True):
            model.flow = flow
        self.engine.close()
        self.engine = new
        self.stats.results["reopen succeeded"] += 1
