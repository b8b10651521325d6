"""The outbox under asyncio: `bpf.AsyncConsumer` polls, acknowledges, lets go and follows as
the sync consumer does; `prune_events` is awaited; and waiting for events lets the event loop
run, waking soon after another task commits: on memory, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import timedelta

import pytest

import bpf

pytestmark = pytest.mark.anyio

DEAL = """
process: deal
name: Deal
entity: opportunity
stages:
  - {id: qualify, name: Qualify}
  - {id: develop, name: Develop, after_enter: [mail]}
  - {id: close, name: Close}
"""


@pytest.fixture
async def engine(store_url, clock):
    engine = bpf.AsyncEngine(store_url, clock=clock)
    engine.actions["mail"] = lambda event: None
    await engine.register(bpf.loads_process(DEAL))
    yield engine
    await engine.aclose()


async def moved(engine, record_id, moves=0):
    """A deal flow on a new record, moved ``moves`` times."""
    flow = await engine.start("deal", {"id": record_id})
    for _ in range(moves):
        await flow.next()
    return flow


async def drain(consumer):
    """Every event the consumer can take now, each acknowledged, partition by partition."""
    got = []
    while events := await consumer.poll():
        for event in events:
            got.append(event)
            await consumer.ack(event)
    return got


# -- consumers -------------------------------------------------------------------------------------


async def test_a_consumer_gets_a_flows_events_in_order_and_acknowledges_them(engine):
    await moved(engine, "opp-1", moves=2)
    mailer = engine.consumer("mailer")
    assert isinstance(mailer, bpf.AsyncConsumer)
    assert (mailer.name, mailer.process, mailer.lease) == ("mailer", None, 30.0)
    events = await mailer.poll()
    assert [(e.kind, e.to_stage) for e in events] == [
        ("start", "qualify"), ("next", "develop"), ("next", "close")]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    for event in events:
        await mailer.ack(event)
    assert await mailer.poll() == []
    await mailer.release()
    # A consumer of a new name starts at the oldest event.
    assert [e.id for e in await engine.consumer("audit").poll()] == [e.id for e in events]


async def test_a_consumer_gets_every_flows_events_once(engine):
    for i in range(6):
        await moved(engine, f"opp-{i}", moves=1)
    got = await drain(engine.consumer("mailer"))
    assert sorted(e.seq for e in got) == [e.seq for e in await engine.events()]
    assert await drain(engine.consumer("mailer")) == []  # its position was kept


async def test_an_unacknowledged_event_comes_again_after_release(engine):
    await moved(engine, "opp-1", moves=2)
    mailer = engine.consumer("mailer")
    first, second, third = await mailer.poll()
    await mailer.ack(first)
    await mailer.release()
    assert await mailer.poll() == [second, third]


async def test_a_consumer_of_one_process_passes_over_the_others(engine):
    await engine.register(bpf.loads_process(DEAL.replace("process: deal", "process: other")))
    await engine.start("other", {"id": "o-1"})
    await engine.start("deal", {"id": "d-1"})
    deals = engine.consumer("deals", process="deal")
    assert deals.process == "deal"
    (event,) = await deals.poll()
    assert (event.process, event.record_id) == ("deal", "d-1")
    await deals.ack(event)
    assert await deals.poll() == []


async def test_follow_acknowledges_each_event_when_the_next_is_asked_for_until_stop(engine):
    for i in range(3):
        await moved(engine, f"opp-{i}", moves=1)
    audit = engine.consumer("audit")
    by_flow: dict[str, list[int]] = {}
    seen = []
    async for event in audit.follow(idle=0.01, stop=lambda: len(seen) >= 6):
        seen.append(event.seq)
        by_flow.setdefault(event.flow_id, []).append(event.seq)
    assert sorted(seen) == [e.seq for e in await engine.events()]
    assert all(seqs == sorted(seqs) and len(seqs) == 2 for seqs in by_flow.values())
    assert await audit.poll() == []  # the last one too: stop ended the loop after its ack


async def test_an_event_whose_handling_raised_is_not_acknowledged(engine):
    await moved(engine, "opp-1", moves=1)
    audit = engine.consumer("audit")
    with pytest.raises(ConnectionError):
        async with contextlib.aclosing(audit.follow(idle=0.01)) as events:
            async for event in events:
                raise ConnectionError(f"cannot hand on {event.seq}")
    # the partition was let go: another worker of the name takes the event at once
    again = await engine.consumer("audit").poll()
    assert [e.kind for e in again] == ["start", "next"]


async def test_a_cancelled_follower_lets_its_partition_go(engine):
    await moved(engine, "opp-1")
    handling = asyncio.Event()

    async def follow() -> None:
        async with contextlib.aclosing(engine.consumer("mailer").follow(idle=0.01)) as events:
            async for _ in events:
                handling.set()
                await asyncio.Event().wait()  # a handler that never ends

    task = asyncio.create_task(follow())
    await asyncio.wait_for(handling.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [e.record_id for e in await engine.consumer("mailer").poll()] == ["opp-1"]


# -- retention -------------------------------------------------------------------------------------


async def test_a_consumer_behind_pruned_events_is_told(engine, clock):
    slow = engine.consumer("slow")
    await moved(engine, "opp-1")
    assert await slow.poll()  # it exists, at the start, and read without acknowledging
    await slow.release()
    clock.advance(days=40)
    await moved(engine, "opp-2")
    assert await engine.prune_events(clock.now - timedelta(days=30)) == 1
    assert [e.record_id for e in await engine.events()] == ["opp-2"]
    with pytest.raises(bpf.EventsPrunedError, match="consumer 'slow'"):
        await slow.poll()
    assert [e.record_id for e in await engine.consumer("fresh").poll()] == ["opp-2"]


# -- waiting ---------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def ticking(every: float = 0.01):
    """A task counting every ``every`` seconds: it counts only while the event loop runs."""
    ticks = [0]

    async def tick() -> None:
        while True:
            await asyncio.sleep(every)
            ticks[0] += 1

    task = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def commit_after(engine, delay, record_id):
    """Start a flow ``delay`` seconds from now; returns when it committed (perf_counter)."""
    await asyncio.sleep(delay)
    await engine.start("deal", {"id": record_id})
    return time.perf_counter()


async def test_a_waiting_consumer_wakes_soon_after_another_task_commits(engine):
    mailer = engine.consumer("mailer")
    await mailer.wait(0)  # PostgreSQL: listens from now on (and says events may have come)
    async with ticking() as ticks:
        mover = asyncio.create_task(commit_after(engine, 0.2, "opp-1"))
        started = time.perf_counter()
        assert await mailer.wait(5)
        woke = time.perf_counter()
        ticked = ticks[0]
        committed = await mover
    assert woke - committed < 0.5, f"woke {woke - committed:.3f} s after the commit"
    # The loop ran while the consumer waited: the ticker counted through the 0.2 s.
    assert ticked >= 0.5 * (woke - started) / 0.01, ticked
    assert [e.record_id for e in await mailer.poll()] == ["opp-1"]


async def test_a_wait_with_nothing_new_times_out_without_holding_up_the_loop(engine):
    mailer = engine.consumer("mailer")
    await mailer.wait(0)
    async with ticking() as ticks:
        started = time.perf_counter()
        assert await mailer.wait(0.3) is False
        waited = time.perf_counter() - started
        ticked = ticks[0]
    assert 0.25 < waited < 1.5
    assert ticked >= 10


async def test_every_task_waiting_at_once_wakes_for_one_commit(engine):
    consumers = [engine.consumer(f"c{i}") for i in range(3)]
    await consumers[0].wait(0)
    mover = asyncio.create_task(commit_after(engine, 0.1, "opp-1"))
    started = time.perf_counter()
    woke = await asyncio.gather(*(c.wait(5) for c in consumers))
    await mover
    assert woke == [True, True, True]
    assert time.perf_counter() - started < 1.5


async def test_a_cancelled_wait_leaves_the_next_one_working(engine):
    mailer = engine.consumer("mailer")
    await mailer.wait(0)
    waiting = asyncio.create_task(mailer.wait(5))
    await asyncio.sleep(0.05)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    mover = asyncio.create_task(commit_after(engine, 0.1, "opp-1"))
    assert await asyncio.wait_for(mailer.wait(5), 2)
    await mover


async def test_follow_waits_for_events_committed_while_it_follows(engine):
    seen = []
    mover = asyncio.create_task(commit_after(engine, 0.1, "opp-1"))
    async for event in engine.consumer("mailer").follow(idle=5, stop=lambda: len(seen) >= 1):
        seen.append(event.record_id)
    assert seen == ["opp-1"]
    await mover


# -- after-actions ---------------------------------------------------------------------------------


async def test_an_async_after_enter_action_runs_once_the_change_committed(store_url, clock):
    engine = bpf.AsyncEngine(store_url, clock=clock)
    ran = []

    async def mail(event: bpf.Event) -> None:
        await asyncio.sleep(0)
        stored = await engine.store.get_flow(event.flow_id)  # what a reader sees now
        ran.append((event.kind, event.to_stage, stored.stage))

    engine.actions["mail"] = mail
    try:
        await engine.register(bpf.loads_process(DEAL))
        flow = await moved(engine, "opp-1")
        assert ran == []
        await flow.next()
        assert ran == [("next", "develop", "develop")]
        assert await engine.deliver() == 0  # delivered once, acknowledged
    finally:
        await engine.aclose()
