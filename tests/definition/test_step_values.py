"""What fills a step: a value that is filled in and of the step's type (`bpf.Step.problem`).

Once, any non-empty value filled a money or lookup step, `risk: extreme` filled a choice of
low/high, and NaN filled a required amount (issue 14). docs/process-format.md, "What fills a
step", is the rule these tests read.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from fractions import Fraction

import pytest

import bpf
from bpf.definition.model import STEP_TYPES


def step(kind: str, **more) -> bpf.Step:
    return bpf.Step(field="f", label="F", type=kind, required=True, **more)


RISK = step("choice", choices=("low", "high"))
LEVEL = step("choice", choices=(1, 2, 3))


class Contact:
    """A related record, as an ORM relationship holds it."""


@pytest.mark.parametrize(("the_step", "value"), [
    (step("text"), "Contoso"),
    (step("number"), 0),
    (step("number"), -3.5),
    (step("number"), Fraction(1, 3)),
    (step("money"), 250_000),
    (step("money"), Decimal("19.99")),
    (step("money"), 0.0),
    (step("date"), dt.date(2025, 6, 1)),
    (step("date"), dt.datetime(2025, 6, 1, 9, 30)),
    (step("date"), "2025-06-01"),
    (step("date"), "2025-06-01T09:30:00+02:00"),
    (step("boolean"), True),
    (RISK, "low"),
    (LEVEL, 2),
    (step("lookup"), "account-1"),
    (step("lookup"), 42),
    (step("lookup"), {"id": "account-1", "entity": "account"}),
    (step("lookup"), Contact()),
])
def test_a_value_of_the_steps_type_fills_it(the_step, value):
    assert the_step.problem(value) is None
    assert the_step.is_satisfied(value)


@pytest.mark.parametrize(("the_step", "value", "reason"), [
    (step("text"), None, "not filled"),
    (step("text"), "  ", "not filled"),
    (step("text"), 12, "not text"),
    (step("number"), "12", "not a number"),
    (step("number"), True, "not a number"),
    (step("number"), math.nan, "NaN is not a number"),
    (step("number"), -math.inf, "not a finite number"),
    (step("money"), "lots", "not an amount"),
    (step("money"), math.nan, "NaN is not an amount"),
    (step("money"), Decimal("NaN"), "NaN is not an amount"),
    (step("money"), Decimal("sNaN"), "NaN is not an amount"),
    (step("money"), math.inf, "not a finite amount"),
    (step("money"), [], "not filled"),
    (step("date"), "next week", "not a date"),
    (step("date"), 20250601, "not a date"),
    (step("boolean"), None, "not marked complete"),
    (step("boolean"), False, "not marked complete"),
    (step("boolean"), "yes", "not true or false"),
    (step("boolean"), 1, "not true or false"),
    (RISK, "extreme", "not one of low, high"),
    (RISK, "", "not filled"),
    (LEVEL, True, "not one of 1, 2, 3"),
    (LEVEL, "2", "not one of 1, 2, 3"),
    (step("lookup"), True, "not a reference to a record"),
    (step("lookup"), 1.5, "not a reference to a record"),
    (step("lookup"), ["account-1", "account-2"], "a list, not a reference to one record"),
    (step("lookup"), "", "not filled"),
])
def test_a_value_that_does_not_fill_the_step_says_why(the_step, value, reason):
    assert the_step.problem(value) == reason
    assert not the_step.is_satisfied(value)


@pytest.mark.parametrize("kind", STEP_TYPES)
def test_nothing_fills_no_step(kind):
    the_step = RISK if kind == "choice" else step(kind)
    assert the_step.problem(None) in ("not filled", "not marked complete")


GATED = """\
process: typed-gate
name: Typed Gate
entity: opportunity
stages:
  - id: qualify
    name: Qualify
    steps:
      - {field: budgetamount, label: Budget, type: money, required: true}
      - {field: risk, label: Risk, type: choice, choices: [low, high], required: true}
      - {field: parentaccountid, label: Account, type: lookup, required: true}
  - id: develop
    name: Develop
"""


@pytest.mark.parametrize("wrong", [
    {"budgetamount": "lots"}, {"budgetamount": math.nan}, {"risk": "extreme"},
    {"parentaccountid": True},
])
def test_the_gate_refuses_a_value_of_the_wrong_type(wrong):
    engine = bpf.Engine()
    engine.register(bpf.loads_process(GATED))
    record = {"id": "opp-1", "budgetamount": 1000, "risk": "low", "parentaccountid": "acc-1"}
    record.update(wrong)
    flow = engine.start("typed-gate", record)
    with pytest.raises(bpf.StageGateError) as info:
        flow.next()
    assert [s.field for s in info.value.missing] == list(wrong)
    assert flow.stage.id == "qualify"
    record.update({"budgetamount": 1000, "risk": "low", "parentaccountid": "acc-1"})
    flow.next()
    assert flow.stage.id == "develop"
