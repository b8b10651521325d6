"""Several flows on one record, the pipeline phase and the unambiguous per-flow answers."""

from __future__ import annotations

import warnings

import pytest
from runtime_support import QUALIFIED, REVIEW, SELLER

import bpf


@pytest.fixture
def both(engine):
    with pytest.warns(bpf.PipelineFieldWarning, match="opportunity.stepname"):
        engine.register(bpf.loads_process(REVIEW))
    return engine


def test_one_flow_per_process_and_record(engine, deal):
    engine.start("deal", deal, actor=SELLER)
    with pytest.raises(bpf.FlowExistsError):
        engine.start("deal", deal, actor=SELLER)
    assert len(engine.flows(deal)) == 1


def test_an_unknown_process_cannot_start(engine, deal):
    with pytest.raises(bpf.UnknownProcessError, match="deal"):
        engine.start("nope", deal, actor=SELLER)


def test_different_processes_run_at_once_each_at_its_own_stage(both, deal):
    sales = both.start("deal", deal, actor=SELLER)
    review = both.start("deal-review", deal)
    deal.update(QUALIFIED)
    sales.next(actor=SELLER)
    assert (sales.stage.id, review.stage.id) == ("develop", "research")
    assert [f.process.process for f in both.flows(deal)] == ["deal", "deal-review"]
    assert both.flow(deal, "deal-review") is review
    with pytest.raises(bpf.FlowNotFoundError):
        both.flow({"id": "other"}, "deal")


def test_the_pipeline_phase_holds_the_last_change_of_any_flow(both, deal):
    sales = both.start("deal", deal, actor=SELLER)
    assert deal["stepname"] == "1-Qualify"
    review = both.start("deal-review", deal)
    assert deal["stepname"] == "6-Research"
    deal.update(QUALIFIED)
    sales.next(actor=SELLER)
    assert deal["stepname"] == "2-Develop"
    review.next()
    assert deal["stepname"] == "7-Resolve"
    last = both.last_stage_change(deal)
    assert (last.process, last.to_stage, last.phase) == ("deal-review", "resolve", "7-Resolve")
    # The unambiguous answers: each flow's own stage.
    assert sales.stage.phase == "2-Develop"
    assert review.stage.phase == "7-Resolve"


def test_status_changes_do_not_count_as_stage_changes(both, deal):
    both.start("deal", deal, actor=SELLER)
    review = both.start("deal-review", deal)
    review.next()
    review.finish()
    assert both.last_stage_change(deal).kind == "next"
    assert deal["stepname"] == "7-Resolve"


def test_the_active_flow_is_the_last_started_or_switched_to(both, deal):
    assert both.active_flow(deal) is None
    sales = both.start("deal", deal, actor=SELLER)
    review = both.start("deal-review", deal)
    assert both.active_flow(deal) is review
    assert both.switch(deal, "deal", actor=SELLER) is sales
    assert both.active_flow(deal) is sales
    assert sales.stage.id == "qualify"  # switching keeps each flow's own stage


def test_switch_starts_the_process_when_the_record_has_none(both, deal):
    both.start("deal", deal, actor=SELLER)
    review = both.switch(deal, "deal-review")
    assert review.stage.id == "research"
    assert both.active_flow(deal) is review


def test_no_warning_for_processes_on_other_entities(engine):
    other = REVIEW.replace("entity: opportunity", "entity: incident").replace(
        "deal-review", "case-review"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        engine.register(bpf.loads_process(other))


def test_registering_the_same_definition_twice_is_harmless(engine):
    from runtime_support import SALES

    engine.register(bpf.loads_process(SALES))
    changed = SALES.replace("name: Deal\n", "name: Deal (changed)\n")
    with pytest.raises(bpf.RegistrationError, match="new version"):
        engine.register(bpf.loads_process(changed))


def test_a_hand_built_definition_with_a_broken_graph_is_refused(engine):
    broken = bpf.ProcessDefinition(
        "broken", "Broken", "opportunity",
        [bpf.Stage("a", "A", "opportunity", "a",
                   next=[bpf.Branch("b", bpf.Compare("x", "gt", 1))]),
         bpf.Stage("a", "A again", "opportunity", "a")],
    )
    with pytest.raises(bpf.RegistrationError) as refused:
        engine.register(broken)
    message = str(refused.value)
    assert "duplicate stage ids a" in message
    assert "unknown stage 'b'" in message
    assert "no default branch" in message
    with pytest.raises(bpf.UnknownProcessError):
        engine.start("broken", {"id": "x"})
