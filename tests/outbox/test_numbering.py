"""The outbox's order under concurrent writers: every committed change's event is read once,
numbered without a gap, one flow's events in the order of its changes, none of a rolled-back
change; waiting consumers wake after each kind of commit.

On PostgreSQL events are written pending and numbered by the readers
(`bpf.store.sql.events`): these tests race readers against writers to catch an event passed
over or numbered twice."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from outbox_process import DEAL

import bpf

PLAIN = DEAL.replace("after_exit: [left]", "").replace("on_enter: [check]", "").replace(
    "after_enter: [mail]", "")
WRITERS, FLOWS, MOVES = 4, 5, 20


def plain() -> bpf.ProcessDefinition:
    return bpf.loads_process(PLAIN, source="deal.yaml")


def test_concurrent_writers_and_a_reader_see_every_event_once_without_gaps(persistent_url):
    setup = bpf.Engine(persistent_url)
    setup.register(plain())
    setup.close()
    read: list[bpf.Event] = []
    done = threading.Event()
    failures: list[BaseException] = []

    def writer(n: int) -> None:
        engine = bpf.Engine(persistent_url)
        try:
            engine.register(plain())
            flows = [engine.start("deal", {"id": f"opp-{n}-{i}"}) for i in range(FLOWS)]
            for step in range(MOVES):
                for flow in flows:
                    flow.next() if step % 2 == 0 else flow.previous()
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            engine.close()

    def reader() -> None:
        engine = bpf.Engine(persistent_url)
        try:
            position = 0
            while True:
                finished = done.is_set()  # before the read: a read after it drains all
                got = engine.events(after=position, limit=37)
                read.extend(got)
                if got:
                    position = got[-1].seq
                elif finished:
                    return
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            engine.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    reading = threading.Thread(target=reader)
    reading.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    reading.join()
    assert failures == []

    total = WRITERS * FLOWS * (1 + MOVES)
    seqs = [e.seq for e in read]
    assert seqs == list(range(1, total + 1)), "an event was passed over, repeated or reordered"
    assert len({e.id for e in read}) == total
    by_flow: dict[str, list[bpf.Event]] = {}
    for event in read:
        by_flow.setdefault(event.flow_id, []).append(event)
    assert len(by_flow) == WRITERS * FLOWS
    for events in by_flow.values():
        assert [e.kind for e in events] == ["start"] + ["next", "previous"] * (MOVES // 2)
        for before, after in itertools.pairwise(events):
            assert after.from_stage == before.to_stage


def test_a_rolled_back_change_leaves_no_event_and_no_gap(make_persistent_engine):
    engine = make_persistent_engine()
    engine.register(plain())
    flow = engine.start("deal", {"id": "opp-1"})
    with engine.store.engine.connect() as conn:
        with engine.transaction(conn):
            flow.next()
            engine.start("deal", {"id": "opp-2"})
        conn.rollback()
    flow.refresh()
    flow.next()
    with engine.batch():
        engine.start("deal", {"id": "opp-3"})
    assert [(e.seq, e.kind, e.record_id) for e in engine.events()] == [
        (1, "start", "opp-1"), (2, "next", "opp-1"), (3, "start", "opp-3")]


def waiting_consumer(url: str) -> tuple[bpf.Engine, bpf.Consumer]:
    reader = bpf.Engine(url)
    consumer = reader.consumer("waiter")
    consumer.wait(0)  # listening from now on
    assert consumer.poll() == []
    return reader, consumer


def woken_by(consumer: bpf.Consumer, commit) -> float:
    """Seconds from ``commit()`` returning to the consumer seeing its event (waiting 5 s);
    the events seen are acknowledged."""
    seen: list[float] = []

    def wait() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not seen:
            if consumer.wait(max(0.0, deadline - time.monotonic())):
                events = consumer.poll()
                if events:
                    seen.append(time.perf_counter())
                    for event in events:
                        consumer.ack(event)

    thread = threading.Thread(target=wait)
    thread.start()
    time.sleep(0.05)  # the consumer is waiting
    commit()
    done = time.perf_counter()
    thread.join()
    assert seen, "the waiting consumer was not woken within 5 s"
    return seen[0] - done


@pytest.mark.postgres
def test_a_waiting_consumer_wakes_after_a_commit_through_the_applications_connection(
        postgres_url):
    engine = bpf.Engine(postgres_url)
    engine.register(plain())
    reader, consumer = waiting_consumer(postgres_url)

    flows = []

    def start() -> None:  # an insert: the write of many statements
        with engine.store.engine.begin() as conn, engine.transaction(conn):
            flows.append(engine.start("deal", {"id": "opp-1"}))

    def move() -> None:  # one stage change: the write of one statement
        with engine.store.engine.begin() as conn, engine.transaction(conn):
            flows[0].next()

    assert woken_by(consumer, start) < 1.0
    assert woken_by(consumer, move) < 1.0
    engine.close()
    reader.close()


@pytest.mark.postgres
def test_a_waiting_consumer_wakes_for_a_commit_made_just_before_the_writer_closes(
        postgres_url):
    reader, consumer = waiting_consumer(postgres_url)
    setup = bpf.Engine(postgres_url)
    setup.register(plain())
    setup.close()

    def commit() -> None:
        engine = bpf.Engine(postgres_url)
        engine.register(plain())
        engine.start("deal", {"id": "opp-1"})
        engine.close()  # sends the NOTIFY its commit is owed before it goes

    assert woken_by(consumer, commit) < 1.0
    reader.close()


def notifier_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "bpf-outbox-notifier"]


@pytest.mark.postgres
def test_the_notifier_thread_ends_when_idle_and_comes_back_with_the_next_commit(
        postgres_url, monkeypatch):
    from bpf.store.sql.notifier import Notifier

    monkeypatch.setattr(Notifier, "IDLE", 0.2)
    before = len(notifier_threads())
    engine = bpf.Engine(postgres_url)
    engine.register(plain())
    reader, consumer = waiting_consumer(postgres_url)
    assert woken_by(consumer, lambda: engine.start("deal", {"id": "opp-1"})) < 1.0
    assert len(notifier_threads()) == before + 1
    deadline = time.monotonic() + 5
    while len(notifier_threads()) > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(notifier_threads()) == before, "the idle notifier thread did not end"
    assert woken_by(consumer, lambda: engine.start("deal", {"id": "opp-2"})) < 1.0
    engine.close()
    reader.close()
    assert len(notifier_threads()) == before
