"""The outbox under real failure and real concurrency: processes killed between a commit and
its delivery, several worker processes sharing one consumer, and how soon a waiting consumer
on PostgreSQL sees a commit. Forked processes (the test's imports are reused), bounded in time."""

from __future__ import annotations

import os
import random
import signal
import statistics
import threading
import time
from pathlib import Path

import pytest
from outbox_process import DEAL

import bpf

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")


def _fork(child) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            child()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        os._exit(code)
    return pid


def _logger(path: Path, tag: str):
    def action(event: bpf.Event) -> None:
        # One write(2) of one line with O_APPEND: whole, or not at all, under SIGKILL.
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            os.write(fd, f"{tag} {event.id}\n".encode())
        finally:
            os.close(fd)

    return action


def test_after_actions_survive_sigkill_between_commit_and_delivery(tmp_path):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    ran = tmp_path / "ran.log"
    actions = {"check": lambda e: None, "mail": _logger(ran, "mail"),
               "left": _logger(ran, "left")}
    deal = bpf.loads_process(DEAL)
    bpf.Engine(url, actions=actions).register(deal)
    rng = random.Random(13)
    kills = 20
    for round_ in range(kills):
        ready_r, ready_w = os.pipe()

        def child(round_: int = round_, ready_w: int = ready_w) -> None:
            engine = bpf.Engine(url, actions=actions)
            engine.register(deal)
            engine.deliver()  # the restart: what the killed one left
            os.write(ready_w, b"x")
            for i in range(100_000):
                engine.start("deal", {"id": f"r{round_}-{i}"}).next()

        pid = _fork(child)
        os.close(ready_w)
        assert os.read(ready_r, 1) == b"x"
        os.close(ready_r)
        time.sleep(rng.uniform(0.005, 0.15))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

    engine = bpf.Engine(url, actions=actions)
    engine.register(deal)
    engine.deliver()
    committed = {e.id for e in _all_events(engine) if e.kind == "next"}
    lines = ran.read_text().splitlines() if ran.exists() else []
    runs = [line.split() for line in lines]
    mailed = [i for tag, i in runs if tag == "mail"]
    assert committed, "no move committed before the kills: the test proves nothing"
    # Every committed change's after actions ran...
    assert committed <= set(mailed)
    assert committed <= {i for tag, i in runs if tag == "left"}
    # ...none for a change that did not commit...
    assert {i for _, i in runs} <= committed
    # ...and twice only for an event a kill caught between its action and its
    # acknowledgement: at most one per kill and action.
    assert len(mailed) - len(set(mailed)) <= kills
    engine.close()


def _all_events(engine: bpf.Engine) -> list[bpf.Event]:
    found, after = [], None
    while batch := engine.events(after, limit=1000):
        found += batch
        after = batch[-1].seq
    return found


WORKERS = 4
EVENTS = 2000


@pytest.mark.postgres
def test_four_workers_share_a_consumer_each_event_once_in_order_per_flow(
        postgres_url, tmp_path):
    plain = bpf.loads_process(DEAL.replace("after_exit: [left]", "")
                              .replace("on_enter: [check]", "")
                              .replace("after_enter: [mail]", ""))
    engine = bpf.Engine(postgres_url)
    engine.register(plain)
    with engine.batch():
        for i in range(EVENTS // 2):
            engine.start("deal", {"id": f"opp-{i}"}).next()
    engine.close()

    def worker(n: int) -> None:
        consumer = bpf.Engine(postgres_url).consumer("workers")
        out = (tmp_path / f"w{n}.log").open("w")
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 1.5:
            events = consumer.poll(limit=25)
            if not events:
                consumer.wait(0.2)
                continue
            idle_since = time.monotonic()
            for event in events:
                out.write(f"{event.seq} {event.flow_id} {time.monotonic_ns()}\n")
                out.flush()
                consumer.ack(event)
        consumer.release()
        out.close()

    pids = [_fork(lambda n=n: worker(n)) for n in range(WORKERS)]
    deadline = time.monotonic() + 60
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                assert os.waitstatus_to_exitcode(status) == 0
                break
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                pytest.fail("a worker did not finish within 60 s")
            time.sleep(0.05)

    handled = []
    busy = 0
    for n in range(WORKERS):
        lines = (tmp_path / f"w{n}.log").read_text().split("\n")[:-1]
        busy += bool(lines)
        handled += [(int(s), f, int(t)) for s, f, t in (x.split() for x in lines)]
    seqs = [s for s, _, _ in handled]
    assert sorted(seqs) == list(range(1, EVENTS + 1))  # each event exactly once
    by_flow: dict[str, list[tuple[int, int]]] = {}
    for seq, flow, at in handled:
        by_flow.setdefault(flow, []).append((at, seq))
    for flow, seen in by_flow.items():  # in handling time, the seqs climb
        assert [s for _, s in sorted(seen)] == sorted(s for _, s in seen), flow
    assert busy > 1, "one worker did everything: the others were never given a partition"


@pytest.mark.postgres
def test_a_waiting_postgresql_consumer_sees_a_commit_within_50_ms(postgres_url):
    plain = bpf.loads_process(DEAL.replace("after_exit: [left]", "")
                              .replace("on_enter: [check]", "")
                              .replace("after_enter: [mail]", ""))
    engine = bpf.Engine(postgres_url)
    engine.register(plain)
    reader = bpf.Engine(postgres_url)
    consumer = reader.consumer("latency")
    consumer.wait(0)  # starts listening
    seen: list[float] = []
    committed: list[float] = []
    stop = threading.Event()
    got = threading.Event()

    def wait() -> None:
        while not stop.is_set():
            if consumer.wait(0.5):
                for event in consumer.poll():
                    consumer.ack(event)
                    seen.append(time.perf_counter())
                    got.set()

    thread = threading.Thread(target=wait)
    thread.start()
    try:
        for i in range(21):
            got.clear()
            engine.start("deal", {"id": f"opp-{i}"})
            committed.append(time.perf_counter())
            assert got.wait(5)
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join()
    delays = [(s - c) * 1000 for s, c in zip(seen, committed, strict=True)]
    median = statistics.median(delays)
    print(f"commit to consumer: median {median:.1f} ms, max {max(delays):.1f} ms")
    assert median < 50
    engine.close()
    reader.close()
