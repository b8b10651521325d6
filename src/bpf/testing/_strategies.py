"""Hypothesis strategies drawn from a process definition: records, actors, operations.

Every value a strategy draws is one a user could type: the right type for each step (empty
values included, since gates are about them) and the constants the branch conditions compare
with, so that every branch gets taken.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import attrs
from hypothesis import strategies as st

from bpf.definition.model import ProcessDefinition, Step
from bpf.definition.satisfy import branch_witnesses, leaves
from bpf.runtime.flow import Actor, Flow

#: Names of the actors the strategies draw; the first ones hold a role each.
_NAMES = ("maria", "jonas", "aiko", "tomas", "ines", "omar", "lena", "raj")

_TEXT = st.text(
    alphabet=st.characters(codec="ascii", categories=("L", "N", "Zs")), min_size=1, max_size=12
)


# -- field values ---------------------------------------------------------------------------------


def _near(value: Any) -> list[Any]:
    """The constant of an ordering and its neighbours, so both sides of it get drawn."""
    if isinstance(value, bool):
        return [value]
    if isinstance(value, (int, float, Decimal)):
        return [value, value - 1, value + 1]
    if isinstance(value, dt.date):
        day = dt.timedelta(days=1)
        return [value, value - day, value + day]
    return [value]


def condition_constants(
    definition: ProcessDefinition, entity: str | None = None
) -> dict[str, list[Any]]:
    """For every field a branch condition reads (on stages of ``entity``, default all), the
    constants it is compared with."""
    found: dict[str, list[Any]] = {}
    for stage in definition.stages:
        if entity is not None and stage.entity != entity:
            continue
        for branch in stage.next:
            if branch.when is None:
                continue
            for leaf in leaves(branch.when):
                values = found.setdefault(leaf.field, [])
                if leaf.op in ("in", "not_in"):
                    candidates = list(leaf.value)
                elif leaf.op in ("gt", "gte", "lt", "lte"):
                    candidates = _near(leaf.value)
                elif leaf.op == "is_set":
                    candidates = []
                else:
                    candidates = [leaf.value]
                values.extend(v for v in candidates if v not in values)
    return found


def _lookup(field: str) -> st.SearchStrategy[str]:
    prefix = field.removesuffix("id") or field
    return st.integers(1, 99).map(lambda n: f"{prefix}-{n}")


@functools.cache
def filled_values(step: Step) -> st.SearchStrategy[Any]:
    """Values that satisfy ``step`` when it is required."""
    if step.type == "boolean":
        return st.just(True)
    if step.type in ("number", "money"):
        # Every order of magnitude equally often (plain integers cluster near 0), shrinking to 0.
        magnitudes = st.builds(lambda m, e: m * 10**e, st.integers(0, 9), st.integers(0, 7))
        if step.type == "money":
            cents = st.decimals(0, 10**7, places=2, allow_nan=False, allow_infinity=False)
            return st.one_of(magnitudes, cents)
        return st.one_of(magnitudes, st.integers(-1000, 1000),
                         st.floats(-1e6, 1e9, allow_nan=False, width=32))
    if step.type == "date":
        return st.dates(dt.date(2000, 1, 1), dt.date(2040, 12, 31))
    if step.type == "choice" and step.choices:
        return st.sampled_from(step.choices)
    if step.type == "lookup":
        return _lookup(step.field)
    return _TEXT.filter(lambda s: s.strip() != "")


def simplest_filled(step: Step) -> Any:
    """The simplest value that satisfies ``step``, for counterexamples."""
    if step.type == "boolean":
        return True
    if step.type in ("number", "money"):
        return 0
    if step.type == "date":
        return dt.date(2000, 1, 1)
    if step.type == "choice" and step.choices:
        return step.choices[0]
    if step.type == "lookup":
        return f"{step.field.removesuffix('id') or step.field}-1"
    return "x"


def invalid_values(step: Step) -> st.SearchStrategy[Any]:
    """Filled-in values of the wrong type or outside the choices: ``Step.problem`` finds one
    in each, so a gate refuses them."""
    wrong: dict[str, list[Any]] = {
        "boolean": ["yes", 1],
        "number": ["lots", True],
        "money": ["lots", float("inf")],
        "date": ["someday", 20260101],
        "choice": ["no-such-choice", True],
        "lookup": [[1, 2], 1.5],
        "text": [42, ["x"]],
    }
    return st.sampled_from([v for v in wrong.get(step.type, ["?"]) if step.problem(v)])


def empty_values(step: Step) -> st.SearchStrategy[Any]:
    """Values a required ``step`` counts as not filled in."""
    if step.type == "boolean":
        return st.sampled_from([None, False])
    if step.type in ("number", "money", "date"):
        return st.none()
    if step.type == "lookup":
        return st.sampled_from([None, "", []])
    return st.sampled_from([None, "", "  "])


def step_values(step: Step, constants: Iterable[Any] = ()) -> st.SearchStrategy[Any]:
    """Any value of the step's type: empty ones first (they shrink there), filled ones more
    often, and the given branch constants."""
    filled = filled_values(step)
    if step.type == "boolean":
        # Any non-True value leaves a mark-complete step open; True is as likely as not.
        return st.one_of(st.sampled_from([None, False]), st.just(True), st.just(True))
    options = [empty_values(step), filled, filled, filled]
    constants = [c for c in constants if c is not None]
    if constants:
        options.append(st.sampled_from(constants))
    return st.one_of(options)


def entity_fields(
    definitions: Iterable[ProcessDefinition], entity: str
) -> dict[str, st.SearchStrategy[Any]]:
    """The value strategy of every field of ``entity`` the definitions read: their steps and
    the fields of branch conditions on stages of that entity. Pipeline fields are left out."""
    definitions = tuple(definitions)
    pipeline = {d.pipeline_field for d in definitions}
    steps: dict[str, Step] = {}
    constants: dict[str, list[Any]] = {}
    for definition in definitions:
        for stage in definition.stages:
            if stage.entity == entity:
                for step in stage.steps:
                    steps.setdefault(step.field, step)
        for field, values in condition_constants(definition, entity).items():
            known = constants.setdefault(field, [])
            known.extend(v for v in values if v not in known)
    # Only fields a step collects: a condition on a field no stage collects is one no user
    # can make true (a typo, often), and filling it would hide that.
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field, step in steps.items():
        if field not in pipeline:
            fields[field] = step_values(step, constants.get(field, ()))
    return dict(sorted(fields.items()))


def records(
    definition: ProcessDefinition, entity: str | None = None
) -> st.SearchStrategy[dict[str, Any]]:
    """Records of ``entity`` (default: the process's own) as dicts with an ``"id"``.

    Every step of the stages on that entity gets a value of its type (text, number, money,
    date, boolean, choice, lookup), empty values included; fields that branch conditions read
    also get the constants they are compared with.
    """
    if not isinstance(definition, ProcessDefinition):
        raise TypeError(f"records() takes a ProcessDefinition, got {type(definition).__name__}")
    entity = entity or definition.entity
    if entity not in definition.entities:
        raise ValueError(
            f"process {definition.process!r} has no stage on entity {entity!r} "
            f"(entities: {', '.join(definition.entities)})"
        )
    fields = entity_fields([definition], entity)
    ids = st.integers(1, 10**6).map(lambda n: f"{entity}-{n}")
    return st.fixed_dictionaries({"id": ids, **fields})


# -- actors ---------------------------------------------------------------------------------------


def actor_pool(definitions: Iterable[ProcessDefinition]) -> list[Actor | None]:
    """One actor per role the processes declare, then one with no role, then no actor at all."""
    roles = list(dict.fromkeys(r for d in definitions for r in d.roles))
    pool: list[Actor | None] = [
        Actor(_NAMES[i % len(_NAMES)] + ("" if i < len(_NAMES) else str(i)), roles={role})
        for i, role in enumerate(roles)
    ]
    if not pool:
        pool.append(Actor("maria"))
    pool.append(Actor("guest"))
    pool.append(None)
    return pool


def actors(definition: ProcessDefinition) -> st.SearchStrategy[Actor | None]:
    """Actors that do and do not hold the process roles (and no actor at all)."""
    return st.sampled_from(actor_pool([definition]))


def show_actor(actor: Actor | None) -> str:
    if actor is None:
        return "no actor"
    roles = ", ".join(sorted(actor.roles)) or "no roles"
    return f"{actor.name} ({roles})"


# -- operations -----------------------------------------------------------------------------------

KINDS = ("next", "previous", "set_active", "finish", "abandon", "reactivate", "set")


@attrs.frozen
class Operation:
    """One thing a user does to a flow or to its record, as `operations` draws it.

    ``kind`` is next, previous, set_active, finish, abandon, reactivate, or set (a field edit
    on the flow's ``entity`` record). `apply` performs it; refused moves raise `bpf.BpfError`.
    """

    kind: str = attrs.field(validator=attrs.validators.in_(KINDS))
    actor: Actor | None = None
    stage: str | None = None
    outcome: str | None = None
    entity: str | None = None
    field: str | None = None
    value: Any = None

    def apply(self, flow: Flow) -> None:
        """Do it to ``flow``. A field edit on an entity the flow has no record of yet does
        nothing; a move into such an entity needs ``engine.record_factory``."""
        if self.kind == "set":
            record = flow.records.get(self.entity or flow.process.entity)
            if record is None:
                return
            if isinstance(record, Mapping):
                record[self.field] = self.value  # type: ignore[index]
            else:
                setattr(record, self.field or "", self.value)
        elif self.kind == "next":
            flow.next(actor=self.actor)
        elif self.kind == "previous":
            flow.previous(actor=self.actor)
        elif self.kind == "set_active":
            flow.set_active(self.stage or "", actor=self.actor)
        elif self.kind == "finish":
            flow.finish(self.outcome, actor=self.actor)
        elif self.kind == "abandon":
            flow.abandon(actor=self.actor)
        else:
            flow.reactivate(actor=self.actor)

    def __str__(self) -> str:
        if self.kind == "set":
            return f"set {self.field} = {show_value(self.value)}"
        who = f" as {show_actor(self.actor)}"
        if self.kind == "set_active":
            return f"set_active {self.stage}{who}"
        if self.kind == "finish" and self.outcome is not None:
            return f"finish {self.outcome}{who}"
        return f"{self.kind}{who}"


def usable_witnesses(
    definitions: Iterable[ProcessDefinition], alternatives: int = 4
) -> dict[tuple[str, str], list[list[dict[str, Any]]]]:
    """For every stage of every definition, by (process, stage), the field values that take
    each of its branches (`bpf.definition.satisfy.branch_witnesses`), keeping only values a
    user can type: a witness that needs a value in a field no step collects (or in a pipeline
    field) is dropped, and empty values of such fields are left out."""
    definitions = tuple(definitions)
    pipeline = {d.pipeline_field for d in definitions}
    found: dict[tuple[str, str], list[list[dict[str, Any]]]] = {}
    for definition in definitions:
        for stage in definition.stages:
            collected = {s.field for st_ in definition.stages if st_.entity == stage.entity
                         for s in st_.steps} - pipeline
            options = []
            for witnesses in branch_witnesses(definition, stage, alternatives):
                usable = []
                for w in witnesses:
                    if any(f not in collected and v is not None for f, v in w.items()):
                        continue
                    usable.append({f: v for f, v in w.items() if f in collected})
                options.append(usable)
            found[definition.process, stage.id] = options
    return found


def _fill_value(step: Step) -> st.SearchStrategy[Any]:
    """Nine times in ten a value that fills the step, else an empty or invalid one (a gate
    then refuses)."""
    return st.integers(0, 9).flatmap(
        lambda n: st.one_of(empty_values(step), invalid_values(step)) if n == 0
        else filled_values(step)
    )


def _walk(definition: ProcessDefinition, who: st.SearchStrategy[Actor | None]
          ) -> st.SearchStrategy[list[Operation]]:
    """A walk through the process from its first stage: fill each stage's required steps,
    choose a branch and type the values that take it, next (now and then previous and next
    again), and finish at a last stage."""
    witnesses = usable_witnesses([definition])
    holders = [a for a in actor_pool([definition]) if a is not None
               and (not definition.roles or not a.roles.isdisjoint(definition.roles))]
    mover = st.sampled_from(holders) if holders else who

    @st.composite
    def walk(draw: st.DrawFn) -> list[Operation]:
        ops: list[Operation] = []
        stage = definition.first_stage
        for _ in range(len(definition.stages)):
            for step in stage.required_steps:
                if step.field != definition.pipeline_field:
                    ops.append(Operation("set", entity=stage.entity, field=step.field,
                                         value=draw(_fill_value(step))))
            options = witnesses[definition.process, stage.id]
            usable = [i for i, w in enumerate(options) if w]
            if not usable:
                outcome = draw(st.sampled_from([None, *definition.outcomes]))
                ops.append(Operation("finish", actor=draw(mover), outcome=outcome))
                break
            i = draw(st.sampled_from(usable))
            for field, value in draw(st.sampled_from(options[i])).items():
                ops.append(Operation("set", entity=stage.entity, field=field, value=value))
            ops.append(Operation("next", actor=draw(mover)))
            if draw(st.integers(0, 4)) == 0:  # back and forth: actions run twice
                ops += [Operation("previous", actor=draw(mover)),
                        Operation("next", actor=draw(mover))]
            stage = definition.stage(definition.branches(stage.id)[i].stage)
        return ops

    return walk()


def operations(
    definition: ProcessDefinition, *, max_size: int = 30
) -> st.SearchStrategy[list[Operation]]:
    """Sequences of next / previous / set_active / finish / abandon / reactivate / field edits,
    by actors that do and do not hold the process roles.

    Each sequence is a walk through the process (the required steps filled with values of
    their type, mostly valid; the values that take a branch chosen at random; next, sometimes
    previous and next again; finish at a last stage) with random operations mixed in, so that
    flows reach every stage and every branch, and refusals happen on the way."""
    if not isinstance(definition, ProcessDefinition):
        raise TypeError(
            f"operations() takes a ProcessDefinition, got {type(definition).__name__}"
        )
    who = actors(definition)
    stage_ids = st.sampled_from([s.id for s in definition.stages] + ["no-such-stage"])
    outcomes = st.sampled_from([None, *definition.outcomes, "no-such-outcome"])
    edits = [
        st.builds(
            Operation, kind=st.just("set"), entity=st.just(entity), field=st.just(field),
            value=values,
        )
        for entity in definition.entities
        for field, values in entity_fields([definition], entity).items()
    ]
    moves = [
        st.builds(Operation, kind=st.just("next"), actor=who),
        st.builds(Operation, kind=st.just("previous"), actor=who),
        st.builds(Operation, kind=st.just("set_active"), actor=who, stage=stage_ids),
        st.builds(Operation, kind=st.just("finish"), actor=who, outcome=outcomes),
        st.builds(Operation, kind=st.just("abandon"), actor=who),
        st.builds(Operation, kind=st.just("reactivate"), actor=who),
    ]
    # Moves and edits about equally often: a flow goes nowhere without its fields filled.
    step = st.one_of(st.one_of(*moves), st.one_of(*edits)) if edits else st.one_of(*moves)
    noise = st.lists(st.tuples(st.integers(0, max_size), step), max_size=max_size // 3)

    def mixed(parts: tuple[list[Operation], list[tuple[int, Operation]]]) -> list[Operation]:
        ops, extra = list(parts[0]), parts[1]
        for at, op in extra:
            ops.insert(min(at, len(ops)), op)
        return ops[:max_size]

    # The walk shrinks towards a shorter one, the noise towards none.
    return st.tuples(_walk(definition, who), noise).map(mixed)


# -- showing values -------------------------------------------------------------------------------


def show_value(value: Any) -> str:
    """A field value as a person reads it in a counterexample."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return repr(value)


def show_record(record: Mapping[str, Any]) -> str:
    """A record's set fields: ``{budgetamount: 0, parentaccountid: 'account-1'}``."""
    shown = ", ".join(
        f"{k}: {show_value(v)}" for k, v in record.items() if k != "id" and v is not None
    )
    return "{" + shown + "}"
