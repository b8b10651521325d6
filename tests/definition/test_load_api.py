"""load_process / loads_process: what they return and how they fail."""

from __future__ import annotations

import textwrap
from pathlib import Path

import attrs
import pytest

import bpf

TEXT = textwrap.dedent("""\
    process: small-sale
    name: Small Sale
    entity: opportunity
    description: A short one.
    pipeline_field: stepname
    roles: [salesperson]
    stages:
      - id: qualify
        name: Qualify
        category: Qualify
        probability: 10
        forecast_category: pipeline
        guidance: Check the budget.
        stale_after_days: 7
        on_enter: [notify-team]
        on_exit: [log]
        steps:
          - field: budgetamount
            label: Budget
            type: money
            required: true
            description: In euros.
          - field: purchaseprocess
            label: Purchase Process
            type: choice
            choices: [individual, committee]
        next:
          - when:
              any:
                - {field: budgetamount, gte: 100000}
                - not: {field: purchaseprocess, equals: individual}
            stage: review
          - stage: close
      - id: review
        name: Review
        phase: Under review
      - id: close
        name: Close
        category: Close
    outcomes:
      won: {set: {statecode: won}}
      lost: {}
    """)


def test_loads_process_builds_the_frozen_model():
    process = bpf.loads_process(TEXT, "small.yaml")
    assert isinstance(process, bpf.ProcessDefinition)
    assert (process.process, process.name, process.entity, process.version) == (
        "small-sale", "Small Sale", "opportunity", 1
    )
    assert (process.description, process.pipeline_field, process.roles) == (
        "A short one.", "stepname", ("salesperson",)
    )
    assert process.source == "small.yaml"
    assert process.extends is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        process.name = "Other"  # type: ignore[misc]


def test_stage_fields():
    qualify = bpf.loads_process(TEXT).stage("qualify")
    assert (qualify.name, qualify.entity, qualify.category, qualify.phase) == (
        "Qualify", "opportunity", "Qualify", "1-Qualify"
    )
    assert (qualify.probability, qualify.forecast_category, qualify.stale_after_days) == (
        10.0, "pipeline", 7.0
    )
    assert (qualify.guidance, qualify.on_enter, qualify.on_exit) == (
        "Check the budget.", ("notify-team",), ("log",)
    )
    assert qualify.steps == (
        bpf.Step("budgetamount", "Budget", "money", True, (), "In euros."),
        bpf.Step("purchaseprocess", "Purchase Process", "choice", False,
                 ("individual", "committee")),
    )


def test_conditions_are_data():
    branches = bpf.loads_process(TEXT).branches("qualify")
    assert branches == (
        bpf.Branch("review", bpf.AnyOf((
            bpf.Compare("budgetamount", "gte", 100000),
            bpf.Not(bpf.Compare("purchaseprocess", "equals", "individual")),
        ))),
        bpf.Branch("close"),
    )
    when = branches[0].when
    assert when is not None
    assert when.evaluate({"budgetamount": 5, "purchaseprocess": "committee"}.get)
    assert not when.evaluate({"budgetamount": 5, "purchaseprocess": "individual"}.get)


def test_phases():
    process = bpf.loads_process(TEXT)
    # explicit phase, then category position (default categories), then the name
    assert [s.phase for s in process.stages] == ["1-Qualify", "Under review", "4-Close"]
    no_category = bpf.loads_process(TEXT.replace("    phase: Under review\n", ""))
    assert no_category.stage("review").phase == "Review"


def test_defaults():
    process = bpf.loads_process(textwrap.dedent("""\
        process: bare
        name: Bare
        entity: account
        stages:
          - id: one
            name: One
            steps:
              - {field: note, label: Note}
        """))
    assert (process.version, process.roles, process.pipeline_field, process.categories) == (
        1, (), None, bpf.definition.model.DEFAULT_CATEGORIES
    )
    assert dict(process.outcomes) == {}
    stage = process.stage("one")
    assert (stage.entity, stage.category, stage.end, stage.next, stage.probability) == (
        "account", None, False, (), None
    )
    assert stage.steps == (bpf.Step("note", "Note", "text", False, (), None),)


def test_outcomes():
    outcomes = bpf.loads_process(TEXT).outcomes
    assert outcomes["won"] == bpf.Outcome("won", {"statecode": "won"})
    assert dict(outcomes["lost"].set) == {}


def test_load_process_from_a_path(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(TEXT, encoding="utf-8")
    assert bpf.load_process(path).source == str(path)
    assert bpf.load_process(str(path)) == bpf.load_process(path)


def test_problems_name_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(TEXT.replace("entity: opportunity", "entity: [opportunity]"))
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(path)
    assert str(info.value) == f"{path}:3:9: `entity` must be text, not a list"


def test_missing_file_is_a_definition_error(tmp_path):
    path = tmp_path / "missing.yaml"
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(path)
    assert str(info.value) == f"{path}:1:1: cannot read the file: No such file or directory"


def test_a_directory_is_a_definition_error(tmp_path):
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.load_process(tmp_path)
    assert str(info.value) == f"{tmp_path}:1:1: cannot read the file: Is a directory"


def test_definition_error_is_a_bpf_error():
    with pytest.raises(bpf.BpfError):
        bpf.loads_process("process: [")


def test_an_unexpected_failure_is_still_a_definition_error(monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr("bpf.definition.loader.check_process", broken)
    with pytest.raises(bpf.DefinitionError) as info:
        bpf.loads_process(TEXT, "small.yaml")
    assert str(info.value) == (
        "small.yaml:1:1: cannot load this definition: unexpected RuntimeError: boom"
    )
    assert isinstance(info.value.__cause__, RuntimeError)


def test_public_names():
    for name in ("load_process", "loads_process", "standard_process", "standard_processes"):
        assert name in bpf.__all__
        assert callable(getattr(bpf, name))


def test_repository_layout_is_what_the_tests_expect():
    assert (Path(__file__).parents[2] / "processes" / "opportunity-sales.yaml").is_file()
