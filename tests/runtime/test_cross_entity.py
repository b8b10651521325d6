"""Stages on another entity: qualifying a lead moves the flow onto an opportunity."""

from __future__ import annotations

import pytest
from runtime_support import LEAD

import bpf


@pytest.fixture
def engine(new_engine):
    engine = new_engine()
    engine.register(bpf.loads_process(LEAD))
    return engine


@pytest.fixture
def lead():
    return {"id": "lead-1", "subject": "10 laptops"}


def test_entering_a_stage_on_another_entity_needs_its_record(engine, lead):
    flow = engine.start("lead-flow", lead)
    with pytest.raises(bpf.TransitionError) as refused:
        flow.next()
    assert refused.value.reason == "entity"
    assert "'opportunity'" in str(refused.value)
    assert flow.stage.id == "qualify"
    assert len(flow.history) == 1


def test_the_record_can_be_passed_to_next(engine, lead):
    flow = engine.start("lead-flow", lead)
    opportunity = {"id": "opp-9"}
    flow.next(record=opportunity)
    assert flow.stage.id == "develop"
    assert flow.record is opportunity
    assert flow.record_ids == {"lead": "lead-1", "opportunity": "opp-9"}
    assert opportunity["stepname"] == "2-Develop"
    assert lead["stepname"] == "1-Qualify"
    assert engine.flows(opportunity, entity="opportunity") == [flow]
    assert engine.flows(lead, entity="lead") == [flow]
    assert engine.last_stage_change(opportunity, entity="opportunity").to_stage == "develop"


def test_a_record_factory_creates_the_record(engine, lead):
    made = []

    def qualify(flow, leaving):
        made.append(leaving["id"])
        return {"id": f"opp-from-{leaving['id']}", "name": leaving["subject"]}

    engine.record_factory("opportunity", qualify)
    flow = engine.start("lead-flow", lead)
    flow.next()
    assert made == ["lead-1"]
    assert flow.record == {"id": "opp-from-lead-1", "name": "10 laptops", "stepname": "2-Develop"}
    # Moving back and forth reuses the record the flow already spans.
    flow.previous()
    flow.next()
    assert made == ["lead-1"]
    flow.next()
    flow.finish("won")
    assert flow.record["statecode"] == "won"
    assert "statecode" not in lead


def test_the_gate_reads_the_record_of_the_active_stage(engine, lead):
    flow = engine.start("lead-flow", lead)
    lead["subject"] = ""
    with pytest.raises(bpf.StageGateError):
        flow.next(record={"id": "opp-1", "subject": "filled on the wrong record"})


def test_a_different_record_for_a_spanned_entity_is_refused(engine, lead):
    flow = engine.start("lead-flow", lead)
    flow.next(record={"id": "opp-1"})
    flow.previous()
    with pytest.raises(bpf.TransitionError, match="opp-1"):
        flow.next(record={"id": "opp-2"})
    assert flow.stage.id == "qualify"
