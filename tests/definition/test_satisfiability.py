"""Static satisfiability: a branch no record takes, and a stage no flow enters, are warned of at
load, in the words of the process; the witnesses are records that take each branch."""

from __future__ import annotations

import textwrap
import warnings

import pytest

import bpf
from bpf.definition.satisfy import analyse, enterable

HEAD = """\
process: p
name: P
entity: change
stages:
  - id: assess
    name: Assess
    steps:
      - {field: risk, label: Risk, type: choice, choices: [low, high], required: true}
      - {field: amount, label: Amount, type: money}
      - {field: urgent, label: Urgent, type: boolean}
    next:
"""
TAIL = """\
  - {id: cab, name: CAB}
  - {id: done, name: Done}
"""


def load(branches: str) -> tuple[bpf.ProcessDefinition, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bpf.DefinitionWarning)
        definition = bpf.loads_process(HEAD + textwrap.indent(textwrap.dedent(branches), "      ")
                                       + TAIL)
    return definition, [str(w.message) for w in caught]


@pytest.mark.parametrize(("condition", "why"), [
    ("{all: [{field: amount, gt: 10}, {field: amount, lt: 5}]}",
     "`(amount > 10 and amount < 5)` is never true"),
    ("{field: risk, is_set: false}",
     "`risk is empty` is never true on a record that fills the required step risk of 'assess'"),
    ("{not: {field: risk, in: [low, high]}}",
     "`not risk in ['low', 'high']` is never true on a record that fills the required step "
     "risk of 'assess'"),
    ("{all: [{field: urgent, equals: true}, {not: {field: urgent, is_set: true}}]}",
     "`(urgent == True and not urgent is set)` is never true"),
])
def test_a_branch_no_record_takes_is_a_warning_that_says_why(condition: str, why: str) -> None:
    definition, found = load(f"- when: {condition}\n  stage: cab\n- stage: done\n")
    assert found[0].endswith(f"the branch of stage 'assess' to 'cab' is never taken: {why}")
    assert "stage 'cab' is never entered: no branch that leads to it can be taken" in found[1]
    assert enterable(definition) == {"assess", "done"}


def test_a_branch_shadowed_by_an_earlier_one_is_never_taken() -> None:
    _, found = load("""\
        - when: {field: amount, gt: 10}
          stage: done
        - when: {field: amount, gt: 20}
          stage: cab
        - stage: done
        """)
    assert found[0].endswith("whenever `amount > 20` holds, an earlier branch (`amount > 10`) "
                             "holds too and is taken")


def test_takeable_branches_give_no_warning_and_a_witness_that_takes_them() -> None:
    definition, found = load("""\
        - when: {all: [{field: amount, gte: 1000}, {field: risk, equals: high}]}
          stage: cab
        - when: {any: [{field: urgent, equals: true}, {field: amount, lt: 0}]}
          stage: cab
        - stage: done
        """)
    assert found == []
    for analysis in analyse(definition):
        witness = analysis.witness
        assert witness is not None
        record = {"risk": "low", **witness}
        taken = next(i for i, b in enumerate(definition.branches(analysis.source))
                     if b.when is None or b.when.evaluate(record.get))
        assert taken == analysis.index


def test_a_condition_on_a_field_no_step_declares_suggests_the_step() -> None:
    _, found = load("- when: {field: riks, equals: high}\n  stage: cab\n- stage: done\n")
    assert found == ["<string>:12:23: no step declares the field 'riks' (did you mean `risk`?): "
                     "the condition reads it from the record as it is (check the spelling)"]


def test_the_shipped_processes_have_no_dead_branch() -> None:
    from pathlib import Path

    root = Path(__file__).parents[2]
    for path in [*root.glob("processes/**/*.yaml"), *root.glob("tests/processes/*.yaml")]:
        definition = bpf.load_process(path)
        assert all(a.takeable for a in analyse(definition)), path
        assert enterable(definition) == {s.id for s in definition.stages}, path
