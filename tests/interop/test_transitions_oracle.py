"""Differential test: bpf's engine and a transitions machine built by `bpf.interop.transitions`
make the same moves and the same refusals.

The same random operations (fill or clear a field, fill the current stage's gate, next,
previous) run on a flow of a memory
`bpf.Engine` and on a model driven by `machine(definition)`. After every operation both are in
the same stage on the same path, and a refusal on one side is a refusal on the other, of the
matching kind:

======================================  ===============================================
bpf's engine                            the machine
======================================  ===============================================
``StageGateError`` (reason ``gate``)    ``next()`` returns False
``TransitionError`` reason ``end``      ``next()`` raises ``MachineError`` (no move out)
``StageGateError`` at a last stage      ``next()`` raises ``MachineError`` (bpf reports
                                        the gate first; the machine has no move at all)
``TransitionError`` reason beginning    ``previous()`` raises ``MachineError``
======================================  ===============================================

The two share the definition and its two rules (`Step.is_satisfied`,
`ProcessDefinition.branches`) and nothing else: the engine runs its compiled table through its
move core, the machine runs transitions' own event dispatch.
"""

from __future__ import annotations

import datetime
import itertools
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transitions import MachineError

import bpf
from bpf.definition.conditions import All, AnyOf, Compare, Condition, Not
from bpf.interop.transitions import machine

ROOT = Path(__file__).resolve().parents[2]


def _processes() -> list[bpf.ProcessDefinition]:
    found = {d.process: d for d in bpf.standard_processes()}
    for path in [*sorted((ROOT / "processes" / "examples").glob("*.yaml")),
                 ROOT / "tests" / "processes" / "branching.yaml",
                 ROOT / "tests" / "processes" / "cross-entity.yaml"]:
        definition = bpf.load_process(path)
        found.setdefault(definition.process, definition)
    return sorted(found.values(), key=lambda d: d.process)


PROCESSES = _processes()

# -- the values a field may take ------------------------------------------------------------------

_BY_TYPE: dict[str, tuple[Any, ...]] = {
    "boolean": (True, False),
    "text": ("", "   ", "a need"),
    "number": (0, 1),
    "money": (0, 1),
    "date": (datetime.date(2026, 1, 31),),
    "lookup": ("ref-1",),
}


def _compares(condition: Condition) -> Iterable[Compare]:
    if isinstance(condition, Compare):
        yield condition
    elif isinstance(condition, (All, AnyOf)):
        for c in condition.conditions:
            yield from _compares(c)
    elif isinstance(condition, Not):
        yield from _compares(condition.condition)


def field_values(definition: bpf.ProcessDefinition) -> dict[str, list[Any]]:
    """Every field the gates or branches read, with values that fill it or not and values on
    both sides of every constant a condition compares it with."""
    values: dict[str, list[Any]] = {}

    def add(field: str, *more: Any) -> None:
        known = values.setdefault(field, [None])
        known.extend(v for v in more if v not in known)

    for stage in definition.stages:
        for step in stage.steps:
            add(step.field, *_BY_TYPE.get(step.type, ()), *step.choices)
        for branch in stage.next:
            for compare in _compares(branch.when) if branch.when is not None else ():
                constants = (compare.value if isinstance(compare.value, (list, tuple))
                             else [compare.value])
                for value in constants:
                    near = ((value - 1, value + 1) if isinstance(value, (int, float))
                            and not isinstance(value, bool) else ())
                    add(compare.field, value, *near)
    if definition.pipeline_field is not None:
        values.pop(definition.pipeline_field, None)  # the engine writes it; a user does not
    return values


def operation(
    definition: bpf.ProcessDefinition, stage: bpf.Stage
) -> st.SearchStrategy[tuple[Any, ...]]:
    """One operation, drawn knowing the current stage: a fill of a field its gate or its
    branches read is as likely as a fill of any field, so the later stages get tested too."""
    key = (definition.process, definition.version, stage.id)
    if key not in _OPERATIONS:  # built once: Hypothesis validates each new strategy it is given
        _OPERATIONS[key] = _operation(definition, stage)
    return _OPERATIONS[key]


_OPERATIONS: dict[tuple[str, int, str], st.SearchStrategy[tuple[Any, ...]]] = {}


def _operation(
    definition: bpf.ProcessDefinition, stage: bpf.Stage
) -> st.SearchStrategy[tuple[Any, ...]]:
    values = field_values(definition)
    here = sorted({s.field for s in stage.steps} | {
        c.field for b in stage.next if b.when is not None for c in _compares(b.when)
    } & set(values))

    def set_one(fields: list[str]) -> st.SearchStrategy[tuple[Any, ...]]:
        return st.sampled_from([("set", f, v) for f in fields for v in values[f]])

    # Filling the gate at once, with values drawn among those that fill each step (a budget
    # on either side of a branch's threshold, say), reaches the later stages and every branch.
    gate = st.fixed_dictionaries({
        s.field: st.sampled_from([v for v in values[s.field] if s.is_satisfied(v)])
        for s in stage.required_steps
    }).map(lambda filled: ("fill the gate", tuple(sorted(filled.items()))))
    move = st.sampled_from([("next",), ("previous",)])
    return st.one_of(set_one(sorted(values)), *([set_one(here)] if here else []), move, move,
                     gate)


def satisfying(step: bpf.Step) -> Any:
    """A value that fills ``step``."""
    return next(v for v in (*_BY_TYPE.get(step.type, ()), *step.choices, "x")
                if step.is_satisfied(v))


# -- the two sides --------------------------------------------------------------------------------

class Opportunity:
    """A model that is a plain object."""


class Row(dict):
    """A model that is dict-like."""


def _actions(definition: bpf.ProcessDefinition) -> dict[str, Callable[..., None]]:
    names = {n for s in definition.stages for n in (*s.on_enter, *s.on_exit)}
    return {name: (lambda *args, **kwargs: None) for name in names}


_ids = itertools.count()


def run_both(
    definition: bpf.ProcessDefinition,
    ops: Iterable[tuple[Any, ...]] | Callable[[bpf.Stage], tuple[Any, ...] | None],
    *,
    dict_like: bool = False,
    drive: bpf.ProcessDefinition | None = None,
) -> None:
    """Run ``ops`` on an engine flow and on a model of ``machine(drive or definition)``;
    AssertionError at the first operation where they part. ``ops`` is a list, or a function
    giving the next operation (None: stop) for the current stage."""
    engine = bpf.Engine(actions=_actions(definition))
    engine.register(definition)
    records: list[dict[str, Any]] = []

    def another_entity(flow: Any, leaving: dict[str, Any]) -> dict[str, Any]:
        record = {**leaving, "id": f"{leaving['id']}-{len(records)}"}
        records.append(record)
        return record

    for entity in definition.entities:
        engine.record_factory(entity, another_entity)
    records.append({"id": f"rec-{next(_ids)}"})
    # Someone allowed to move: roles are the engine's business, not the graph's.
    actor = bpf.Actor("oracle", roles=definition.roles)
    flow = engine.start(definition.process, records[0], actor=actor)
    model = Row() if dict_like else Opportunity()
    machine(drive or definition, model)
    last = {s.id for s in definition.stages if definition.is_last(s.id)}

    if not callable(ops):
        remaining = iter(ops)
        ops = lambda stage: next(remaining, None)  # noqa: E731
    done: list[tuple[Any, ...]] = []
    while (op := ops(flow.stage)) is not None:
        done.append(op)
        where = f"after {done!r}"
        if op[0] in ("set", "fill the gate"):
            fields = ([op[1:]] if op[0] == "set" else op[1] if len(op) > 1 else
                      [(s.field, satisfying(s)) for s in flow.stage.required_steps])
            for field, value in fields:
                for record in records:  # one record per entity, the same fields: one model
                    record[field] = value
                if dict_like:
                    model[field] = value
                else:
                    setattr(model, field, value)
            continue
        leaving = flow.stage.id
        try:
            (flow.next if op[0] == "next" else flow.previous)(actor=actor)
            refused = None
        except bpf.TransitionError as exc:
            refused = exc.reason
        try:
            moved = (model.next if op[0] == "next" else model.previous)()
            machine_says = None if moved else "false"
        except MachineError:
            machine_says = "machine-error"
        if refused is None:
            expected = None
        elif refused == bpf.Reason.GATE and leaving not in last:
            expected = "false"
        elif refused in (bpf.Reason.END, bpf.Reason.BEGINNING, bpf.Reason.GATE):
            expected = "machine-error"
        else:  # pragma: no cover - a refusal these operations cannot cause
            raise AssertionError(f"{where}: the engine refused with {refused}")
        assert machine_says == expected, (
            f"{where}: the engine {'moved' if refused is None else f'refused ({refused})'}, "
            f"the machine {'moved' if machine_says is None else f'refused ({machine_says})'}"
        )
        assert (model.state, model.bpf_path) == (flow.stage.id, flow.traversed_path), where


# -- the tests ------------------------------------------------------------------------------------

@pytest.mark.parametrize("definition", PROCESSES, ids=[d.process for d in PROCESSES])
def test_the_engine_and_the_transitions_machine_make_the_same_moves_and_refusals(definition):
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(data=st.data(), length=st.integers(0, 40), dict_like=st.booleans())
    def check(data, length, dict_like):
        drawn = iter(range(length))
        run_both(definition, lambda stage: data.draw(operation(definition, stage))
                 if next(drawn, None) is not None else None, dict_like=dict_like)

    check()


def test_the_processes_under_test_have_gates_branches_and_several_entities():
    # What makes the comparison worth running: without these, it would compare straight lines.
    assert any(s.required_steps for d in PROCESSES for s in d.stages)
    assert any(len(d.branches(s.id)) > 1 for d in PROCESSES for s in d.stages)
    assert any(len(d.entities) > 1 for d in PROCESSES)


def _without_gates(definition: bpf.ProcessDefinition) -> bpf.ProcessDefinition:
    return attrs.evolve(definition, stages=[
        attrs.evolve(s, steps=[attrs.evolve(step, required=False) for step in s.steps])
        for s in definition.stages
    ])


def test_the_comparison_fails_when_the_machine_misses_a_gate():
    gated = next(d for d in PROCESSES if d.process == "opportunity-gated")
    run_both(gated, [("next",)])  # both refuse: qualify's steps are not filled
    with pytest.raises(AssertionError, match=r"the engine refused \(gate\), the machine moved"):
        run_both(gated, [("next",)], drive=_without_gates(gated))


def test_the_comparison_fails_when_the_machine_takes_another_branch():
    gated = next(d for d in PROCESSES if d.process == "opportunity-gated")
    develop = gated.stage("develop")
    swapped = attrs.evolve(gated, stages=[
        attrs.evolve(s, next=[bpf.Branch("propose", develop.next[0].when),
                              bpf.Branch("executive-review")]) if s is develop else s
        for s in gated.stages
    ])
    ops = [("set", f, "x") for f in ("parentaccountid", "parentcontactid",
                                    "customerneed", "proposedsolution")]
    ops += [("set", "purchaseprocess", "individual")]  # a choice step needs one of its choices
    ops += [("set", "budgetamount", 250_000), ("next",), ("next",)]
    run_both(gated, ops)
    with pytest.raises(AssertionError, match="executive-review"):
        run_both(gated, ops, drive=swapped)
