"""Gating, forward and backward moves, finishing and the flow lifecycle."""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest
from runtime_support import MANAGER, QUALIFIED, SELLER

import bpf


def snapshot(engine: bpf.Engine, flow: bpf.Flow, record: dict) -> tuple:
    return (
        flow.stage.id, flow.status, flow.traversed_path, flow.history, flow.revision,
        dict(record), engine.last_stage_change(record),
    )


def test_starting_enters_the_first_stage_and_writes_the_phase(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    assert flow.stage.id == "qualify"
    assert flow.status == "active"
    assert flow.traversed_path == ("qualify",)
    assert deal["stepname"] == "1-Qualify"
    (entry,) = flow.history
    assert (entry.kind, entry.from_stage, entry.to_stage, entry.actor) == (
        "start", None, "qualify", "maria",
    )


def test_next_is_refused_while_required_steps_are_empty(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(parentaccountid="", budgetamount=None, decisionmaker=False)
    before = snapshot(engine, flow, deal)
    with pytest.raises(bpf.StageGateError) as refused:
        flow.next(actor=SELLER)
    assert [s.field for s in refused.value.missing] == [
        "parentaccountid", "budgetamount", "decisionmaker",
    ]
    assert "Identify Account (parentaccountid)" in str(refused.value)
    assert isinstance(refused.value, bpf.TransitionError)
    assert refused.value.reason == "gate"
    assert snapshot(engine, flow, deal) == before


@pytest.mark.parametrize("empty", [None, "", "   ", [], {}, ()])
def test_every_empty_value_fails_the_gate(engine, deal, empty):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, parentaccountid=empty)
    assert [s.field for s in flow.missing()] == ["parentaccountid"]
    with pytest.raises(bpf.StageGateError):
        flow.next(actor=SELLER)


@pytest.mark.parametrize("mark", [False, None, "yes", 1])
def test_a_required_box_must_be_marked_true(engine, deal, mark):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, decisionmaker=mark)
    assert [s.field for s in flow.missing()] == ["decisionmaker"]


def test_next_moves_one_stage_once_the_gate_is_satisfied(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    assert flow.missing() == []
    assert flow.next(actor=SELLER).id == "develop"
    assert flow.traversed_path == ("qualify", "develop")
    assert deal["stepname"] == "2-Develop"
    assert flow.history[-1].kind == "next"


def test_moving_back_is_not_gated_and_cuts_the_path(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, customerneed="laptops")
    flow.next(actor=SELLER)
    flow.next(actor=SELLER)
    deal.update(customerneed="", parentaccountid=None)
    assert flow.previous(actor=SELLER).id == "develop"
    assert flow.traversed_path == ("qualify", "develop")
    assert deal["stepname"] == "2-Develop"
    assert flow.set_active("qualify", actor=SELLER).id == "qualify"
    assert flow.traversed_path == ("qualify",)
    assert [h.kind for h in flow.history] == ["start", "next", "next", "previous", "set_active"]


def test_previous_at_the_first_stage_is_refused(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    with pytest.raises(bpf.TransitionError) as refused:
        flow.previous(actor=SELLER)
    assert refused.value.reason == "beginning"


def test_set_active_only_returns_to_a_traversed_stage(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    flow.next(actor=SELLER)
    before = snapshot(engine, flow, deal)
    for stage, reason in [("close", "unreachable"), ("executive-review", "unreachable"),
                          ("develop", "active")]:
        with pytest.raises(bpf.TransitionError) as refused:
            flow.set_active(stage, actor=SELLER)
        assert refused.value.reason == reason
    with pytest.raises(bpf.UnknownStageError):
        flow.set_active("nowhere", actor=SELLER)
    assert snapshot(engine, flow, deal) == before


def walk_to_close(flow: bpf.Flow, deal: dict) -> None:
    deal.update(QUALIFIED, customerneed="laptops")
    while flow.stage.id != "close":
        flow.next(actor=SELLER)


def test_next_at_the_last_stage_is_refused(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    walk_to_close(flow, deal)
    with pytest.raises(bpf.TransitionError) as refused:
        flow.next(actor=SELLER)
    assert refused.value.reason == "end"


def test_finish_only_at_the_last_stage(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    with pytest.raises(bpf.TransitionError) as refused:
        flow.finish("won", actor=SELLER)
    assert refused.value.reason == "end"
    assert flow.status == "active"
    assert "statecode" not in deal


def test_finishing_with_an_outcome_closes_the_record(engine, deal, clock):
    flow = engine.start("deal", deal, actor=SELLER)
    walk_to_close(flow, deal)
    clock.advance(days=1)
    flow.finish("won", actor=MANAGER)
    assert flow.status == "finished"
    assert flow.outcome == "won"
    assert flow.completed_at == clock.now
    assert (deal["statecode"], deal["statuscode"]) == ("won", "won")
    assert flow.history[-1][4:8] == ("finish", "close", "close", "4-Close")


def test_an_unknown_outcome_is_refused(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    walk_to_close(flow, deal)
    with pytest.raises(bpf.TransitionError) as refused:
        flow.finish("postponed", actor=SELLER)
    assert refused.value.reason == "outcome"
    assert "won, lost" in str(refused.value)
    assert flow.status == "active"


def test_a_finished_or_aborted_flow_does_not_move(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    flow.abandon(actor=SELLER)
    assert flow.status == "aborted"
    for move in (lambda: flow.next(actor=SELLER), lambda: flow.previous(actor=SELLER),
                 lambda: flow.set_active("qualify", actor=SELLER),
                 lambda: flow.abandon(actor=SELLER), lambda: flow.finish(actor=SELLER)):
        with pytest.raises(bpf.TransitionError) as refused:
            move()
        assert refused.value.reason == "status"
    flow.reactivate(actor=SELLER)
    assert (flow.status, flow.stage.id, flow.completed_at) == ("active", "qualify", None)
    with pytest.raises(bpf.TransitionError):
        flow.reactivate(actor=SELLER)


def test_reactivating_a_finished_flow_returns_it_to_its_stage(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    walk_to_close(flow, deal)
    flow.finish("lost", actor=SELLER)
    flow.reactivate(actor=SELLER)
    assert (flow.status, flow.stage.id, flow.outcome) == ("active", "close", None)
    flow.previous(actor=SELLER)
    assert flow.stage.id == "propose"


def test_history_is_stamped_with_aware_utc_times_from_the_clock(engine, deal, clock):
    flow = engine.start("deal", deal, actor=SELLER)
    clock.advance(hours=3)
    deal.update(QUALIFIED)
    flow.next(actor=SELLER)
    assert [h.at for h in flow.history] == [clock.now - timedelta(hours=3), clock.now]
    assert all(h.at.tzinfo is UTC for h in flow.history)
    assert flow.stage_started_at == clock.now


def test_time_in_stage_adds_up_every_visit(engine, deal, clock):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    clock.advance(hours=2)
    flow.next(actor=SELLER)
    clock.advance(hours=5)
    flow.previous(actor=SELLER)
    clock.advance(hours=1)
    assert flow.time_in_stage("qualify") == timedelta(hours=3)
    assert flow.time_in_stage("develop") == timedelta(hours=5)
    assert flow.time_in_stage("close") == timedelta(0)
    flow.abandon(actor=SELLER)
    clock.advance(hours=10)  # the clock stops while the flow is aborted
    assert flow.time_in_stage("qualify") == timedelta(hours=3)


def test_a_naive_clock_is_refused(new_engine, deal):
    from datetime import datetime

    from runtime_support import SALES

    engine = new_engine(clock=lambda: datetime(2026, 1, 1))
    engine.register(bpf.loads_process(SALES))
    with pytest.raises(bpf.BpfError, match="naive"):
        engine.start("deal", deal, actor=SELLER)
    assert engine.flows(deal) == []
