"""Records are (entity, id); stale clicks change nothing; the process bar view; Dynamics'
gated Finish; role before status."""

from __future__ import annotations

import json

import jsonschema
import pytest
from runtime_support import LEAD, QUALIFIED, SALES, SELLER

import bpf
from bpf.runtime.view import view_schema


@pytest.fixture
def both(new_engine):
    """An engine running a lead process and an opportunity process."""
    engine = new_engine()
    engine.register(bpf.loads_process(SALES, source="deal.yaml"))
    with pytest.warns(bpf.PipelineFieldWarning, match="both write opportunity.stepname"):
        engine.register(bpf.loads_process(LEAD, source="lead.yaml"))
    return engine


def test_a_lead_and_an_opportunity_with_one_id_are_two_records(both):
    lead, opportunity = {"id": 42, "subject": "Renewal"}, {"id": 42, "name": "Renewal"}
    lead_flow = both.start("lead-flow", lead)
    deal_flow = both.start("deal", opportunity, actor=SELLER)
    opportunity.update(QUALIFIED)
    deal_flow.next(actor=SELLER)

    assert both.flows(lead, entity="lead") == [lead_flow]
    assert both.flows(opportunity, entity="opportunity") == [deal_flow]
    assert both.last_stage_change(42, entity="lead").to_stage == "qualify"
    assert both.last_stage_change(42, entity="opportunity").to_stage == "develop"
    assert both.active_flow("42", entity="lead") is lead_flow
    assert both.active_flow("42", entity="opportunity") is deal_flow
    assert (lead["stepname"], opportunity["stepname"]) == ("1-Qualify", "2-Develop")
    # Which 42? bpf says it cannot tell rather than guess.
    with pytest.raises(bpf.RecordError, match="several entities"):
        both.flows(42)
    with pytest.raises(bpf.RecordError, match="entity="):
        both.last_stage_change(lead)


def test_a_bound_class_says_its_records_entity(both):
    class Lead:
        def __init__(self, id: int) -> None:
            self.id, self.subject = id, "Renewal"

    both.entity("lead", model=Lead)
    lead = Lead(42)
    flow = both.start("lead-flow", lead)
    both.start("deal", {"id": 42}, actor=SELLER)
    assert both.flows(lead) == [flow]
    assert both.last_stage_change(lead).process == "lead-flow"
    with pytest.raises(bpf.RecordError, match="starts on a opportunity record"):
        both.start("deal", lead, actor=SELLER)


def test_a_binding_with_load_binds_flows_read_back_from_the_store(new_persistent_engine):
    table = {"lead-1": {"id": "lead-1", "subject": "Renewal"}}
    new_engine = new_persistent_engine
    first = new_engine()
    first.register(bpf.loads_process(LEAD, source="lead.yaml"))
    first.start("lead-flow", table["lead-1"]).next(record={"id": "opp-1"})
    table["opp-1"] = {"id": "opp-1", "stepname": "2-Develop"}

    again = new_engine()
    again.register(bpf.loads_process(LEAD, source="lead.yaml"))
    again.entity("lead", load=table.__getitem__)
    again.entity("opportunity", load=table.__getitem__)
    flow = again.flows("lead-1", entity="lead")[0]  # by id only: nothing bound by hand
    flow.next()
    assert flow.stage.id == "close"
    assert table["opp-1"]["stepname"] == "4-Close"
    assert flow.records == {"lead": table["lead-1"], "opportunity": table["opp-1"]}


def test_a_second_lead_cannot_move_into_an_opportunity_that_has_the_flow(both):
    opportunity = {"id": "opp-1"}
    first = both.start("lead-flow", {"id": "lead-1", "subject": "a"})
    first.next(record=opportunity)
    second = both.start("lead-flow", {"id": "lead-2", "subject": "b"})
    with pytest.raises(bpf.TransitionError, match="already has a 'lead-flow' flow") as refused:
        second.next(record=opportunity)
    assert refused.value.reason == "exists"
    assert second.stage.id == "qualify" and len(second.history) == 1
    assert both.flows(opportunity, entity="opportunity") == [first]


@pytest.mark.parametrize("operation", ["next", "previous", "abandon", "finish", "reactivate"])
def test_a_stale_click_raises_a_concurrency_error_and_changes_nothing(engine, deal, operation):
    deal.update(QUALIFIED, customerneed="laptops")
    flow = engine.start("deal", deal, actor=SELLER)
    flow.next(actor=SELLER)
    shown = flow.view(SELLER)
    flow.next(actor=SELLER)  # the first click
    before = (flow.stage.id, flow.revision, flow.status, len(flow.history), deal["stepname"])
    calls = {
        "next": lambda: flow.next(actor=SELLER, expected_revision=shown["revision"]),
        "previous": lambda: flow.previous(actor=SELLER, expected_stage=shown["stage"]),
        "abandon": lambda: flow.abandon(actor=SELLER, expected_revision=shown["revision"]),
        "finish": lambda: flow.finish(actor=SELLER, expected_stage="develop"),
        "reactivate": lambda: flow.reactivate(actor=SELLER, expected_revision=2),
    }
    with pytest.raises(bpf.ConcurrencyError, match="changed since it was shown"):
        calls[operation]()
    assert (flow.stage.id, flow.revision, flow.status, len(flow.history),
            deal["stepname"]) == before
    flow.next(actor=SELLER, expected_stage="propose", expected_revision=3)  # what it is now
    assert flow.stage.id == "close"


def test_the_view_is_json_and_matches_its_schema_at_every_step(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    views = [flow.view(SELLER)]
    first = views[0]
    assert first["stage"] == "qualify" and first["revision"] == 1
    assert [s["state"] for s in first["stages"]] == ["active", "predicted", "predicted",
                                                     "predicted"]
    assert first["actions"]["next"] == {
        "allowed": False, "reason": "gate",
        "missing": ["parentaccountid", "budgetamount", "decisionmaker"],
    }
    assert first["actions"]["previous"] is False and first["actions"]["finish"] == []
    deal.update(QUALIFIED, budgetamount=500_000)  # the branch to executive review
    views.append(flow.view(SELLER))
    assert [s["id"] for s in views[-1]["stages"]][:2] == ["qualify", "executive-review"]
    assert views[-1]["actions"]["next"] == {"allowed": True, "missing": []}
    deal.update(approvedby="ceo", customerneed="x")
    for _ in range(4):
        flow.next(actor=SELLER)
        views.append(flow.view(SELLER))
    last = views[-1]
    assert [s["state"] for s in last["stages"]] == ["done"] * 4 + ["active"]
    assert last["actions"]["finish"] == ["won", "lost"]
    assert last["actions"]["set_active"] == ["qualify", "executive-review", "develop",
                                             "propose"]
    flow.finish("won", actor=SELLER)
    views.append(flow.view(SELLER))
    assert views[-1]["status"] == "finished"
    assert views[-1]["actions"]["reactivate"] is True
    assert views[-1]["actions"]["next"]["allowed"] is False
    intruder = bpf.Actor("mallory", roles={"marketing"})
    views.append(flow.view(intruder))
    assert views[-1]["actions"]["reactivate"] is False
    for shown in views:
        jsonschema.validate(json.loads(json.dumps(shown)), view_schema())


def test_finish_is_gated_on_the_last_stages_required_steps(new_engine, deal):
    engine = new_engine()
    engine.register(bpf.loads_process(
        """
        process: case
        name: Case
        entity: incident
        stages:
          - {id: open, name: Open}
          - id: resolve
            name: Resolve
            steps: [{field: resolution, label: Resolution, required: true}]
        outcomes: {resolved: {set: {statecode: resolved}}}
        """, source="case.yaml"))
    case = {"id": "case-1"}
    flow = engine.start("case", case)
    flow.next()
    with pytest.raises(bpf.StageGateError) as refused:
        flow.finish("resolved")
    assert [s.field for s in refused.value.missing] == ["resolution"]
    assert flow.status == "active" and "statecode" not in case
    case["resolution"] = "replaced the part"
    flow.finish("resolved")
    assert (flow.status, case["statecode"]) == ("finished", "resolved")


def test_a_gate_says_which_values_are_invalid_and_why(new_engine):
    engine = new_engine()
    engine.register(bpf.loads_process(
        """
        process: change
        name: Change
        entity: change
        stages:
          - id: assess
            name: Assess
            steps:
              - {field: risk, label: Risk, type: choice, choices: [low, high], required: true}
              - {field: cost, label: Cost, type: money, required: true}
          - {id: approve, name: Approve}
        """, source="change.yaml"))
    record = {"id": "c-1", "risk": "extreme", "cost": float("nan")}
    flow = engine.start("change", record)
    with pytest.raises(bpf.StageGateError) as refused:
        flow.next()
    assert set(refused.value.problems) == {"risk", "cost"}
    assert "not one of" in refused.value.problems["risk"]
    assert "Risk (risk) is not one of" in str(refused.value)
    record.update(risk="high", cost=1200)
    flow.next()
    assert flow.stage.id == "approve"


def test_the_role_is_checked_before_the_status(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    flow.abandon(actor=SELLER)
    intruder = bpf.Actor("mallory", roles={"marketing"})
    for call in (lambda: flow.next(actor=intruder), lambda: flow.abandon(actor=intruder),
                 lambda: flow.finish(actor=intruder), lambda: flow.previous(actor=intruder)):
        with pytest.raises(bpf.AccessDenied):
            call()


def test_migration_needs_one_of_the_processes_roles(engine, deal):
    engine.start("deal", deal, actor=SELLER)
    engine.register(bpf.loads_process(SALES.replace("name: Deal", "name: Deal\nversion: 2"),
                                      source="deal2.yaml"))
    for who in (None, bpf.Actor("mallory", roles={"marketing"})):
        with pytest.raises(bpf.AccessDenied):
            engine.migrate("deal", to_version=2, actor=who)
    assert engine.flow(deal, "deal").version == 1
    assert engine.migrate("deal", to_version=2, actor=SELLER) == 1
    assert engine.flow(deal, "deal").version == 2


def test_reactivating_a_won_opportunity_reopens_it(new_engine):
    engine = new_engine()
    engine.register(bpf.standard_process("opportunity-sales"))
    seller = bpf.Actor("maria", roles={"salesperson"})
    deal = {"id": "opp-1"}
    flow = engine.start("opportunity-sales", deal, actor=seller)
    for _ in range(3):
        flow.next(actor=seller)
    flow.finish("won", actor=seller)
    assert deal["statecode"] == "won"
    flow.reactivate(actor=seller)
    assert (flow.status, deal["statecode"]) == ("active", "open")
    assert flow.history[-1].kind == "reactivate"
