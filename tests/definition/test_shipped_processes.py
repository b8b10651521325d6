"""The processes shipped in processes/ (the package bpf.processes), checked against Dynamics 365."""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path

import pytest

import bpf

REPO = Path(__file__).parents[2]

#: The Opportunity Sales Process as /work/shared/reference/README.md lists it: (field, type).
OPPORTUNITY_STEPS = {
    "qualify": [
        ("parentcontactid", "lookup"), ("parentaccountid", "lookup"),
        ("purchasetimeframe", "choice"), ("budgetamount", "money"),
        ("purchaseprocess", "choice"), ("decisionmaker", "boolean"), ("description", "text"),
    ],
    "develop": [
        ("customerneed", "text"), ("proposedsolution", "text"),
        ("identifycustomercontacts", "boolean"), ("identifycompetitors", "boolean"),
    ],
    "propose": [
        ("identifypursuitteam", "boolean"), ("developproposal", "boolean"),
        ("completeinternalreview", "boolean"), ("presentproposal", "boolean"),
    ],
    "close": [
        ("completefinalproposal", "boolean"), ("presentfinalproposal", "boolean"),
        ("finaldecisiondate", "date"), ("sendthankyounote", "boolean"),
        ("filedebrief", "boolean"),
    ],
}


def test_standard_processes_are_sorted_by_name_and_cached():
    processes = bpf.standard_processes()
    assert [p.process for p in processes] == [
        "lead-to-opportunity", "opportunity-sales", "phone-to-case"
    ]
    assert bpf.standard_processes() is processes
    assert bpf.standard_process("opportunity-sales") is processes[1]


def test_unknown_standard_process_lists_the_known_ones():
    with pytest.raises(bpf.UnknownProcessError) as info:
        bpf.standard_process("opportunity-sale")
    assert str(info.value) == (
        "no shipped process 'opportunity-sale' (did you mean 'opportunity-sales'?); shipped "
        "processes: lead-to-opportunity, opportunity-sales, phone-to-case"
    )
    assert isinstance(info.value, LookupError)


def test_each_shipped_file_is_named_after_its_process():
    for entry in resources.files("bpf.processes").iterdir():
        if entry.name.endswith(".yaml"):
            assert bpf.standard_process(entry.name[:-5]).source == str(entry)


def test_shipped_processes_load_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for path in sorted((REPO / "processes").glob("**/*.yaml")):
            bpf.load_process(path)


def test_opportunity_sales_is_the_dynamics_process():
    process = bpf.standard_process("opportunity-sales")
    assert (process.name, process.entity, process.version) == (
        "Opportunity Sales Process", "opportunity", 1
    )
    assert process.pipeline_field == "stepname"
    assert process.roles == ("salesperson", "sales-manager")
    assert {s.id: [(x.field, x.type) for x in s.steps] for s in process.stages} == \
        OPPORTUNITY_STEPS
    assert [(s.category, s.phase) for s in process.stages] == [
        ("Qualify", "1-Qualify"), ("Develop", "2-Develop"), ("Propose", "3-Propose"),
        ("Close", "4-Close"),
    ]
    assert [s.probability for s in process.stages] == [10, 40, 70, 90]
    assert all(s.label for stage in process.stages for s in stage.steps)


def test_opportunity_sales_requires_nothing_as_dynamics_ships_it():
    process = bpf.standard_process("opportunity-sales")
    assert [s.required_steps for s in process.stages] == [(), (), (), ()]


def test_opportunity_sales_choices_and_outcomes():
    process = bpf.standard_process("opportunity-sales")
    qualify = process.stage("qualify")
    assert qualify.step("purchasetimeframe").choices == (
        "immediate", "this_quarter", "next_quarter", "this_year", "unknown"
    )
    assert qualify.step("purchaseprocess").choices == ("individual", "committee", "unknown")
    assert {name: dict(o.set) for name, o in process.outcomes.items()} == {
        "won": {"statecode": "won", "statuscode": "won"},
        "lost": {"statecode": "lost", "statuscode": "canceled"},
    }
    assert process.successors("qualify") == ("develop",)
    assert process.is_last("close")


def test_lead_to_opportunity_crosses_from_lead_to_opportunity():
    process = bpf.standard_process("lead-to-opportunity")
    assert process.entity == "lead"
    assert process.pipeline_field == "stepname"
    assert [(s.id, s.entity, s.phase) for s in process.stages] == [
        ("qualify", "lead", "1-Qualify"),
        ("develop", "opportunity", "2-Develop"),
        ("propose", "opportunity", "3-Propose"),
        ("close", "opportunity", "4-Close"),
    ]
    assert process.entities == ("lead", "opportunity")
    opportunity = bpf.standard_process("opportunity-sales")
    for stage in ("develop", "propose", "close"):
        assert process.stage(stage).steps == tuple(
            bpf.Step(s.field, s.label, s.type, s.required, s.choices)
            for s in opportunity.stage(stage).steps
        )


def test_phone_to_case_runs_on_the_case():
    process = bpf.standard_process("phone-to-case")
    assert process.entity == "incident"
    assert process.categories == ("Identify", "Research", "Resolve")
    assert [(s.id, s.phase) for s in process.stages] == [
        ("identify", "1-Identify"), ("research", "2-Research"), ("resolve", "3-Resolve")
    ]
    identify = process.stage("identify")
    assert (identify.step("customerid").type, identify.step("title").type) == ("lookup", "text")
    assert identify.step("caseorigincode").type == "choice"
    assert process.stage("research").step("kbarticleid").type == "lookup"
    assert set(process.outcomes) == {"resolved", "canceled"}


def test_the_examples_ship_in_the_package_too():
    examples = resources.files("bpf.processes").joinpath("examples")
    names = sorted(e.name for e in examples.iterdir() if e.name.endswith(".yaml"))
    assert "opportunity-gated.yaml" in names


@pytest.mark.parametrize("path", sorted((REPO / "tests" / "processes").glob("*.yaml")),
                         ids=lambda p: p.stem)
def test_the_test_processes_load(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        definition = bpf.load_process(path)
    assert definition.source == str(path)


def test_the_test_processes_cover_what_the_runtime_tests_need():
    folder = REPO / "tests" / "processes"
    branching = bpf.load_process(folder / "branching.yaml")
    assert branching.successors("qualify") == ("executive-review", "develop")
    assert branching.successors("executive-review") == ("develop",)
    assert bpf.load_process(folder / "cross-entity.yaml").entities == ("lead", "opportunity")
    assert bpf.load_process(folder / "roles.yaml").roles == ("salesperson", "sales-manager")
    actions = bpf.load_process(folder / "actions.yaml")
    assert actions.stage("setup").on_enter == ("create-workspace", "notify-team")
    assert actions.stage("welcome").on_exit == ("log-exit",)
