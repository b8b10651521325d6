"""What only the asyncio engine does: ``async def`` hooks and actions awaited in order,
concurrent moves of different flows, one flow's moves one at a time, a batch per task, and
bpf's writes inside the application's `AsyncSession` or `AsyncConnection`."""

from __future__ import annotations

import asyncio

import pytest
from aio_support import QUALIFIED, SALES, SELLER
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

import bpf

pytestmark = pytest.mark.anyio

TWO = ("process: p\nname: P\nentity: opportunity\npipeline_field: stepname\nstages:\n"
       "  - {id: a, name: A, category: Qualify, on_exit: [leave]}\n"
       "  - {id: b, name: B, category: Develop, on_enter: [arrive]}\n"
       "  - {id: c, name: C, category: Close}\n")


class Base(DeclarativeBase):
    pass


class Opportunity(Base):
    """An application's table, its rows the records of a flow."""

    __tablename__ = "aio_opportunity"
    id: Mapped[int] = mapped_column(primary_key=True)
    budgetamount: Mapped[int | None]
    stepname: Mapped[str | None]


@pytest.fixture
async def async_engine(store_url, clock):
    engine = bpf.AsyncEngine(store_url, clock=clock)
    yield engine
    await engine.aclose()


async def test_async_hooks_and_actions_are_awaited_in_order(async_engine):
    seen = []

    def plain(name):
        return lambda event: seen.append(name)

    def later(name):
        async def hook(event):
            await asyncio.sleep(0.001)
            seen.append(name)
        return hook

    async_engine.actions["leave"] = later("on_exit")
    async_engine.actions["arrive"] = plain("on_enter")
    async_engine.on("stage_changing", later("changing 1"))
    async_engine.on("stage_changing", plain("changing 2"))
    async_engine.on("stage_changed", later("changed"))
    await async_engine.register(bpf.loads_process(TWO))
    flow = await async_engine.start("p", {"id": "o-1"})
    seen.clear()
    await flow.next()
    assert seen == ["changing 1", "changing 2", "on_exit", "on_enter", "changed"]


async def test_an_async_hook_cancels_and_a_failing_async_action_undoes(async_engine):
    async def veto(event):
        raise bpf.Cancel("no")

    async def boom(event):
        raise RuntimeError("down")

    async_engine.actions["leave"] = boom
    async_engine.actions["arrive"] = lambda e: None
    await async_engine.register(bpf.loads_process(TWO))
    record = {"id": "o-1"}
    flow = await async_engine.start("p", record)
    with pytest.raises(bpf.HookError, match="down"):
        await flow.next()
    assert (flow.stage.id, flow.revision, record["stepname"]) == ("a", 1, "1-Qualify")
    async_engine.on("stage_changing", veto)
    with pytest.raises(bpf.Cancel):
        await flow.next()
    assert (await async_engine.get_flow(flow.id)).revision == 1


async def test_moves_of_different_flows_run_at_the_same_time(async_engine):
    """Each move waits in its hook for the other to have started: with one lock around every
    move, neither would finish."""
    arrived = {"o-1": asyncio.Event(), "o-2": asyncio.Event()}

    async def meet(event):
        mine = event.flow.record_id
        arrived[mine].set()
        other = "o-2" if mine == "o-1" else "o-1"
        await asyncio.wait_for(arrived[other].wait(), 5)

    await async_engine.register(bpf.loads_process(SALES))
    records = [{"id": rid, **QUALIFIED} for rid in arrived]
    flows = [await async_engine.start("deal", r, actor=SELLER) for r in records]
    async_engine.on("stage_changing", meet)
    stages = await asyncio.gather(*(f.next(actor=SELLER) for f in flows))
    assert [s.id for s in stages] == ["develop", "develop"]
    assert [(await async_engine.get_flow(f.id)).revision for f in flows] == [2, 2]


async def test_moves_of_one_flow_run_one_at_a_time(async_engine):
    inside = []

    async def slow(event):
        inside.append(event.to_stage)
        assert len(inside) == 1, "two moves of one flow at once"
        await asyncio.sleep(0.01)
        inside.pop()

    await async_engine.register(bpf.loads_process(SALES))
    record = {"id": "o-1", **QUALIFIED, "customerneed": "laptops"}
    flow = await async_engine.start("deal", record, actor=SELLER)
    async_engine.on("stage_changing", slow)
    await asyncio.gather(flow.next(actor=SELLER), flow.next(actor=SELLER))
    assert flow.traversed_path == ("qualify", "develop", "propose")


async def test_a_double_click_moves_once(async_engine):
    await async_engine.register(bpf.loads_process(SALES))
    flow = await async_engine.start("deal", {"id": "o-1", **QUALIFIED}, actor=SELLER)
    clicks = await asyncio.gather(
        *(flow.next(actor=SELLER, expected_stage="qualify", expected_revision=1)
          for _ in range(2)),
        return_exceptions=True)
    assert sorted(type(c).__name__ for c in clicks) == ["ConcurrencyError", "Stage"]
    assert (flow.stage.id, flow.revision) == ("develop", 2)


async def test_a_batch_belongs_to_the_task_that_opened_it(async_engine):
    await async_engine.register(bpf.loads_process(SALES))
    in_batch = asyncio.Event()
    outside = {}

    async def batch():
        async with async_engine.batch():
            await async_engine.start("deal", {"id": "in-1"}, actor=SELLER)
            in_batch.set()
            await asyncio.sleep(0.01)
            raise LookupError("roll back")

    async def other():
        await in_batch.wait()
        outside["flow"] = await async_engine.start("deal", {"id": "out-1"}, actor=SELLER)

    results = await asyncio.gather(batch(), other(), return_exceptions=True)
    assert isinstance(results[0], LookupError)
    assert await async_engine.flows({"id": "in-1"}) == []
    assert [f.id for f in await async_engine.flows({"id": "out-1"})] == [outside["flow"].id]


@pytest.fixture
async def sql_engine(persistent_url, clock):
    engine = bpf.AsyncEngine(persistent_url, clock=clock)
    await engine.register(bpf.loads_process(SALES))
    yield engine
    await engine.aclose()


def _app_engine(url):
    from sqlalchemy.ext.asyncio import create_async_engine

    from bpf.store.sql.aio import async_url

    return create_async_engine(async_url(url))


@pytest.mark.parametrize("rollback", [False, True])
async def test_writes_join_the_applications_async_session(sql_engine, persistent_url, rollback):
    from sqlalchemy.ext.asyncio import AsyncSession

    committed = []
    sql_engine.on("stage_changed", lambda e: committed.append(e.to_stage))
    app = _app_engine(persistent_url)
    record = {"id": "o-1"}
    try:
        async with AsyncSession(app) as session:
            async with sql_engine.transaction(session):
                flow = await sql_engine.start("deal", record, actor=SELLER)
            assert committed == []
            if rollback:
                await session.rollback()
            else:
                await session.commit()
    finally:
        await app.dispose()
    found = await sql_engine.flows(record)
    if rollback:
        assert found == [] and committed == []
    else:
        assert [f.id for f in found] == [flow.id] and committed == ["qualify"]


async def test_writes_join_the_applications_async_connection(sql_engine, persistent_url):
    import sqlalchemy as sa

    app = _app_engine(persistent_url)
    record = {"id": "o-1", **QUALIFIED}
    flow = await sql_engine.start("deal", record, actor=SELLER)
    try:
        async with app.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
            async with sql_engine.transaction(conn):
                await flow.next(actor=SELLER)
            await conn.rollback()
    finally:
        await app.dispose()
    assert (flow.stage.id, flow.revision) == ("qualify", 1)
    assert (await sql_engine.get_flow(flow.id)).revision == 1


async def test_many_tasks_move_many_flows(sql_engine):
    records = [{"id": f"o-{i}", **QUALIFIED, "customerneed": "x"} for i in range(20)]
    flows = await asyncio.gather(*(sql_engine.start("deal", r, actor=SELLER) for r in records))

    async def walk(flow):
        await flow.next(actor=SELLER)
        await flow.next(actor=SELLER)

    await asyncio.gather(*(walk(f) for f in flows))
    stored = [await sql_engine.get_flow(f.id) for f in flows]
    assert {(f.stage.id, f.revision) for f in stored} == {("propose", 3)}
    assert [e.kind for e in await stored[0].history()] == ["start", "next", "next"]


def test_async_engine_is_public():
    assert bpf.AsyncEngine.__module__ == "bpf"
    assert repr(bpf.AsyncEngine("memory")) == "<bpf.AsyncEngine store='memory'>"


async def test_a_sync_and_an_async_engine_share_one_database(persistent_url, clock):
    sync = bpf.Engine(persistent_url, clock=clock)
    sync.register(bpf.loads_process(SALES))
    record = {"id": "o-1", **QUALIFIED}
    flow = sync.start("deal", record, actor=SELLER)
    try:
        async with bpf.AsyncEngine(persistent_url, clock=clock) as engine:
            await engine.register(bpf.loads_process(SALES))
            (mine,) = await engine.flows(record)
            await mine.next(actor=SELLER)
            with pytest.raises(bpf.ConcurrencyError):  # the sync engine's copy is stale
                flow.next(actor=SELLER)
            assert (await mine.refresh()).revision == 2
            found = [f.id async for f in engine.iter_flows("deal", status="active")]
            assert found == [flow.id]
    finally:
        sync.close()
    with bpf.Engine(persistent_url) as again:
        assert again.get_flow(flow.id).stage.id == "develop"


async def test_switch_and_migrate_are_awaited(async_engine):
    from aio_support import REVIEW

    await async_engine.register(bpf.loads_process(SALES))
    with pytest.warns(bpf.PipelineFieldWarning):
        await async_engine.register(bpf.loads_process(REVIEW))
    record = {"id": "o-1"}
    deal = await async_engine.start("deal", record, actor=SELLER)
    review = await async_engine.switch(record, "deal-review")
    assert (await async_engine.active_flow(record)).id == review.id
    assert (await async_engine.switch(record, "deal", actor=SELLER)).id == deal.id
    with pytest.warns(bpf.PipelineFieldWarning):
        await async_engine.register(bpf.loads_process(SALES + "version: 2\n"))
    assert await async_engine.migrate("deal", 2, actor=SELLER) == 1
    assert (await async_engine.get_flow(deal.id)).version == 2


async def test_an_orm_model_loads_and_saves_through_the_async_session(persistent_url, clock):
    """A web request: the record is a mapped row, loaded and written with the request's
    AsyncSession; bpf's rows and the pipeline field commit with it."""
    import sqlalchemy as sa
    from sqlalchemy.ext.asyncio import AsyncSession

    plain = bpf.loads_process(
        "process: deal\nname: Deal\nentity: opportunity\npipeline_field: stepname\nstages:\n"
        "  - id: qualify\n    name: Qualify\n    category: Qualify\n    steps:\n"
        "      - {field: budgetamount, label: Budget, type: money, required: true}\n"
        "  - {id: develop, name: Develop, category: Develop}\n")
    app = _app_engine(persistent_url)
    engine = bpf.AsyncEngine(persistent_url, clock=clock)
    try:
        async with app.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        await engine.register(plain)
        engine.entity("opportunity", model=Opportunity)
        async with (AsyncSession(app) as session, session.begin(),
                    engine.transaction(session)):
            session.add(Opportunity(id=7))
            await session.flush()
            flow = await engine.start("deal", await session.get(Opportunity, 7))
        async with (AsyncSession(app) as session, session.begin(),
                    engine.transaction(session)):
            row = await session.get(Opportunity, 7)
            (same,) = await engine.flows(row)  # the flow, bound to this request's row
            assert same is flow
            row.budgetamount = 5000
            await flow.next(expected_revision=1)
        async with AsyncSession(app) as session:
            stepname = await session.scalar(sa.select(Opportunity.stepname))
        assert stepname == "2-Develop"
        assert (await engine.get_flow(flow.id)).revision == 2
    finally:
        await engine.aclose()
        await app.dispose()


async def test_the_store_is_awaited_too(async_engine):
    await async_engine.register(bpf.loads_process(SALES))
    flow = await async_engine.start("deal", {"id": "o-1", **QUALIFIED}, actor=SELLER)
    await flow.next(actor=SELLER)
    store = async_engine.store
    assert (await store.get_flow(flow.id)).revision == 2
    assert [e.kind for e in await store.history(flow.id)] == ["start", "next"]
    assert await store.stage_counts("deal") == {(1, "develop"): 1}
    assert [row.id async for row in store.iter_flows("deal")] == [flow.id]
    assert (await store.last_change("o-1", "opportunity")).to_stage == "develop"


async def test_an_asyncio_store_given_as_an_object_is_opened_on_first_use(persistent_url, clock):
    from bpf.store.sql.aio import AsyncSQLStore

    store = AsyncSQLStore(persistent_url)  # its tables not made yet
    async with bpf.AsyncEngine(store, clock=clock) as engine:
        await engine.register(bpf.loads_process(SALES, source="deal.yaml"))
        flow = await engine.start("deal", {"id": "opp-1"}, actor=SELLER)
        assert (await engine.get_flow(flow.id)).stage.id == "qualify"


def test_a_sync_sql_store_is_refused_with_what_to_give_instead(persistent_url):
    from bpf.store.sql import SQLStore

    store = SQLStore(persistent_url)
    try:
        with pytest.raises(bpf.StoreError, match=r"would block the event loop.*database URL"):
            bpf.AsyncEngine(store)
    finally:
        store.close()
