"""Every real export in shared/corpora/dynamics-bpf converts, loads, and runs end to end.

The corpus lives outside the repository (``shared/corpora/dynamics-bpf`` beside the checkout,
or wherever BPF_DYNAMICS_CORPUS points); its README says where each file comes from.
"""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest

import bpf
from bpf.interop.dynamics import convert


def _corpus() -> Path | None:
    here = Path(__file__).resolve()
    candidates = [os.environ.get("BPF_DYNAMICS_CORPUS"),
                  here.parents[2] / "shared/corpora/dynamics-bpf",
                  here.parents[3] / "shared/corpora/dynamics-bpf"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "README.md").is_file():
            return Path(candidate)
    return None


CORPUS = _corpus()
#: CI sets BPF_REQUIRE_DYNAMICS_CORPUS=1: there a missing corpus fails instead of skipping.
REQUIRED = os.environ.get("BPF_REQUIRE_DYNAMICS_CORPUS") == "1"
pytestmark = pytest.mark.skipif(
    CORPUS is None and not REQUIRED,
    reason="dynamics-bpf corpus not found: set BPF_DYNAMICS_CORPUS or put shared/ beside the "
           "checkout",
)
XAMLS = sorted((CORPUS or Path()).glob("**/Workflows/*.xaml")) if CORPUS else []

#: What the corpus README says each flow holds: unique name, stages (name, table, category),
#: steps, required steps, conditional branches.
EXPECTED = {
    "leadtoopportunitysalesprocess": (
        [("Qualify", "lead", "Qualify"), ("Develop", "opportunity", "Develop"),
         ("Propose", "opportunity", "Propose"), ("Close", "opportunity", "Close")], 20, 7, 0),
    "bac_packagereviewprocess": (
        [("Submission", "bac_package", None), ("Validation", "bac_package", None),
         ("Determination", "bac_package", None)], 3, 1, 0),
    "cttech_internalpurchaserequisitionof95": (
        [("New OF95 - Stage 1", "cttech_internalpurchaserequisition", "Qualify"),
         ("Pending Approval Decision - Stage 2", "cttech_internalpurchaserequisition",
          "Identify"),
         ("OF95 Stage 2", "cttech_internalpurchaserequisition", None),
         ("Stage 2 Step 1 Approval", "cttech_approvaluser", "Research"),
         ("Stage 2 Step 2 Approval", "cttech_approvaluser", "Research"),
         ("Approval Decision - Stage 2", "cttech_internalpurchaserequisition", "Approval"),
         ("Approved - Stage 3", "cttech_internalpurchaserequisition", "Approval"),
         ("Accounting & Approval Review OF95 - Stage 5", "cttech_fiscalreview", "Identify"),
         ("Rejected - Stage 3", "cttech_internalpurchaserequisition", "Approval"),
         ("Rejected OF95 - Stage Closing", "cttech_internalpurchaserequisition", "Close"),
         ("OF95 Request Closed", "cttech_internalpurchaserequisition", "Close")], 22, 13, 2),
}


def test_the_corpus_holds_the_three_flows():
    assert len(XAMLS) == 3


def filled(step: bpf.Step) -> object:
    """A value that satisfies a required step of this type."""
    if step.type == "choice":
        return step.choices[0]
    return {"boolean": True, "number": 1, "money": 1000, "date": datetime.date(2025, 1, 1),
            "lookup": "ref-1"}.get(step.type, "filled in")


def run_to_the_end(definition: bpf.ProcessDefinition) -> list[str]:
    """Fill the required steps of each stage and move on until the last stage; the path."""
    engine = bpf.Engine()
    engine.register(definition)
    flow = engine.start(definition.process, {"id": "rec-0"})
    made = 0
    while not flow.is_last_stage:
        for step in flow.stage.required_steps:
            flow.record[step.field] = filled(step)
        try:
            flow.next()
        except bpf.TransitionError as refused:
            assert refused.reason == "entity", refused  # a stage on another table: its record
            made += 1
            flow.next(record={"id": f"rec-{made}"})
    for step in flow.stage.required_steps:
        flow.record[step.field] = filled(step)
    flow.finish()
    assert not flow.is_active
    return list(flow.traversed_path)


@pytest.mark.parametrize("xaml", XAMLS, ids=[p.name.split("-")[0] for p in XAMLS])
def test_each_flow_converts_loads_and_runs_to_its_last_stage(xaml, tmp_path):
    (conversion,) = convert(xaml)
    stages, steps, required, branches = EXPECTED[conversion.process]
    path = tmp_path / conversion.filename
    path.write_text(conversion.yaml, encoding="utf-8")
    definition = bpf.load_process(path)
    assert definition == conversion.definition
    assert [(s.name, s.entity, s.category) for s in definition.stages] == stages
    assert sum(len(s.steps) for s in definition.stages) == steps
    assert sum(len(s.required_steps) for s in definition.stages) == required
    assert sum(len(s.next) - 1 for s in definition.stages if len(s.next) > 1) == branches
    walked = run_to_the_end(definition)
    assert walked[0] == definition.first_stage.id
    assert definition.is_last(walked[-1]) and len(walked) >= 3


def test_the_lead_to_opportunity_row_comes_from_the_customizations_excerpt():
    (xaml,) = [p for p in XAMLS if p.name.startswith("411")]
    (conversion,) = convert(xaml)
    assert conversion.definition.name == "411 Lead to Opportunity Sales BPF"
    assert conversion.definition.description.startswith("This is the default process flow")
    qualify = conversion.definition.stage("qualify")
    assert [(s.field, s.label, s.type, s.required) for s in qualify.steps][:4] == [
        ("parentcontactid", "Existing Contact?", "lookup", False),
        ("parentaccountid", "Existing Account?", "lookup", False),
        ("purchasetimeframe", "Purchase Timeframe", "number", True),
        ("budgetamount", "Estimated Budget", "money", True),
    ]
    assert conversion.losses[0].startswith("the move from 'Qualify' to 'Develop' follows the "
                                           "relationship 'opportunity_originating_lead'")


def test_the_purchase_requisition_keeps_its_branches_and_option_set_codes():
    (folder,) = [p for p in (CORPUS or Path()).glob("tsykes-ctecs/*") if p.is_dir()]
    (conversion,) = convert(folder)
    definition = conversion.definition
    first = definition.stage("new-of95-stage-1")
    assert isinstance(first.next[0].when, bpf.All) and first.next[1].when is None
    assert "{all: [{field: cttech_purchaserequisitiontype, equals: 397830000}, " \
           "{field: cttech_of95statusreason, in: [397830003, 397830009]}]}" in conversion.yaml
    assert [b.stage for b in first.next] == ["pending-approval-decision-stage-2", "of95-stage-2"]
    decision = definition.stage("approval-decision-stage-2")
    assert [b.stage for b in decision.next] == ["approved-stage-3", "rejected-stage-3"]
    assert definition.stage("approval-decision-stage-2").phase == "8-Approval"
    engine = bpf.Engine()
    engine.register(definition)
    record = {"id": "req-1", "cttech_purchaserequisitiontype": 397830000,
              "cttech_of95statusreason": 397830009, "cttech_grantfunding": 1,
              "cttech_emailaddress": "it@example.com"}
    flow = engine.start(definition.process, record)
    flow.next()
    assert flow.stage.id == "pending-approval-decision-stage-2"
    flow.next()
    record["cttech_of95statusreason"] = 397830003
    flow.next()
    assert flow.stage.id == "approved-stage-3"
