"""The engine's behaviour, stated once and checked on `bpf.Engine` and `bpf.AsyncEngine`, on
every store: gating, moves, branching, status, hooks, stale clicks, records by entity,
batches."""

from __future__ import annotations

from datetime import timedelta

import pytest
from aio_support import LEAD, MANAGER, QUALIFIED, REVIEW, SELLER

import bpf

pytestmark = pytest.mark.anyio


async def test_starting_enters_the_first_stage_and_writes_the_phase(engine, deal):
    flow = await engine.start("deal", deal, actor=SELLER)
    assert (flow.stage.id, flow.status, flow.traversed_path) == ("qualify", "active",
                                                                  ("qualify",))
    assert deal["stepname"] == "1-Qualify"
    (entry,) = await flow.history()
    assert (entry.kind, entry.from_stage, entry.to_stage, entry.actor) == (
        "start", None, "qualify", "maria")


async def test_next_is_refused_while_required_steps_are_empty_and_nothing_changes(engine, deal):
    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(parentaccountid="", budgetamount=None, decisionmaker=False)
    with pytest.raises(bpf.StageGateError) as refused:
        await flow.next(actor=SELLER)
    assert [s.field for s in refused.value.missing] == [
        "parentaccountid", "budgetamount", "decisionmaker"]
    assert refused.value.reason == "gate"
    assert (flow.stage.id, flow.revision, deal["stepname"]) == ("qualify", 1, "1-Qualify")
    assert len(await flow.history()) == 1
    again = await engine.get_flow(flow.id)
    assert (again.stage.id, again.revision) == ("qualify", 1)


async def test_next_moves_one_stage_once_the_gate_is_satisfied(engine, deal):
    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    assert await flow.missing() == []
    assert (await flow.next(actor=SELLER)).id == "develop"
    assert flow.traversed_path == ("qualify", "develop")
    assert deal["stepname"] == "2-Develop"
    assert (await flow.history())[-1].kind == "next"
    change = await engine.last_stage_change(deal)
    assert (change.flow_id, change.to_stage) == (flow.id, "develop")


async def test_a_branch_condition_picks_the_next_stage(engine, deal):
    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, budgetamount=250_000)
    assert flow.active_path[:2] == ("qualify", "executive-review")
    assert (await flow.next(actor=SELLER)).id == "executive-review"
    with pytest.raises(bpf.StageGateError):
        await flow.next(actor=MANAGER)
    deal["approvedby"] = "ceo"
    assert (await flow.next(actor=MANAGER)).id == "develop"
    assert flow.traversed_path == ("qualify", "executive-review", "develop")


async def test_moving_back_and_set_active_cut_the_path(engine, deal):
    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, customerneed="laptops")
    await flow.next(actor=SELLER)
    await flow.next(actor=SELLER)
    assert flow.stage.id == "propose"
    assert (await flow.previous(actor=SELLER)).id == "develop"
    assert flow.traversed_path == ("qualify", "develop")
    assert (await flow.set_active("qualify", actor=SELLER)).id == "qualify"
    assert flow.traversed_path == ("qualify",)
    with pytest.raises(bpf.TransitionError) as refused:
        await flow.previous(actor=SELLER)
    assert refused.value.reason == "beginning"


async def test_finish_abandon_and_reactivate(engine, deal):
    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, customerneed="laptops")
    with pytest.raises(bpf.TransitionError) as early:
        await flow.finish("won", actor=SELLER)
    assert early.value.reason == "end"
    for _ in range(3):
        await flow.next(actor=SELLER)
    assert flow.is_last_stage
    await flow.finish("won", actor=SELLER)
    assert (flow.status, flow.outcome, deal["statecode"]) == ("finished", "won", "won")
    with pytest.raises(bpf.TransitionError) as moved:
        await flow.previous(actor=SELLER)
    assert moved.value.reason == "status"
    await flow.reactivate(actor=SELLER)
    assert (flow.status, flow.stage.id) == ("active", "close")
    await flow.abandon(actor=SELLER)
    assert flow.status == "aborted"
    stored = await engine.get_flow(flow.id)
    assert stored.status == "aborted"
    assert [e.kind for e in await flow.history()][-3:] == ["finish", "reactivate", "abandon"]


async def test_roles_are_checked(engine, deal):
    with pytest.raises(bpf.AccessDenied):
        await engine.start("deal", deal, actor=bpf.Actor("mallory", roles={"marketing"}))
    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    with pytest.raises(bpf.AccessDenied):
        await flow.next()


async def test_a_stale_click_changes_nothing(engine, deal):
    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    view = await flow.view(SELLER)
    assert view["revision"] == 1
    await flow.next(actor=SELLER, expected_stage="qualify", expected_revision=1)
    with pytest.raises(bpf.ConcurrencyError):
        await flow.next(actor=SELLER, expected_stage="qualify", expected_revision=1)
    assert (flow.stage.id, flow.revision) == ("develop", 2)


async def test_hooks_run_in_order_and_a_changing_hook_cancels(engine, deal):
    seen = []
    engine.on("stage_changing", lambda e: seen.append(("changing", e.to_stage)))
    engine.on("stage_changed", lambda e: seen.append(("changed", e.to_stage)))

    def veto(event):
        if event.to_stage == "develop":
            raise bpf.Cancel("not today")

    flow = await engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    engine.on("stage_changing", veto)
    with pytest.raises(bpf.Cancel):
        await flow.next(actor=SELLER)
    assert flow.stage.id == "qualify"
    assert seen == [("changing", "qualify"), ("changed", "qualify"), ("changing", "develop")]


async def test_a_failing_stage_action_undoes_the_move(new_engine, deal):
    engine = new_engine(actions={"boom": lambda e: 1 / 0})
    await engine.register(bpf.loads_process(
        "process: p\nname: P\nentity: opportunity\npipeline_field: stepname\nstages:\n"
        "  - {id: a, name: A, category: Qualify}\n"
        "  - {id: b, name: B, category: Develop, on_enter: [boom]}\n"))
    flow = await engine.start("p", deal)
    with pytest.raises(bpf.HookError):
        await flow.next()
    assert (flow.stage.id, flow.revision, deal["stepname"]) == ("a", 1, "1-Qualify")
    assert (await engine.get_flow(flow.id)).revision == 1


async def test_records_are_told_apart_by_entity(new_engine):
    engine = new_engine()
    with pytest.warns(bpf.PipelineFieldWarning):
        for text in (LEAD, REVIEW):
            await engine.register(bpf.loads_process(text))
    lead = {"id": "42", "subject": "laptops"}
    deal = {"id": "42"}
    on_lead = await engine.start("lead-flow", lead)
    on_deal = await engine.start("deal-review", deal)
    assert [f.id for f in await engine.flows("42", entity="lead")] == [on_lead.id]
    assert [f.id for f in await engine.flows("42", entity="opportunity")] == [on_deal.id]
    with pytest.raises(bpf.RecordError):
        await engine.flows("42")
    await on_lead.next(record=deal)
    assert on_lead.record_ids == {"lead": "42", "opportunity": "42"}


async def test_one_flow_per_process_per_record(engine, deal):
    await engine.start("deal", deal, actor=SELLER)
    with pytest.raises(bpf.FlowExistsError):
        await engine.start("deal", dict(deal), actor=SELLER)


async def test_a_batch_commits_together_or_not_at_all(engine):
    records = [{"id": f"opp-{i}"} for i in range(3)]
    with pytest.raises(LookupError):
        async with engine.batch():
            for record in records:
                await engine.start("deal", record, actor=SELLER)
            raise LookupError("the import failed")
    assert [await engine.flows(r) for r in records] == [[], [], []]
    async with engine.batch():
        for record in records:
            await engine.start("deal", record, actor=SELLER)
    assert [len(await engine.flows(r)) for r in records] == [1, 1, 1]


async def test_time_in_stage_adds_up(engine, deal, clock):
    flow = await engine.start("deal", deal, actor=SELLER)
    clock.advance(hours=2)
    deal.update(QUALIFIED)
    await flow.next(actor=SELLER)
    clock.advance(hours=1)
    assert await flow.time_in_stage("qualify") == timedelta(hours=2)
    assert await flow.time_in_stage("develop") == timedelta(hours=1)


async def test_a_new_engine_sees_the_stored_flow(new_engine, deal, store_url):
    if store_url == "memory":
        pytest.skip("flows in memory live in one engine")
    from aio_support import SALES

    first = new_engine()
    await first.register(bpf.loads_process(SALES))
    flow = await first.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED)
    await flow.next(actor=SELLER)
    second = new_engine()
    await second.register(bpf.loads_process(SALES))
    (again,) = await second.flows(deal)
    assert (again.id, again.stage.id, again.revision) == (flow.id, "develop", 2)
    await again.previous(actor=SELLER)
    with pytest.raises(bpf.ConcurrencyError):  # the revision check, across engines
        await flow.previous(actor=SELLER)
    assert (flow.stage.id, flow.revision) == ("develop", 2)


async def test_lookups_inside_the_applications_transaction_see_what_it_has_not_committed(
        new_engine, engine, deal):
    if new_engine.url == "memory":
        pytest.skip("the memory store has no transaction to share")
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import create_async_engine

    from bpf.store.sql.aio import async_url

    if new_engine.kind == "sync":
        app = sa.create_engine(new_engine.url)
        conn = app.connect()

        async def end() -> None:
            conn.rollback()
            conn.close()
            app.dispose()
    else:
        app = create_async_engine(async_url(new_engine.url))
        conn = await app.connect()

        async def end() -> None:
            await conn.rollback()
            await conn.close()
            await app.dispose()

    deal.update(QUALIFIED)
    try:
        async with engine.transaction(conn):
            started = await engine.start("deal", deal, actor=SELLER)
            await started.next(actor=SELLER)
            (found,) = await engine.flows(deal)
            assert found == started and found.stage.id == "develop"
            assert await engine.flow(deal, "deal") == started
            assert await engine.active_flow(deal) == started
            assert (await engine.last_stage_change(deal)).to_stage == "develop"
            again = await engine.get_flow(started.id)
            assert again == started
            assert [e.kind for e in await again.history()] == ["start", "next"]
    finally:
        await end()
    assert await engine.flows(deal) == []  # rolled back: nothing was committed
