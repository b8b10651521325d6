"""The stateful machine: real flows driven at random, checked against the definition.

The machine keeps its own model of what every flow should be, computed from the definition
alone: the gate is the stage's required steps read off the record, the next stage is the first
branch whose condition holds on a copy of the record taken before the move, the pipeline phase
of a record is the phase of the last stage change the machine saw succeed on it. The engine's
own helpers (``missing()``, the compiled branches) are never used to decide what is right.

Rules draw their arguments, then apply operations: plain data (a kind and keyword arguments)
that each append one readable line to ``steps``. A violation raises `ProcessCheckFailed` whose
message is those lines, so a counterexample reads as what a user did; `minimize` replays
variants of a failing run's operations on fresh machines to cut it down to what it needs.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import itertools
import os
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar

import attrs
from hypothesis import settings as Settings
from hypothesis import strategies as st
from hypothesis import target
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from bpf._errors import (
    AccessDenied,
    BpfError,
    FlowExistsError,
    FlowNotFoundError,
    PipelineFieldWarning,
    StageGateError,
    TransitionError,
    UnknownStageError,
)
from bpf.definition.model import ProcessDefinition, Stage, Step
from bpf.runtime.engine import Engine
from bpf.runtime.flow import Actor, Flow
from bpf.testing._strategies import (
    actor_pool,
    condition_constants,
    entity_fields,
    filled_values,
    show_actor,
    show_record,
    show_value,
    simplest_filled,
)

#: The properties the machine checks, by the short name a failure reports.
PROPERTIES: Mapping[str, str] = {
    "gate": "a forward move passes a gate only when every required step of the active stage "
    "is filled",
    "branch": "next enters the first branch whose condition holds on the record at the moment "
    "of the move",
    "path": "the active stage is on the active path, and the traversed path is a walk of the "
    "stage graph from the first stage to the active stage",
    "history": "the history records every stage and status change and replays to the flow's "
    "current state",
    "status": "a flow finishes only at a last stage, and does not move while finished or "
    "aborted",
    "pipeline": "the pipeline field holds the phase of the last stage change of any flow on "
    "the record",
    "refusal": "a refused operation changes nothing: flows, records, histories",
    "roles": "only an actor holding one of the process roles starts, moves, finishes, abandons "
    "or reactivates a flow",
    "one-flow": "a record has at most one flow per process, and engine.flows(record) lists them",
    "outcomes": "a flow finishes only with an outcome the process declares, and the outcome "
    "sets its fields",
    "entity": "a stage on another entity is entered only with a record of that entity",
    "store": "a new engine on the same store sees the same flows, histories and stage changes",
    "errors": "operations fail only with bpf.BpfError",
    "allowed": "an operation the definition allows succeeds and does what the definition says",
}


class ProcessCheckFailed(AssertionError):
    """A process did not behave: the message lists the (shrunk) steps and the property broken."""

    def __init__(
        self,
        process: str,
        steps: Sequence[str],
        violation: str | None,
        property: str,
        source: str | None = None,
    ) -> None:
        self.process = process
        #: What was done, one line per operation; the last one may be the violation itself.
        self.steps: tuple[str, ...] = tuple(steps)
        #: What was wrong after the last step (None when the last step itself went wrong).
        self.violation = violation
        #: The short name of the broken property, a key of `PROPERTIES`.
        self.property = property
        self.source = source
        #: the operations of the failing run, replayable by `minimize`
        self.ops: list[tuple[str, dict[str, Any]]] = []
        super().__init__(self.message)

    @property
    def message(self) -> str:
        where = ""
        if self.source and not self.source.startswith("<"):
            where = f" ({_shown_path(self.source)})"
        lines = [f"process {self.process!r}{where} misbehaved; shrunk counterexample:"]
        lines += [f"  {i}. {step}" for i, step in enumerate(self.steps, 1)]
        if self.violation:
            lines.append(f"  then: {self.violation}")
        lines.append(f"property broken ({self.property}): {PROPERTIES.get(self.property, '')}")
        return "\n".join(lines)

    def __reduce__(self) -> Any:
        return (
            type(self),
            (self.process, self.steps, self.violation, self.property, self.source),
        )


def _shown_path(source: str) -> str:
    """A source path relative to the working directory when it is below it."""
    try:
        relative = os.path.relpath(source)
    except ValueError:  # pragma: no cover - another drive on Windows
        return source
    return source if relative.startswith("..") else relative


class _Unreplayable(Exception):
    """A replayed operation refers to something an earlier deleted operation made."""


@attrs.define(eq=False)
class _Model:
    """What one flow should be, from its definition and the operations that succeeded."""

    definition: ProcessDefinition
    label: str
    #: the id of the record the flow started on
    primary: str
    flow: Flow
    #: the record of every entity the flow spans, by entity
    records: dict[str, dict[str, Any]]
    stage: str
    traversed: list[str]
    status: str = "active"
    outcome: str | None = None
    #: (kind, from_stage, to_stage, phase, record_id, actor name)
    history: list[tuple[Any, ...]] = attrs.field(factory=list)


@attrs.define
class Stats:
    """What the runs of one machine class exercised."""

    examples: int = 0
    steps: int = 0
    #: how many times each (process, stage) was entered
    stages: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    results: Counter[str] = attrs.field(factory=Counter)


_REFUSED = object()


def _reason(exc: BpfError) -> str:
    if isinstance(exc, AccessDenied):
        return "role"
    if isinstance(exc, StageGateError):
        return "gate"
    if isinstance(exc, TransitionError):
        return exc.reason
    if isinstance(exc, FlowExistsError):
        return "exists"
    if isinstance(exc, UnknownStageError):
        return "unknown"
    return type(exc).__name__


def _allowed(definition: ProcessDefinition, actor: Actor | None) -> bool:
    if not definition.roles:
        return True
    return actor is not None and not actor.roles.isdisjoint(definition.roles)


def _why_not_allowed(definition: ProcessDefinition, actor: Actor | None) -> str:
    roles = ", ".join(definition.roles)
    if actor is None:
        return f"no actor was given and the process needs one of the roles {roles}"
    return f"{actor.name} holds none of the roles {roles}"


def _why_missing(step: Step, record: Mapping[str, Any]) -> str:
    value = record.get(step.field)
    if step.type == "boolean":
        if value is None:
            return f"{step.field} is not marked complete"
        return f"{step.field} is {show_value(value)}, not True"
    if value is None:
        return f"{step.field} is empty"
    return f"{step.field} is {show_value(value)}, which counts as empty"


def _noop_action(event: Any) -> None:
    """Stands in for a stage action the check's engine does not have."""


def _call_factory(factory: Callable[..., Any], url: str | None) -> Engine:
    if url is None:
        try:
            takes_store = bool(inspect.signature(factory).parameters)
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            takes_store = True
        engine = factory(None) if takes_store else factory()
    else:
        engine = factory(url)
    if not isinstance(engine, Engine):
        raise TypeError(
            f"engine_factory must return a bpf.Engine, got {type(engine).__name__}"
        )
    return engine


class _FlowMachineBase(RuleBasedStateMachine):
    """Rules and checks shared by every `FlowMachine`; subclasses carry the definitions."""

    definitions: ClassVar[tuple[ProcessDefinition, ...]] = ()
    store_kind: ClassVar[str] = "memory"
    engine_factory: ClassVar[Callable[..., Engine] | None] = None
    max_records: ClassVar[int] = 3
    stats: ClassVar[Stats]
    _fields: ClassVar[dict[str, dict[str, st.SearchStrategy[Any]]]] = {}
    _actors: ClassVar[st.SearchStrategy[Actor | None]]
    _some_fields: ClassVar[dict[str, st.SearchStrategy[list[str]]]] = {}
    _edit_order: ClassVar[dict[str, list[str]]] = {}
    _constants: ClassVar[dict[str, list[Any]]] = {}
    _start_entities: ClassVar[tuple[str, ...]] = ()
    _pipeline_fields: ClassVar[frozenset[str]] = frozenset()
    _step_of: ClassVar[dict[str, Step]] = {}
    _actor_order: ClassVar[list[Actor | None]] = []

    def __init__(self) -> None:
        super().__init__()
        self.stats.examples += 1
        self.steps: list[str] = []
        #: every operation applied, (kind, keyword arguments), for replays
        self.ops: list[tuple[str, dict[str, Any]]] = []
        self.replaying = False
        self.records: list[dict[str, Any]] = []
        self.entity_of: dict[str, str] = {}
        self.models: list[_Model] = []
        #: record id -> (flow id, process, kind, to_stage, phase) of its last stage change
        self.last: dict[str, tuple[Any, ...]] = {}
        #: record id -> {pipeline field: expected value}
        self.pipeline: dict[str, dict[str, Any]] = {}
        self.counter: Counter[str] = Counter()
        self.entered: set[tuple[str, str]] = set()
        self._db: str | None = None
        if self.store_kind == "sqlite":
            fd, self._db = tempfile.mkstemp(prefix="bpf-check-", suffix=".db")
            os.close(fd)
        self.engine = self._new_engine()

    # -- plumbing --------------------------------------------------------------------------------

    @property
    def _url(self) -> str | None:
        return None if self._db is None else f"sqlite:///{self._db}"

    def _new_engine(self) -> Engine:
        engine = _call_factory(type(self).engine_factory or Engine, self._url)
        for definition in self.definitions:
            for stage in definition.stages:
                for name in (*stage.on_enter, *stage.on_exit):
                    engine.actions.setdefault(name, _noop_action)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PipelineFieldWarning)
            for definition in self.definitions:
                engine.register(definition)
        return engine

    def teardown(self) -> None:
        if not self.replaying:
            # Steer generation towards examples that reach more of the process.
            target(float(len(self.entered)), label="distinct stages entered")
        with contextlib.suppress(Exception):
            self.engine.close()
        if self._db is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with contextlib.suppress(OSError):
                    os.remove(self._db + suffix)

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

    def _record_changed(self, model: _Model, stage: Stage, record: Mapping[str, Any],
                        kind: str) -> None:
        """Book a successful stage change into ``stage`` on ``record``."""
        definition = model.definition
        rid = record["id"]
        self.last[rid] = (model.flow.id, definition.process, kind, stage.id, stage.phase)
        if definition.pipeline_field is not None:
            self.pipeline.setdefault(rid, {})[definition.pipeline_field] = stage.phase
        self.stats.stages[definition.process, stage.id] += 1
        self.entered.add((definition.process, stage.id))

    def _snapshot(self) -> dict[str, Any]:
        return {
            "records": {r["id"]: dict(r) for r in self.records},
            "flows": {
                m.label: (m.flow.stage.id, m.flow.traversed_path, m.flow.status,
                          m.flow.outcome, m.flow.history)
                for m in self.models
            },
            "last": {r["id"]: self.engine.last_stage_change(r) for r in self.records},
            "lookup": {r["id"]: [f.id for f in self.engine.flows(r)] for r in self.records},
        }

    @staticmethod
    def _difference(before: dict[str, Any], after: dict[str, Any]) -> str | None:
        for rid, old in before["records"].items():
            new = after["records"].get(rid, {})
            for field in sorted(set(old) | set(new)):
                if old.get(field) != new.get(field):
                    return (f"{rid}.{field} changed from {show_value(old.get(field))} "
                            f"to {show_value(new.get(field))}")
        names = ("stage", "traversed path", "status", "outcome", "history")
        for label, old in before["flows"].items():
            new = after["flows"][label]
            for name, a, b in zip(names, old, new, strict=True):
                if a != b:
                    if name == "history":
                        return f"the history of {label} went from {len(a)} to {len(b)} entries"
                    return f"the {name} of {label} changed from {a!r} to {b!r}"
        for rid, old in before["last"].items():
            if after["last"][rid] != old:
                return f"the last stage change on {rid} changed"
        for rid, old in before["lookup"].items():
            if after["lookup"][rid] != old:
                new = after["lookup"][rid]
                return f"engine.flows({rid}) changed from {len(old)} to {len(new)} flows"
        return None

    def _attempt(
        self,
        kind: str,
        call: Callable[[], Any],
        refusals: list[tuple[str, str, str]],
        done: Callable[[Any], str],
        *,
        missing: Iterable[Step] = (),
        soft: Iterable[str] = (),
    ) -> Any:
        """Run ``call``; check it was refused exactly when ``refusals`` (reason, why, property)
        say so, and that a refusal changed nothing. Returns the result or `_REFUSED`.

        Refusal reasons in ``soft`` may also end in success (the engine may know a way the
        definition leaves open, e.g. a record factory)."""
        line = self.steps[-1]
        before = self._snapshot()
        try:
            result = call()
        except BpfError as exc:
            reason = _reason(exc)
            self.stats.results[f"{kind} refused: {reason}"] += 1
            self.steps[-1] = f"{line} → refused ({reason})"
            if not refusals:
                self._fail("allowed", f"{line} → refused ({type(exc).__name__}: {exc}) although "
                           "the definition allows it", as_step=True)
            if reason not in {r for r, _, _ in refusals}:
                expected = "; ".join(why for _, why, _ in refusals)
                self._fail(
                    "allowed",
                    f"{line} → refused ({reason}: {exc}), but the definition refuses it "
                    f"because {expected}",
                    as_step=True,
                )
            if reason == "gate" and isinstance(exc, StageGateError):
                got = sorted(s.field for s in exc.missing)
                want = sorted(s.field for s in missing)
                if got != want:
                    self._fail(
                        "gate",
                        f"{line} → refused, naming {', '.join(got)} as missing; the missing "
                        f"required steps are {', '.join(want)}",
                        as_step=True,
                    )
            changed = self._difference(before, self._snapshot())
            if changed:
                self._fail("refusal", f"{line} → refused ({reason}), yet {changed}",
                           as_step=True)
            return _REFUSED
        except Exception as exc:
            self.steps[-1] = f"{line} → raised {type(exc).__name__}: {exc}"
            self._fail("errors", self.steps[-1], as_step=True)
        self.stats.results[f"{kind} succeeded"] += 1
        hard = [r for r in refusals if r[0] not in set(soft)]
        if hard:
            _, why, prop = hard[0]
            self._fail(prop, f"{line} → {done(result)} although {why}", as_step=True)
        self.steps[-1] = f"{line} → {done(result)}"
        return result

    def _expect_stage(self, model: _Model, target: str, prop: str, detail: str = "") -> None:
        actual = model.flow.stage.id
        if actual != target:
            line = self.steps[-1].rsplit(" → ", 1)[0]
            self._fail(
                prop,
                f"{line} → moved to {actual}; the definition says {target}{detail}",
                as_step=True,
            )

    @staticmethod
    def _choose(data: st.DataObject, options: Sequence[Any]) -> Any:
        # An index, not st.sampled_from(options): integer strategies are cached, and an index
        # keeps its meaning when the shrinker deletes steps.
        return options[data.draw(st.integers(0, len(options) - 1))]

    def _actor(self, data: st.DataObject) -> Actor | None:
        return data.draw(self._actors)

    # -- operations ------------------------------------------------------------------------------
    #
    # A rule draws its arguments, then applies one or more operations: plain data (kind and
    # keyword arguments, records named by id, flows by process and record id) that a fresh
    # machine can replay without Hypothesis. `check_process` replays subsets of a failing run's
    # operations to cut it down further than Hypothesis's shrinker can alone.

    def _apply(self, kind: str, **kwargs: Any) -> None:
        self.ops.append((kind, kwargs))
        getattr(self, f"_do_{kind}")(**kwargs)

    def _record(self, rid: str) -> dict[str, Any]:
        for record in self.records:
            if record["id"] == rid:
                return record
        raise _Unreplayable(f"no record {rid}")

    def _flow(self, process: str, rid: str) -> _Model:
        for model in self.models:
            if model.definition.process == process and model.primary == rid:
                return model
        raise _Unreplayable(f"no {process} flow on {rid}")

    def _new_id(self, entity: str) -> str:
        self.counter[entity] += 1
        return f"{entity}-{self.counter[entity]}"

    def _draw_fields(self, data: st.DataObject, entity: str) -> dict[str, Any]:
        # A few fields at most: the rest arrive by edits, which read (and shrink) better.
        strategies = self._fields.get(entity, {})
        if not strategies:
            return {}
        return {f: data.draw(strategies[f]) for f in data.draw(self._some_fields[entity])}

    def _do_record(self, rid: str, entity: str, fields: Mapping[str, Any]) -> None:
        if rid in self.entity_of:
            raise _Unreplayable(f"record {rid} exists")
        record: dict[str, Any] = {"id": rid, **fields}
        self.records.append(record)
        self.entity_of[rid] = entity
        self._step(f"{rid} = {show_record(record)}")

    def _do_edit(self, rid: str, field: str, value: Any) -> None:
        self._record(rid)[field] = value
        self._step(f"set {rid}.{field} = {show_value(value)}")

    def _do_fill(self, rid: str, values: Mapping[str, Any]) -> None:
        self._record(rid).update(values)
        shown = ", ".join(f"{f} = {show_value(v)}" for f, v in values.items())
        self._step(f"fill {rid}: {shown}")

    # -- rules: records --------------------------------------------------------------------------
    #
    # No rule has a precondition (a rule with nothing to do does nothing): the set of rules a
    # step chooses from then never changes, which lets the shrinker delete steps freely.

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
        if len(self.records) >= self.max_records:
            return
        entity = self._choose(data, self._start_entities)
        rid = self._new_id(entity)
        self._apply("record", rid=rid, entity=entity, fields=self._draw_fields(data, entity))

    @rule(data=st.data())
    def edit(self, data: st.DataObject) -> None:
        editable = [r for r in self.records if self._fields.get(self.entity_of[r["id"]])]
        if not editable:
            return
        record = self._choose(data, editable)
        entity = self.entity_of[record["id"]]
        field = self._choose(data, self._edit_order[entity])
        self._apply("edit", rid=record["id"], field=field,
                    value=data.draw(self._fields[entity][field]))

    def _draw_fill(self, data: st.DataObject, model: _Model) -> dict[str, Any]:
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

    def _draw_steer(self, data: st.DataObject, model: _Model) -> tuple[str, Any] | None:
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

    # -- rules: flows ----------------------------------------------------------------------------

    @rule(data=st.data())
    def start(self, data: st.DataObject) -> None:
        """Start a process on a record of its entity that has no flow of it yet."""
        definition = self._choose(data, self.definitions)
        entity = definition.first_stage.entity
        running = {r["id"] for m in self.models if m.definition is definition
                   for r in m.records.values()}
        free = [r for r in self.records if self.entity_of[r["id"]] == entity
                and r["id"] not in running]
        if free:
            rid = self._choose(data, free)["id"]
        elif len(self.records) < self.max_records:
            rid = self._new_id(entity)
            self._apply("record", rid=rid, entity=entity, fields=self._draw_fields(data, entity))
        else:
            return
        self._apply("start", process=definition.process, rid=rid, actor=self._actor(data))

    @rule(data=st.data())
    def start_again(self, data: st.DataObject) -> None:
        """Start a process on a record that already has a flow of it."""
        if self.models:
            model = self._choose(data, self.models)
            self._apply("start", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    def _do_start(self, process: str, rid: str, actor: Actor | None) -> None:
        definition = next(d for d in self.definitions if d.process == process)
        record = self._record(rid)
        if self.entity_of[rid] != definition.first_stage.entity:
            raise _Unreplayable(f"{rid} is not a {definition.first_stage.entity}")
        first = definition.first_stage
        self._step(f"start {process} on {rid} as {show_actor(actor)}")
        refusals = []
        if not _allowed(definition, actor):
            refusals.append(("role", _why_not_allowed(definition, actor), "roles"))
        for m in self.models:
            if m.definition.process == process and any(
                r["id"] == rid for r in m.records.values()
            ):
                refusals.append(("exists", f"{rid} already has a {process} flow", "one-flow"))
        flow = self._attempt(
            "start",
            lambda: self.engine.start(process, record, actor=actor),
            refusals,
            lambda f: f"started at {f.stage.id}",
        )
        if flow is _REFUSED:
            return
        model = _Model(definition, f"{process} on {rid}", rid, flow, {first.entity: record},
                       first.id, [first.id])
        self.models.append(model)
        self._expect_stage(model, first.id, "allowed", " (the first stage)")
        model.history.append(("start", None, first.id, first.phase, rid, _name(actor)))
        self._record_changed(model, first, record, "start")

    def _common_refusals(
        self, model: _Model, actor: Actor | None
    ) -> list[tuple[str, str, str]]:
        refusals = []
        if model.status != "active":
            refusals.append(("status", f"the flow is {model.status}", "status"))
        if not _allowed(model.definition, actor):
            refusals.append(("role", _why_not_allowed(model.definition, actor), "roles"))
        return refusals

    @rule(data=st.data())
    def next(self, data: st.DataObject) -> None:
        self._next(data, self.models)

    # A flow gets through a process only by many nexts: more weight, on active flows mostly.
    @rule(data=st.data())
    def next_active(self, data: st.DataObject) -> None:
        self._next(data, [m for m in self.models if m.status == "active"])

    @rule(data=st.data())
    def next_active_again(self, data: st.DataObject) -> None:
        self._next(data, [m for m in self.models if m.status == "active"])

    @rule(data=st.data())
    def next_active_once_more(self, data: st.DataObject) -> None:
        self._next(data, [m for m in self.models if m.status == "active"])

    def _next(self, data: st.DataObject, models: list[_Model]) -> None:
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
        target = self._branch_taken(model)
        entity = model.definition.stage(target.stage).entity if target else None
        if entity is not None and entity not in model.records:
            existing = [r["id"] for r in self.records if self.entity_of[r["id"]] == entity]
            choice = self._choose(data, ["new", "none", *existing])
            if choice == "new":
                extra["new_rid"] = self._new_id(entity)
                extra["new_fields"] = self._draw_fields(data, entity)
            elif choice != "none":
                extra["existing"] = choice
        self._apply("next", process=model.definition.process, rid=model.primary, actor=actor,
                    **extra)

    def _branch_taken(self, model: _Model, seen: Mapping[str, Any] | None = None) -> Any:
        """The first branch of the active stage whose condition holds on the record."""
        stage = model.definition.stage(model.stage)
        get = (seen if seen is not None else model.records[stage.entity]).get
        for branch in model.definition.branches(stage.id):
            if branch.when is None or branch.when.evaluate(get):
                return branch
        return None

    def _do_next(
        self, process: str, rid: str, actor: Actor | None, new_rid: str | None = None,
        new_fields: Mapping[str, Any] | None = None, existing: str | None = None,
    ) -> None:
        model = self._flow(process, rid)
        definition = model.definition
        stage = definition.stage(model.stage)
        record = model.records[stage.entity]
        seen = copy.deepcopy(record)  # the record as it is at the moment of the move
        line = f"{model.label}: next as {show_actor(actor)}"
        refusals = self._common_refusals(model, actor)
        missing = [s for s in stage.required_steps if not s.is_satisfied(seen.get(s.field))]
        if missing:
            why = " and ".join(_why_missing(s, seen) for s in missing)
            refusals.append(("gate", why, "gate"))
        branches = definition.branches(stage.id)
        taken = self._branch_taken(model, seen)
        target = taken.stage if taken is not None else None
        if not branches:
            refusals.append(("end", f"{stage.id} is a last stage", "path"))
        elif target is None:
            refusals.append(("branch", f"no branch after {stage.id} holds", "branch"))
        given: dict[str, Any] | None = None
        soft: list[str] = []
        target_entity = definition.stage(target).entity if target else None
        if target is not None and target_entity not in model.records:
            if new_rid is not None and new_rid not in self.entity_of:
                given = {"id": new_rid, **(new_fields or {})}
                self.records.append(given)
                self.entity_of[new_rid] = target_entity
                line += f" with new {new_rid} {show_record(given)}"
            elif existing is not None and self.entity_of.get(existing) == target_entity:
                given = self._record(existing)
                line += f" with {existing}"
            else:
                refusals.append(
                    ("entity", f"{target} is on {target_entity} and no {target_entity} record "
                     "was given", "entity")
                )
                soft.append("entity")  # an engine.record_factory may supply one
        self._step(line)
        result = self._attempt(
            "next",
            lambda: model.flow.next(actor=actor, record=given),
            refusals,
            lambda s: f"moved to {model.flow.stage.id}",
            missing=missing,
            soft=soft,
        )
        if result is _REFUSED:
            if given is not None and new_rid is not None:  # the new record was never used
                self.records.remove(given)
                del self.entity_of[new_rid]
            return
        assert target is not None and target_entity is not None and taken is not None
        if taken.when is not None:
            detail = f" (the first branch whose condition holds: {taken.when})"
        elif len(branches) > 1:
            detail = " (the default: no condition before it holds on " \
                f"{record['id']} {show_record(seen)})"
        else:
            detail = ""
        self._expect_stage(model, target, "branch" if len(branches) > 1 else "allowed", detail)
        if given is None and target_entity not in model.records:
            made = model.flow.records.get(target_entity)
            if made is None:
                self._fail("entity", f"{line} → moved to {target} without a {target_entity} "
                           "record", as_step=True)
            given = made
            if made["id"] not in self.entity_of:
                self.records.append(made)
                self.entity_of[made["id"]] = target_entity
        if given is not None:
            model.records[target_entity] = given
        target_stage = definition.stage(target)
        entered = model.records[target_entity]
        model.stage = target
        model.traversed.append(target)
        model.history.append(("next", stage.id, target, target_stage.phase, entered["id"],
                              _name(actor)))
        self._record_changed(model, target_stage, entered, "next")

    @rule(data=st.data())
    def previous(self, data: st.DataObject) -> None:
        if self.models:
            model = self._choose(data, self.models)
            self._apply("previous", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    def _do_previous(self, process: str, rid: str, actor: Actor | None) -> None:
        model = self._flow(process, rid)
        self._step(f"{model.label}: previous as {show_actor(actor)}")
        refusals = self._common_refusals(model, actor)
        if len(model.traversed) < 2:
            refusals.append(("beginning", f"{model.stage} is the first stage of the traversed "
                             "path", "path"))
        result = self._attempt(
            "previous",
            lambda: model.flow.previous(actor=actor), refusals,
            lambda s: f"back to {model.flow.stage.id}",
        )
        if result is not _REFUSED:
            self._moved_back(model, model.traversed[-2], "previous", actor)

    @rule(data=st.data())
    def set_active(self, data: st.DataObject) -> None:
        if self.models:
            model = self._choose(data, self.models)
            actor = self._actor(data)
            stage_ids = [s.id for s in model.definition.stages]
            self._apply("set_active", process=model.definition.process, rid=model.primary,
                        stage=self._choose(data, [*stage_ids, "no-such-stage"]), actor=actor)

    def _do_set_active(self, process: str, rid: str, stage: str, actor: Actor | None) -> None:
        model = self._flow(process, rid)
        stage_ids = [s.id for s in model.definition.stages]
        self._step(f"{model.label}: set_active {stage} as {show_actor(actor)}")
        refusals = self._common_refusals(model, actor)
        if stage not in stage_ids:
            refusals.append(("unknown", f"the process has no stage {stage}", "path"))
        elif stage == model.stage:
            refusals.append(("active", f"{stage} is already active", "path"))
        elif stage not in model.traversed:
            refusals.append(("unreachable", f"{stage} is not on the traversed path "
                             f"{' > '.join(model.traversed)}", "path"))
        result = self._attempt(
            "set_active",
            lambda: model.flow.set_active(stage, actor=actor), refusals,
            lambda s: f"{model.flow.stage.id} active",
        )
        if result is not _REFUSED:
            self._moved_back(model, stage, "set_active", actor)

    def _moved_back(self, model: _Model, target: str, kind: str, actor: Actor | None) -> None:
        self._expect_stage(model, target, "path", " (back along the traversed path)")
        stage = model.definition.stage(target)
        source = model.stage
        del model.traversed[model.traversed.index(target) + 1:]
        model.stage = target
        entered = model.records[stage.entity]
        model.history.append((kind, source, target, stage.phase, entered["id"], _name(actor)))
        self._record_changed(model, stage, entered, kind)

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        if self.models:
            model = self._choose(data, self.models)
            actor = self._actor(data)
            outcomes = [None, *model.definition.outcomes, "no-such-outcome"]
            self._apply("finish", process=model.definition.process, rid=model.primary,
                        outcome=self._choose(data, outcomes), actor=actor)

    def _do_finish(self, process: str, rid: str, outcome: str | None,
                   actor: Actor | None) -> None:
        model = self._flow(process, rid)
        definition = model.definition
        named = f" {outcome}" if outcome else ""
        self._step(f"{model.label}: finish{named} as {show_actor(actor)}")
        refusals = self._common_refusals(model, actor)
        if not definition.is_last(model.stage):
            refusals.append(("end", f"{model.stage} is not a last stage", "status"))
        if outcome is not None and outcome not in definition.outcomes:
            refusals.append(("outcome", f"the process has no outcome {outcome}", "outcomes"))
        result = self._attempt(
            "finish",
            lambda: model.flow.finish(outcome, actor=actor), refusals,
            lambda _: f"finished at {model.flow.stage.id}",
        )
        if result is _REFUSED:
            return
        stage = definition.stage(model.stage)
        record = model.records[stage.entity]
        if outcome is not None:
            for field, value in definition.outcomes[outcome].set.items():
                if record.get(field) != value:
                    self._fail(
                        "outcomes",
                        f"finished {outcome} but {record['id']}.{field} is "
                        f"{show_value(record.get(field))}, not {show_value(value)}",
                    )
                if field in self._pipeline_fields:
                    self.pipeline.setdefault(record["id"], {})[field] = value
        self._status(model, "finish", "finished", outcome, actor)

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        if self.models:
            model = self._choose(data, self.models)
            self._apply("abandon", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    def _do_abandon(self, process: str, rid: str, actor: Actor | None) -> None:
        model = self._flow(process, rid)
        self._step(f"{model.label}: abandon as {show_actor(actor)}")
        refusals = self._common_refusals(model, actor)
        result = self._attempt("abandon", lambda: model.flow.abandon(actor=actor),
                               refusals, lambda _: "aborted")
        if result is not _REFUSED:
            self._status(model, "abandon", "aborted", None, actor)

    @rule(data=st.data())
    def reactivate(self, data: st.DataObject) -> None:
        if self.models:
            model = self._choose(data, self.models)
            self._apply("reactivate", process=model.definition.process, rid=model.primary,
                        actor=self._actor(data))

    def _do_reactivate(self, process: str, rid: str, actor: Actor | None) -> None:
        model = self._flow(process, rid)
        self._step(f"{model.label}: reactivate as {show_actor(actor)}")
        refusals = []
        if not _allowed(model.definition, actor):
            refusals.append(("role", _why_not_allowed(model.definition, actor), "roles"))
        if model.status == "active":
            refusals.append(("status", "the flow is already active", "status"))
        result = self._attempt("reactivate", lambda: model.flow.reactivate(actor=actor),
                               refusals, lambda _: "active again")
        if result is not _REFUSED:
            self._status(model, "reactivate", "active", None, actor)

    def _status(self, model: _Model, kind: str, status: str, outcome: str | None,
                actor: Actor | None) -> None:
        flow = model.flow
        if flow.status != status or flow.outcome != outcome or flow.stage.id != model.stage:
            self._fail(
                "allowed",
                f"after {kind} {model.label} is {flow.status} at {flow.stage.id} "
                f"(outcome {flow.outcome!r}); expected {status} at {model.stage} "
                f"(outcome {outcome!r})",
            )
        stage = model.definition.stage(model.stage)
        model.status = status
        model.outcome = outcome
        rid = model.records[stage.entity]["id"]
        model.history.append((kind, stage.id, stage.id, stage.phase, rid, _name(actor)))

    @precondition(lambda self: self.store_kind != "memory")
    @rule()
    def reopen(self) -> None:
        """A new engine on the same store must see what this one wrote."""
        self._apply("reopen")

    def _do_reopen(self) -> None:
        if self.store_kind == "memory":
            raise _Unreplayable("reopen needs a store")
        self._step("open the store in a new engine")
        new = self._new_engine()
        try:
            for record in self.records:
                new.flows(record)  # binds the record objects to the flows loaded
            for model in self.models:
                primary = model.records[model.definition.first_stage.entity]
                try:
                    found = new.flow(primary, model.definition.process)
                except FlowNotFoundError:
                    self._fail("store", f"the new engine finds no {model.label} flow")
                for name in ("stage", "traversed_path", "status", "outcome", "history"):
                    a, b = getattr(model.flow, name), getattr(found, name)
                    if name == "stage":
                        a, b = a.id, b.id
                    if a != b:
                        if name == "history":
                            self._fail("store", f"the new engine sees the history of "
                                       f"{model.label} as {_show_history(_entries(b))}; the "
                                       f"engine that wrote it has {_show_history(_entries(a))}"
                                       f"{_first_difference(a, b)}")
                        self._fail("store", f"the new engine sees {model.label} with {name} "
                                   f"{b!r}; the engine that wrote it has {a!r}")
                model.flow = found
            for record in self.records:
                a = self.engine.last_stage_change(record)
                b = new.last_stage_change(record)
                if a != b:
                    self._fail("store", f"the new engine sees the last stage change on "
                               f"{record['id']} as {b}; the engine that wrote it has {a}")
        except BaseException:
            new.close()
            raise
        self.engine.close()
        self.engine = new
        self.stats.results["reopen succeeded"] += 1

    # -- the checks after every step -------------------------------------------------------------

    @invariant()
    def behaves(self) -> None:
        for model in self.models:
            self._check_flow(model)
        for record in self.records:
            self._check_record(record)

    def _check_flow(self, model: _Model) -> None:
        definition, flow, label = model.definition, model.flow, model.label
        traversed = flow.traversed_path
        stage = flow.stage.id
        # The traversed path is a walk of the graph, from the first stage to the active one.
        if not traversed or traversed[0] != definition.first_stage.id:
            self._fail("path", f"the traversed path of {label} ({' > '.join(traversed)}) does "
                       f"not begin at the first stage {definition.first_stage.id}")
        for a, b in itertools.pairwise(traversed):
            if b not in definition.successors(a):
                self._fail("path", f"the traversed path of {label} ({' > '.join(traversed)}) "
                           f"goes from {a} to {b}, which does not follow it")
        if traversed[-1] != stage or len(set(traversed)) != len(traversed):
            self._fail("path", f"the traversed path of {label} ({' > '.join(traversed)}) does "
                       f"not end at its active stage {stage} exactly once")
        # The active path: the traversed path, then the stages the records' values predict.
        predicted = self._predicted_path(model, traversed)
        active = flow.active_path
        if stage not in active or tuple(active) != predicted:
            self._fail("path", f"the active path of {label} is {' > '.join(active)}; from the "
                       f"definition and the records it is {' > '.join(predicted)}")
        if flow.status == "finished" and not definition.is_last(stage):
            self._fail("status", f"{label} is finished at {stage}, which is not a last stage")
        # The history replays to the flow's state, and holds what succeeded, in order.
        history = flow.history
        expected = model.history
        got = _entries(history)
        if got != expected:
            self._fail("history", f"the history of {label} is {_show_history(got)}; the "
                       f"operations above make it {_show_history(expected)}")
        self._replay(model, history)
        for e in history:
            if (e.flow_id, e.process, e.version) != (flow.id, definition.process,
                                                     definition.version):
                self._fail("history", f"a history entry of {label} names flow {e.flow_id} of "
                           f"{e.process} v{e.version}")
        # The engine agrees with what the operations above should have done.
        state = (stage, tuple(traversed), flow.status, flow.outcome)
        want = (model.stage, tuple(model.traversed), model.status, model.outcome)
        if state != want:
            self._fail("allowed", f"{label} is at {stage} ({flow.status}, path "
                       f"{' > '.join(traversed)}); the operations above lead to {model.stage} "
                       f"({model.status}, path {' > '.join(model.traversed)})")

    def _predicted_path(self, model: _Model, traversed: Sequence[str]) -> tuple[str, ...]:
        definition = model.definition
        path = list(traversed)
        current = path[-1]
        while True:
            entity = definition.stage(current).entity
            get = model.records.get(entity, {}).get
            target = None
            for branch in definition.branches(current):
                if branch.when is None or branch.when.evaluate(get):
                    target = branch.stage
                    break
            if target is None or target in path:
                return tuple(path)
            path.append(target)
            current = target

    def _replay(self, model: _Model, history: Sequence[Any]) -> None:
        definition, label = model.definition, model.label
        stage: str | None = None
        path: list[str] = []
        status = "active"

        def broken(entry: Any, why: str) -> None:
            self._fail("history", f"the history of {label} does not replay: entry "
                       f"{entry.kind} {entry.from_stage} → {entry.to_stage} {why}")

        for i, e in enumerate(history):
            if not definition.has_stage(e.to_stage):
                broken(e, "names a stage the process does not have")
            if e.phase != definition.stage(e.to_stage).phase:
                broken(e, f"has phase {e.phase!r}, not {definition.stage(e.to_stage).phase!r}")
            if e.kind == "start":
                if i != 0:
                    broken(e, "is a second start")
                stage, path = e.to_stage, [e.to_stage]
                continue
            if i == 0:
                broken(e, "comes before the start")
            if e.from_stage != stage:
                broken(e, f"starts from {e.from_stage}, but the flow was at {stage}")
            if e.kind in ("next", "previous", "set_active") and status != "active":
                broken(e, f"moves a {status} flow")
            if e.kind == "next":
                if e.to_stage not in definition.successors(stage or ""):
                    broken(e, f"goes to a stage that does not follow {stage}")
                path.append(e.to_stage)
            elif e.kind in ("previous", "set_active"):
                if e.to_stage not in path[:-1]:
                    broken(e, "goes back to a stage not on the traversed path")
                if e.kind == "previous" and e.to_stage != path[-2]:
                    broken(e, f"goes back past {path[-2]}")
                del path[path.index(e.to_stage) + 1:]
            elif e.kind in ("finish", "abandon", "reactivate"):
                if e.to_stage != stage:
                    broken(e, "changes the stage")
                if (e.kind == "reactivate") == (status == "active"):
                    broken(e, f"while the flow is {status}")
                if e.kind == "finish" and not definition.is_last(stage or ""):
                    broken(e, "finishes at a stage that is not last")
                status = {"finish": "finished", "abandon": "aborted"}.get(e.kind, "active")
                continue
            else:
                broken(e, "has an unknown kind")
            stage = e.to_stage
        flow = model.flow
        if (stage, path, status) != (flow.stage.id, list(flow.traversed_path), flow.status):
            self._fail(
                "history",
                f"the history of {label} replays to {stage} ({status}, path "
                f"{' > '.join(path)}), but the flow is at {flow.stage.id} ({flow.status}, path "
                f"{' > '.join(flow.traversed_path)})",
            )

    def _check_record(self, record: Mapping[str, Any]) -> None:
        rid = record["id"]
        last = self.last.get(rid)
        change = self.engine.last_stage_change(record)
        seen = None if change is None else (
            change.flow_id, change.process, change.kind, change.to_stage, change.phase
        )
        if seen != last:
            self._fail("pipeline", f"engine.last_stage_change({rid}) is {_show_change(seen)}; "
                       f"the last stage change on it was {_show_change(last)}")
        for field, value in self.pipeline.get(rid, {}).items():
            if record.get(field) != value:
                assert last is not None
                self._fail(
                    "pipeline",
                    f"{rid}.{field} is {show_value(record.get(field))}; the last stage change "
                    f"on {rid} was {_show_change(last)}",
                )
        running = sorted(f.process.process for f in self.engine.flows(record))
        expected = sorted(m.definition.process for m in self.models
                          if any(r["id"] == rid for r in m.records.values()))
        if running != expected:
            self._fail("one-flow", f"engine.flows({rid}) lists {running or 'no flows'}; the "
                       f"flows on it are {expected or 'none'}")


def _actor_strategy(definitions: Sequence[ProcessDefinition]) -> st.SearchStrategy[Actor | None]:
    """Mostly actors holding a role (flows get somewhere), sometimes others (roles enforced);
    shrinks to the first role holder."""
    holders: list[Actor | None] = []
    others: list[Actor | None] = []
    for actor in actor_pool(definitions):
        if actor is not None and any(_allowed(d, actor) for d in definitions):
            holders.append(actor)
        else:
            others.append(actor)
    # Four in five draws a role holder, however many roles and other actors there are.
    copies = max(1, -(-4 * len(others) // max(len(holders), 1)))
    return st.sampled_from(holders * copies + others)


def _all_constants(definitions: Sequence[ProcessDefinition]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for definition in definitions:
        for field, values in condition_constants(definition).items():
            known = found.setdefault(field, [])
            known.extend(v for v in values if v not in known)
    return found


def _edit_order(
    definitions: Sequence[ProcessDefinition], entity: str, fields: Mapping[str, Any]
) -> list[str]:
    """The fields edits choose from: those branch conditions read three times over (so that
    branches get taken), then the others."""
    read = {f for d in definitions for f in condition_constants(d, entity)} & set(fields)
    return sorted(read) * 3 + sorted(set(fields) - read)


def _name(actor: Actor | None) -> str | None:
    return None if actor is None else actor.name


def _entries(history: Iterable[Any]) -> list[tuple[Any, ...]]:
    """History entries as the model keeps them: (kind, from, to, phase, record id, actor)."""
    return [(e.kind, e.from_stage, e.to_stage, e.phase, e.record_id, e.actor) for e in history]


def _first_difference(a: Sequence[Any], b: Sequence[Any]) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            fields = [f for f in x._fields if getattr(x, f) != getattr(y, f)]
            shown = ", ".join(f"{f} {getattr(y, f)!r} instead of {getattr(x, f)!r}"
                              for f in fields)
            return f" (entry {i}: {shown})"
    return ""


def _show_history(entries: Sequence[tuple[Any, ...]]) -> str:
    if not entries:
        return "empty"
    return ", ".join(
        f"{kind} {to}" if kind in ("start", "next", "previous", "set_active") else kind
        for kind, _, to, *_ in entries
    ) + f" ({len(entries)} {'entry' if len(entries) == 1 else 'entries'})"


def _show_change(change: tuple[Any, ...] | None) -> str:
    if change is None:
        return "none"
    _, process, kind, stage, phase = change
    return f"{process} {kind} to {stage} ({phase})"


def FlowMachine(
    definition: ProcessDefinition,
    *,
    others: Iterable[ProcessDefinition] = (),
    store: str | None = None,
    engine_factory: Callable[..., Engine] | None = None,
    max_records: int = 3,
    settings: Settings | None = None,
) -> type[RuleBasedStateMachine]:
    """A `hypothesis.stateful.RuleBasedStateMachine` driving real flows of ``definition``.

    It starts flows on up to ``max_records`` records, ``others`` (more definitions) on the same
    records, moves, finishes, abandons and reactivates them as actors that do and do not hold
    the roles, edits fields, and after every step checks the flows against the definition
    (the names and sentences are in ``bpf.testing.PROPERTIES``). A violation raises
    `ProcessCheckFailed` listing the steps.

    ``store`` is None or "memory", or "sqlite" (a temporary file per example; the machine then
    also reopens the store in a new engine and compares). ``engine_factory`` makes the engine
    (called with the store URL, or with None or nothing for memory); default `bpf.Engine`.

    Run it with ``hypothesis.stateful.run_state_machine_as_test`` or as a unittest
    ``FlowMachine(d).TestCase``; `check_process` does both the running and the reporting.
    """
    definitions = (definition, *others)
    for d in definitions:
        if not isinstance(d, ProcessDefinition):
            raise TypeError(f"FlowMachine takes ProcessDefinitions, got {type(d).__name__}")
    names = [d.process for d in definitions]
    if len(set(names)) != len(names):
        raise ValueError(f"each process may be given once: {', '.join(names)}")
    if store not in (None, "memory", "sqlite"):
        raise ValueError(f"store is None, 'memory' or 'sqlite', not {store!r}")
    if max_records < 1:
        raise ValueError("max_records must be at least 1")
    entities = dict.fromkeys(e for d in definitions for e in d.entities)
    pipeline_fields = frozenset(d.pipeline_field for d in definitions if d.pipeline_field)
    fields = {e: entity_fields(definitions, e) for e in entities}
    namespace = {
        "definitions": definitions,
        "store_kind": store or "memory",
        "engine_factory": staticmethod(engine_factory) if engine_factory else None,
        "max_records": max_records,
        "stats": Stats(),
        "_fields": fields,
        "_actors": _actor_strategy(definitions),
        "_actor_order": actor_pool(definitions),
        "_step_of": {
            step.field: step for d in reversed(definitions) for stage in reversed(d.stages)
            for step in stage.steps
        },
        "_constants": _all_constants(definitions),
        "_edit_order": {e: _edit_order(definitions, e, f) for e, f in fields.items()},
        "_some_fields": {
            e: st.lists(st.sampled_from(sorted(f)), max_size=3, unique=True)
            for e, f in fields.items() if f
        },
        "_start_entities": tuple(dict.fromkeys(d.first_stage.entity for d in definitions)),
        "_pipeline_fields": pipeline_fields,
        "__doc__": f"Drives flows of {', '.join(names)} and checks them after every step.",
    }
    cls = type(f"FlowMachine_{definition.process.replace('-', '_')}", (_FlowMachineBase,),
               namespace)
    cls.TestCase.settings = settings or default_settings(shrink=True)
    return cls


_ID_KEYS = ("rid", "new_rid", "existing")


def _replay(machine: type[Any], ops: Sequence[tuple[str, dict[str, Any]]],
            prop: str) -> ProcessCheckFailed | None:
    """Run ``ops`` on a fresh machine; the failure if it breaks ``prop`` again."""
    m = machine()
    m.replaying = True
    try:
        for kind, kwargs in ops:
            m._apply(kind, **kwargs)
            m.behaves()
    except ProcessCheckFailed as failure:
        return failure if failure.property == prop else None
    except Exception:  # an operation that no longer makes sense, or the engine choking on it
        return None
    finally:
        m.teardown()
    return None


def _position(value: Any, candidates: Sequence[Any]) -> int:
    for i, candidate in enumerate(candidates):
        if type(candidate) is type(value) and candidate == value:
            return i
    return len(candidates)


def _simpler_values(machine: type[Any], field: str, value: Any) -> list[Any]:
    """Values to try instead of ``value``, simplest first: empty, the simplest filled value of
    the step's type, then the constants the branches compare the field with."""
    step = machine._step_of.get(field)
    candidates = [None]
    if step is not None:
        candidates.append(simplest_filled(step))
    for constant in machine._constants.get(field, ()):
        if _position(constant, candidates) == len(candidates):
            candidates.append(constant)
    return candidates[:_position(value, candidates)]


def _simpler(machine: type[Any], op: tuple[str, dict[str, Any]]) -> Iterator[
        tuple[str, dict[str, Any]]]:
    """Simpler variants of ``op``: a field fewer, a simpler value, a plainer actor or outcome."""
    kind, kwargs = op
    key = {"record": "fields", "fill": "values", "next": "new_fields"}.get(kind)
    values = kwargs.get(key) if key else None
    if values:
        for field in values:
            yield kind, {**kwargs, key: {f: v for f, v in values.items() if f != field}}
        for field, value in values.items():
            for simpler in _simpler_values(machine, field, value):
                yield kind, {**kwargs, key: {**values, field: simpler}}
    if kind == "edit":
        for simpler in _simpler_values(machine, kwargs["field"], kwargs["value"]):
            yield kind, {**kwargs, "value": simpler}
    if "actor" in kwargs:
        order = machine._actor_order
        for actor in order[:_position(kwargs["actor"], order)]:
            yield kind, {**kwargs, "actor": actor}
    if kind == "finish" and kwargs["outcome"] is not None:
        yield kind, {**kwargs, "outcome": None}


def _renumbered(ops: Sequence[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """The ops with records renamed ``{entity}-1``, ``{entity}-2``... in order of appearance."""
    names: dict[str, str] = {}
    counter: Counter[str] = Counter()
    for _, kwargs in ops:
        for key in _ID_KEYS:
            rid = kwargs.get(key)
            if rid is not None and rid not in names:
                entity = rid.rsplit("-", 1)[0]
                counter[entity] += 1
                names[rid] = f"{entity}-{counter[entity]}"
    return [
        (kind, {k: names.get(v, v) if k in _ID_KEYS else v for k, v in kwargs.items()})
        for kind, kwargs in ops
    ]


def minimize(machine: type[Any], failure: ProcessCheckFailed) -> ProcessCheckFailed:
    """Cut a failing run down to the operations it needs, with the simplest values, by
    replaying variants of it on fresh machines (no Hypothesis; a replay takes milliseconds).

    Deletes operations (halves, quarters... then one at a time), then tries each operation
    with a field fewer, simpler values, a plainer actor; repeats while that helps; finally
    renames the records in order of appearance.
    """
    prop = failure.property
    ops = list(failure.ops)
    best = _replay(machine, ops, prop)
    if best is None:
        return failure

    def reproduces(candidate: list[tuple[str, dict[str, Any]]]) -> bool:
        nonlocal ops, best
        found = _replay(machine, candidate, prop)
        if found is None:
            return False
        ops, best = candidate, found
        return True

    for _ in range(3):
        before = list(ops)
        chunk = max(len(ops) // 2, 1)
        while True:
            i, changed = 0, False
            while i < len(ops):
                if reproduces(ops[:i] + ops[i + chunk:]):
                    changed = True
                else:
                    i += chunk
            if chunk == 1 and not changed:
                break
            chunk = max(chunk // 2, 1)
        for i in range(len(ops)):
            progress = True
            while progress:
                progress = any(
                    reproduces([*ops[:i], simpler, *ops[i + 1:]])
                    for simpler in _simpler(machine, ops[i])
                )
        if ops == before:
            break
    reproduces(_renumbered(ops))
    return best


def default_settings(max_examples: int = 100, steps: int = 30, *, shrink: bool = False
                     ) -> Settings:
    """The Hypothesis settings the kit runs with: no deadline, no example database, and no
    shrinking unless ``shrink`` (`check_process` minimizes failures itself)."""
    from hypothesis import HealthCheck, Phase, Verbosity

    # No explain phase ever: it re-runs a failure hundreds of times to annotate Hypothesis's
    # own printout, which the readable steps replace. No shrink phase under check_process:
    # `minimize` cuts a failure down by replaying operations in a fraction of a second, where
    # Hypothesis's shrinker (working on its own choices, not on operations) takes seconds and
    # leaves steps behind.
    phases = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target]
    if shrink:
        phases.append(Phase.shrink)
    return Settings(
        phases=phases,
        max_examples=max_examples,
        stateful_step_count=steps,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        report_multiple_bugs=False,
        verbosity=Verbosity.quiet,
    )
