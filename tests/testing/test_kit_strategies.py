"""The strategies draw what a user could type, empty values included, and operations a user
could do, by actors that do and do not hold the roles."""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kit_support import DEAL, SHIPPED

import bpf
from bpf.testing import Operation, actors, operations, records

TYPES = {
    "text": str,
    "number": (int, float),
    "money": (int, Decimal),
    "date": dt.date,
    "boolean": bool,
    "choice": str,
    "lookup": str,
}
STEPS = {s.field: s for stage in DEAL.stages for s in stage.steps}


def find(strategy, condition, max_examples: int = 1000):
    """An example satisfying ``condition`` (Hypothesis's find, without shrinking it)."""
    from hypothesis import find as hypothesis_find

    return hypothesis_find(strategy, condition, settings=settings(
        max_examples=max_examples, phases=[Phase.generate], database=None,
    ))


@given(records(DEAL))
def test_records_give_every_step_a_value_of_its_type_or_an_empty_one(record: dict) -> None:
    assert record["id"].startswith("opportunity-")
    assert set(STEPS) <= set(record)
    for field, step in STEPS.items():
        value = record[field]
        if step.is_satisfied(value):
            assert isinstance(value, TYPES[step.type]), (field, value)
            if step.type == "choice":
                assert value in step.choices
        else:
            assert value in (None, "", "  ", [], False), (field, value)


@pytest.mark.parametrize("field", sorted(STEPS))
def test_records_draw_both_empty_and_filled_values_for_every_step(field: str) -> None:
    step = STEPS[field]
    find(records(DEAL), lambda r: not step.is_satisfied(r[field]))
    find(records(DEAL), lambda r: step.is_satisfied(r[field]))


def test_records_draw_both_sides_of_a_branch_threshold() -> None:
    # The branch reads budgetamount > 100000: the constant and its neighbours get drawn.
    for value in (100000, 100001):
        find(records(DEAL), lambda r, v=value: r["budgetamount"] == v, max_examples=2000)


def test_records_of_another_entity_of_a_cross_entity_process() -> None:
    lead = bpf.standard_process("lead-to-opportunity")
    record = find(records(lead, "opportunity"), lambda r: True)
    assert record["id"].startswith("opportunity-")
    assert "customerneed" in record and "parentcontactid" not in record


def test_records_say_what_is_wrong_with_their_arguments() -> None:
    with pytest.raises(TypeError, match="ProcessDefinition"):
        records("deal.yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"no stage on entity 'lead'.*opportunity"):
        records(DEAL, "lead")


def test_actors_do_and_do_not_hold_the_process_roles() -> None:
    find(actors(DEAL), lambda a: a is not None and "salesperson" in a.roles)
    find(actors(DEAL), lambda a: a is not None and not a.roles)
    find(actors(DEAL), lambda a: a is None)


@pytest.mark.parametrize("kind", ["next", "previous", "set_active", "finish", "abandon",
                                  "reactivate", "set"])
def test_operations_draw_every_kind_of_operation(kind: str) -> None:
    found = find(operations(DEAL), lambda ops: any(op.kind == kind for op in ops))
    op = next(op for op in found if op.kind == kind)
    assert str(op).startswith(kind)


def test_operations_edit_fields_of_the_process_with_values_of_their_type() -> None:
    def wanted(op: Operation) -> bool:
        return op.kind == "set" and op.field == "decisionmaker" and op.value is True

    edit = next(filter(wanted, find(operations(DEAL), lambda ops: any(map(wanted, ops)))))
    assert edit.entity == "opportunity"
    assert str(edit) == "set decisionmaker = True"


@settings(max_examples=50, suppress_health_check=[HealthCheck.too_slow])
@given(operations(DEAL), st.data())
def test_operations_apply_to_a_real_flow_and_refusals_are_bpf_errors(
    ops: list[Operation], data: st.DataObject
) -> None:
    # What a user's own property test looks like: random operations never corrupt a flow.
    engine = bpf.Engine()
    engine.register(DEAL)
    record = {"id": "opportunity-1"}
    flow = engine.start("deal", record, actor=bpf.Actor("maria", roles={"salesperson"}))
    for op in ops:
        with contextlib.suppress(bpf.BpfError):
            op.apply(flow)
    path = flow.traversed_path
    assert path[0] == "qualify" and path[-1] == flow.stage.id
    assert all(b in DEAL.successors(a) for a, b in itertools.pairwise(path))
    assert record["stepname"] == engine.last_stage_change(record).phase


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_strategies_build_for_every_shipped_process(path) -> None:
    definition = bpf.load_process(path)
    for entity in definition.entities:
        find(records(definition, entity), lambda r: True)
    find(operations(definition), lambda ops: len(ops) > 3)


def test_operations_walk_flows_to_the_last_stage_and_finish() -> None:
    # Before the walk, no flow of 1,000 examples got to the deep stages of a gated process.
    reached: list[str] = []

    @settings(max_examples=50, database=None, deadline=None, derandomize=True)
    @given(records(DEAL), operations(DEAL))
    def run(record: dict[str, Any], ops: list[Any]) -> None:
        engine = bpf.Engine()
        engine.register(DEAL)
        flow = engine.start("deal", record, actor=bpf.Actor("maria", roles={"salesperson"}))
        for op in ops:
            with contextlib.suppress(bpf.BpfError):
                op.apply(flow)
        reached.append(flow.status if flow.status == "finished" else flow.stage.id)

    run()
    assert reached.count("finished") >= 10, reached
    assert reached.count("qualify") < 25, reached
