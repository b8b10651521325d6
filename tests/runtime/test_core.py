"""The move core decides without I/O; the engine applies; a flow's state is read-only."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest
from runtime_support import QUALIFIED, SALES, SELLER

import bpf
from bpf.runtime import changes, core
from bpf.runtime.compiled import compile_process
from bpf.store import FlowRow

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def compiled():
    return compile_process(bpf.loads_process(SALES, source="deal.yaml"), {})


def test_the_core_decides_a_move_from_a_row_and_field_values_alone(compiled):
    start = changes.start(compiled, "f-1", "opp-1", AT, SELLER)
    assert start.after.stage == "qualify" and start.after.revision == 1
    assert start.writes == (("stepname", "1-Qualify"),)

    refused = core.decide_next(compiled, start.after, {}.get, SELLER)
    assert isinstance(refused, core.Refusal)
    assert refused.reason == bpf.Reason.GATE == "gate"
    assert [s.field for s in refused.missing] == ["parentaccountid", "budgetamount",
                                                  "decisionmaker"]
    assert isinstance(refused.error(), bpf.StageGateError)

    big = dict(QUALIFIED, budgetamount=500_000)
    assert core.decide_next(compiled, start.after, big.get, SELLER) == "executive-review"
    target = core.decide_next(compiled, start.after, QUALIFIED.get, SELLER)
    change = changes.enter(compiled, start.after, "next", target, "opp-1", (), AT, SELLER)
    assert (change.after.stage, change.after.revision) == ("develop", 2)
    assert change.after.traversed == ("qualify", "develop")
    assert change.entry.kind == "next" and change.entry.actor == "maria"
    assert change.writes == (("stepname", "2-Develop"),)
    # The input row is a value: deciding changed nothing in it.
    assert start.after.stage == "qualify" and start.after.revision == 1


def test_the_core_refuses_with_the_one_vocabulary(compiled):
    state = changes.start(compiled, "f-1", "opp-1", AT, SELLER).after
    intruder = bpf.Actor("mallory", roles={"marketing"})
    assert core.decide_next(compiled, state, QUALIFIED.get, intruder).reason == "role"
    assert core.decide_previous(compiled, state, SELLER).reason == "beginning"
    assert core.decide_set_active(compiled, state, "qualify", SELLER).reason == "active"
    assert core.decide_set_active(compiled, state, "develop", SELLER).reason == "unreachable"
    assert core.decide_finish(compiled, state, None, SELLER, {}.get).reason == "end"
    aborted = changes.change_status(compiled, state, "abandon", "opp-1", AT, SELLER).after
    assert aborted.status == "aborted" and aborted.completed_at == AT
    assert core.decide_next(compiled, aborted, QUALIFIED.get, SELLER).reason == "status"
    assert core.decide_reactivate(compiled, aborted, SELLER) == {}


def test_every_refusal_error_carries_a_reason_from_one_enum():
    assert {bpf.AccessDenied.reason, bpf.Cancel.reason, bpf.FlowExistsError.reason} == {
        bpf.Reason.ROLE, bpf.Reason.CANCEL, bpf.Reason.EXISTS}
    assert bpf.TransitionError("x", reason="end").reason is bpf.Reason.END
    with pytest.raises(ValueError):
        bpf.TransitionError("x", reason="no-such-reason")


def test_a_flows_state_is_read_only(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    for name, value in [("status", "finished"), ("revision", 9), ("outcome", "won"),
                        ("stage_started_at", AT), ("id", "other")]:
        with pytest.raises(AttributeError):
            setattr(flow, name, value)
    assert flow.status == "active" and flow.revision == 1
    assert [e.kind for e in flow.history] == ["start"]


def test_a_stored_row_never_moves_a_live_flow_backwards(new_persistent_engine, deal):
    """A lookup inside a batch reads the committed row, older than the flow's uncommitted
    moves: it must leave the flow as it is, and the batch must commit."""
    engine = new_persistent_engine()
    engine.register(bpf.loads_process(SALES, source="deal.yaml"))
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, customerneed="laptops")
    with engine.batch():
        flow.next(actor=SELLER)
        assert engine.flows(deal)[0] is flow
        assert flow.stage.id == "develop"
        assert [f.stage.id for f in engine.iter_flows("deal")] == ["develop"]
        flow.next(actor=SELLER)
    assert flow.stage.id == "propose" and flow.revision == 3
    assert engine.store.get_flow(flow.id).revision == 3


@pytest.mark.sync_only(
    "an OS thread streaming while another moves, on one bpf.Engine; through the blocking face "
    "the two threads' calls would run one after another. The asyncio counterpart: "
    "tests/aio/test_async_tasks.py::test_streaming_flows_while_other_tasks_move_them_gives_no_"
    "false_conflicts")
def test_streaming_flows_while_another_thread_moves_them_gives_no_false_conflicts(
    new_persistent_engine,
):
    engine = new_persistent_engine()
    engine.register(bpf.loads_process(SALES, source="deal.yaml"))
    deals = [dict(QUALIFIED, id=f"opp-{i}", customerneed="x") for i in range(30)]
    flows = [engine.start("deal", d, actor=SELLER) for d in deals]
    errors: list[BaseException] = []
    done = threading.Event()

    def stream() -> None:
        try:
            while not done.is_set():
                for _ in engine.iter_flows("deal"):
                    pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    reader = threading.Thread(target=stream)
    reader.start()
    try:
        for _ in range(3):
            for flow in flows:
                if flow.is_last_stage:
                    flow.set_active("qualify", actor=SELLER)
                else:
                    flow.next(actor=SELLER)
    finally:
        done.set()
        reader.join()
    assert errors == []
    for flow in flows:
        assert engine.store.get_flow(flow.id).revision == flow.revision == 4


def test_rows_are_plain_values_the_store_knows_nothing_of_flows(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    row = engine.store.get_flow(flow.id)
    assert type(row) is FlowRow
    assert (row.process, row.stage, row.records) == ("deal", "qualify", (("opportunity",
                                                                           "opp-1"),))
