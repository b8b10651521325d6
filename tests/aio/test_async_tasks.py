"""Tasks sharing one `bpf.AsyncEngine`: the asyncio counterparts of tests/runtime's OS threads
sharing one `bpf.Engine` (test_threads.py, and test_core.py's streaming reader). Moves of one
flow run one at a time and none is lost; tasks moving different flows keep each flow's own
history; streaming flows while other tasks move them gives no false conflicts."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from aio_support import QUALIFIED, SALES, SELLER

import bpf

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(store_url, clock):
    async with bpf.AsyncEngine(store_url, clock=clock) as engine:
        await engine.register(bpf.loads_process(SALES, source="deal.yaml"))
        yield engine


@pytest.fixture
async def sql_engine(persistent_url, clock):
    async with bpf.AsyncEngine(persistent_url, clock=clock) as engine:
        await engine.register(bpf.loads_process(SALES, source="deal.yaml"))
        yield engine


def assert_a_chain(history, flow):
    """Each entry starts where the one before ended, and the last ends where the flow is."""
    for before, after in itertools.pairwise(history):
        assert after.from_stage == before.to_stage, (before, after)
    assert history[-1].to_stage == flow.stage.id


async def test_tasks_moving_one_flow_lose_no_move(engine):
    """6 tasks x 40 moves, half forward and half back. An ``async def`` hook awaits inside
    every move, so on every store each move gives the other tasks their turn midway."""
    deal = {"id": "opp-1", **QUALIFIED, "customerneed": "x"}
    flow = await engine.start("deal", deal, actor=SELLER)
    inside = []
    most = 0

    async def entering(event):
        nonlocal most
        inside.append(event.kind)
        most = max(most, len(inside))
        await asyncio.sleep(0)

    engine.on("stage_changing", entering)
    engine.on("stage_changed", lambda event: inside.pop())
    moved: list[int] = []
    refused: list[str] = []
    start = asyncio.Barrier(6)

    async def mover(n: int) -> None:
        await start.wait()
        for _ in range(40):
            await asyncio.sleep(0)
            try:
                await (flow.next if n % 2 else flow.previous)(actor=SELLER)
                moved.append(n)
            except bpf.TransitionError as refusal:  # at the first or the last stage
                refused.append(refusal.reason)

    await asyncio.gather(*(mover(n) for n in range(6)))
    assert len(moved) + len(refused) == 240
    assert set(refused) <= {"beginning", "end"}
    assert set(moved) == set(range(6)), "every task moved the flow"
    assert most == 1, "two moves of one flow ran at once"
    history = await flow.history()
    assert len(history) == flow.revision == 1 + len(moved)
    assert_a_chain(history, flow)
    assert deal["stepname"] == flow.stage.phase
    stored = await engine.store.get_flow(flow.id)
    assert (stored.stage, stored.revision) == (flow.stage.id, flow.revision)
    assert tuple(await engine.store.history(flow.id)) == history


async def test_tasks_moving_different_flows_keep_each_flows_own_history(sql_engine):
    """8 tasks, each walking its own flow; the moves overlap (an ``async def`` hook meets the
    other tasks midway) and each flow ends with exactly its own moves, in the database."""
    walk = ["next", "next", "next", "previous", "next"]
    deals = [{"id": f"opp-{i}", **QUALIFIED, "customerneed": "x"} for i in range(8)]
    flows = [await sql_engine.start("deal", d, actor=SELLER) for d in deals]
    inside = set()
    most = 0

    async def entering(event):
        nonlocal most
        inside.add(event.flow.id)
        most = max(most, len(inside))
        await asyncio.sleep(0.001)
        inside.discard(event.flow.id)

    sql_engine.on("stage_changing", entering)

    async def walker(i: int) -> None:
        flow = flows[i]
        for operation in walk:
            await getattr(flow, operation)(actor=SELLER)
        if i % 2:
            await flow.abandon(actor=SELLER)
        else:
            await flow.finish("won", actor=SELLER)

    await asyncio.gather(*(walker(i) for i in range(8)))
    assert most > 1, "the moves of different flows never overlapped"
    for i, (flow, deal) in enumerate(zip(flows, deals, strict=True)):
        ending = "abandon" if i % 2 else "finish"
        stored = await sql_engine.store.get_flow(flow.id)
        history = await sql_engine.store.history(flow.id)
        assert [e.kind for e in history] == ["start", *walk, ending]
        assert {e.record_id for e in history} == {deal["id"]}
        assert (stored.stage, stored.status, stored.revision) == (
            "close", "aborted" if i % 2 else "finished", 2 + len(walk))
        assert flow.revision == stored.revision
        assert_a_chain(history, flow)
        assert deal["stepname"] == "4-Close"
        assert deal.get("statecode") == (None if i % 2 else "won")


async def test_streaming_flows_while_other_tasks_move_them_gives_no_false_conflicts(
    sql_engine,
):
    """The streamed rows are read a page at a time, so by the time a flow is yielded other
    tasks have moved it: the stream must not set the live flow back."""
    deals = [dict(QUALIFIED, id=f"opp-{i}", customerneed="x") for i in range(30)]
    flows = [await sql_engine.start("deal", d, actor=SELLER) for d in deals]
    done = asyncio.Event()
    streamed = 0

    async def stream() -> None:
        nonlocal streamed
        while not done.is_set():
            async for _ in sql_engine.iter_flows("deal"):
                streamed += 1
                await asyncio.sleep(0)

    async def move(flow) -> None:
        for _ in range(3):
            if flow.is_last_stage:
                await flow.set_active("qualify", actor=SELLER)
            else:
                await flow.next(actor=SELLER)
            await asyncio.sleep(0)

    async def moves() -> None:
        try:
            await asyncio.gather(*(move(f) for f in flows))
        finally:
            done.set()

    await asyncio.gather(stream(), moves())
    assert streamed > 0
    for flow in flows:
        assert (await sql_engine.store.get_flow(flow.id)).revision == flow.revision == 4
