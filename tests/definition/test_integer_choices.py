"""A choice step may list whole numbers: a Dynamics option set whose labels are not known."""

from __future__ import annotations

import textwrap

import pytest

import bpf

PROCESS = textwrap.dedent(
    """\
    process: requisition
    name: Requisition
    entity: cttech_requisition
    stages:
      - id: new
        name: New
        steps:
          - field: statusreason
            label: Status Reason
            type: choice
            choices: [397830003, 397830009]
        next:
          - when: {field: statusreason, in: [397830003, 397830009]}
            stage: approved
          - stage: rejected
      - id: approved
        name: Approved
        end: true
      - id: rejected
        name: Rejected
    """
)


def test_whole_numbers_are_choices_and_conditions_compare_them():
    process = bpf.loads_process(PROCESS)
    assert process.stage("new").step("statusreason").choices == (397830003, 397830009)
    engine = bpf.Engine()
    engine.register(process)
    record = {"id": "r-1", "statusreason": 397830009}
    flow = engine.start("requisition", record)
    flow.next()
    assert flow.stage.id == "approved"


def test_a_condition_value_not_among_the_whole_number_choices_is_an_error():
    with pytest.raises(bpf.DefinitionError) as error:
        bpf.loads_process(PROCESS.replace("in: [397830003, 397830009]", "equals: 397830001"))
    assert "397830001 is not a choice of 'statusreason'" in str(error.value)


def test_true_is_not_the_choice_1():
    text = PROCESS.replace("choices: [397830003, 397830009]", "choices: [1, 2]").replace(
        "in: [397830003, 397830009]", "equals: true")
    with pytest.raises(bpf.DefinitionError) as error:
        bpf.loads_process(text)
    assert "True is not a choice of 'statusreason'" in str(error.value)


@pytest.mark.parametrize("choice", ["1.5", "true", "null", '" "'])
def test_choices_are_texts_or_whole_numbers_only(choice):
    text = PROCESS.replace("choices: [397830003, 397830009]", f"choices: [{choice}]").replace(
        "in: [397830003, 397830009]", "is_set: true")
    with pytest.raises(bpf.DefinitionError) as error:
        bpf.loads_process(text)
    assert "choices" in str(error.value)
