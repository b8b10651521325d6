"""Roles, hooks and stage actions, and what a record may be."""

from __future__ import annotations

import dataclasses

import attrs
import pytest
from runtime_support import INTRUDER, MANAGER, QUALIFIED, SALES, SELLER

import bpf

ACTIONS = SALES.replace(
    "    category: Develop\n",
    "    category: Develop\n    on_enter: [notify-team]\n    on_exit: [log-exit]\n",
)


# -- roles ---------------------------------------------------------------------------------------


def test_starting_and_moving_need_one_of_the_process_roles(engine, deal):
    for who in (None, INTRUDER):
        with pytest.raises(bpf.AccessDenied, match="salesperson"):
            engine.start("deal", deal, actor=who)
    assert engine.flows(deal) == []
    flow = engine.start("deal", deal, actor=MANAGER)
    deal.update(QUALIFIED)
    for move in (lambda a: flow.next(actor=a), lambda a: flow.abandon(actor=a)):
        with pytest.raises(bpf.AccessDenied):
            move(INTRUDER)
        with pytest.raises(bpf.AccessDenied):
            move(None)
    assert (flow.stage.id, flow.status, len(flow.history)) == ("qualify", "active", 1)
    flow.next(actor=SELLER)
    assert flow.history[-1].actor == "maria"


def test_a_process_without_roles_lets_anyone_move(new_engine, deal):
    engine = new_engine()
    engine.register(bpf.loads_process(SALES.replace("roles: [salesperson, sales-manager]\n", "")))
    flow = engine.start("deal", deal)
    assert flow.history[0].actor is None


# -- hooks ---------------------------------------------------------------------------------------


def test_a_stage_changing_handler_cancels_the_move(engine, deal):
    def veto(change: bpf.FlowEvent) -> None:
        if change.to_stage == "develop":
            raise bpf.Cancel("develop is frozen this quarter")

    engine.on("stage_changing", veto)
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    with pytest.raises(bpf.Cancel, match="frozen"):
        flow.next(actor=SELLER)
    assert (flow.stage.id, len(flow.history), deal["stepname"]) == ("qualify", 1, "1-Qualify")


def test_hooks_see_each_change_once(engine, deal):
    seen = []
    for event in bpf.runtime.engine.EVENTS:
        engine.on(event, lambda c: seen.append((c.event, c.kind, c.from_stage, c.to_stage,
                                                c.from_status, c.to_status)))
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    flow.next(actor=SELLER)
    flow.abandon(actor=SELLER)
    assert seen == [
        ("stage_changing", "start", None, "qualify", "active", "active"),
        ("stage_changed", "start", None, "qualify", "active", "active"),
        ("stage_changing", "next", "qualify", "develop", "active", "active"),
        ("stage_changed", "next", "qualify", "develop", "active", "active"),
        ("status_changing", "abandon", "develop", "develop", "active", "aborted"),
        ("status_changed", "abandon", "develop", "develop", "active", "aborted"),
    ]


def test_a_status_changing_handler_cancels_the_change(engine, deal):
    engine.on("status_changing", lambda c: (_ for _ in ()).throw(bpf.Cancel("no")))
    flow = engine.start("deal", deal, actor=SELLER)
    with pytest.raises(bpf.Cancel):
        flow.abandon(actor=SELLER)
    assert flow.status == "active"


def test_a_failing_handler_is_reported_as_a_hook_error(engine, deal):
    def broken(change):
        raise ValueError("boom")

    engine.on("stage_changing", broken)
    with pytest.raises(bpf.HookError, match="boom") as failed:
        engine.start("deal", deal, actor=SELLER)
    assert isinstance(failed.value.__cause__, ValueError)
    assert engine.flows(deal) == []
    assert "stepname" not in deal


def test_unknown_events_are_refused(engine):
    with pytest.raises(bpf.RegistrationError, match="stage_changed"):
        engine.on("stage_change", print)


def test_stage_actions_run_on_exit_and_on_enter(new_engine, deal):
    calls = []
    engine = new_engine()
    engine.actions["notify-team"] = lambda c: calls.append(("enter", c.to_stage, c.record["id"]))
    engine.actions["log-exit"] = lambda c: calls.append(("exit", c.from_stage))
    engine.register(bpf.loads_process(ACTIONS))
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, customerneed="x")
    flow.next(actor=SELLER)
    flow.next(actor=SELLER)
    assert calls == [("enter", "develop", "opp-1"), ("exit", "develop")]


def test_an_unknown_action_fails_at_register(new_engine):
    engine = new_engine()
    engine.actions["log-exit"] = print
    with pytest.raises(bpf.RegistrationError, match="notify-team"):
        engine.register(bpf.loads_process(ACTIONS))


def test_a_failing_action_undoes_the_move(new_engine, deal):
    engine = new_engine()

    def notify(change):
        raise ConnectionError("mail server down")

    engine.actions.update({"notify-team": notify, "log-exit": print})
    engine.register(bpf.loads_process(ACTIONS))
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    with pytest.raises(bpf.HookError, match=r"notify-team.*mail server down"):
        flow.next(actor=SELLER)
    assert (flow.stage.id, flow.traversed_path, flow.revision) == ("qualify", ("qualify",), 1)
    assert deal["stepname"] == "1-Qualify"
    assert [h.kind for h in flow.history] == ["start"]
    assert engine.last_stage_change(deal).kind == "start"
    # The engine is still usable and the flow moves once the action works.
    engine.actions["notify-team"] = print
    assert len(engine.flows(deal)) == 1


# -- records -------------------------------------------------------------------------------------


@attrs.define
class AttrsDeal:
    id: str
    parentaccountid: str | None = None
    budgetamount: float | None = None
    decisionmaker: bool = False
    stepname: str | None = None


@dataclasses.dataclass(frozen=True)
class FrozenDeal:
    id: str


def test_any_object_with_an_id_is_a_record(engine):
    record = AttrsDeal("opp-7", "acc", 10.0, True)
    flow = engine.start("deal", record, actor=SELLER)
    assert record.stepname == "1-Qualify"
    flow.next(actor=SELLER)
    assert record.stepname == "2-Develop"
    assert engine.flows("opp-7") == [flow]


def test_a_record_without_an_id_is_refused(engine):
    with pytest.raises(bpf.RecordError, match="id"):
        engine.start("deal", {"name": "no id"}, actor=SELLER)


def test_a_record_that_cannot_take_the_pipeline_field_changes_nothing(engine):
    with pytest.raises(bpf.RecordError, match="stepname"):
        engine.start("deal", FrozenDeal("opp-8"), actor=SELLER)
    assert engine.flows("opp-8") == []
