"""Concurrent moves on one flow from several threads serialize; none is lost."""

from __future__ import annotations

import itertools
import threading

import pytest
from runtime_support import QUALIFIED, SELLER

import bpf


@pytest.mark.sync_only(
    "OS threads sharing one bpf.Engine; an AsyncEngine is shared by tasks of one event loop, "
    "and through the blocking face threads' calls would run one after another. The asyncio "
    "counterpart: tests/aio/test_async_tasks.py::test_tasks_moving_one_flow_lose_no_move")
def test_concurrent_moves_on_one_flow_are_all_recorded(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, customerneed="x")
    done: list[str] = []
    refused: list[str] = []
    start = threading.Barrier(6)

    def mover(n: int) -> None:
        start.wait()
        for _ in range(40):
            try:
                if n % 2:
                    flow.next(actor=SELLER)
                else:
                    flow.previous(actor=SELLER)
                done.append("move")
            except bpf.TransitionError:
                refused.append("refused")

    threads = [threading.Thread(target=mover, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = flow.history
    assert len(done) + len(refused) == 240
    assert len(history) == 1 + len(done)
    assert flow.revision == 1 + len(done)
    # The history is a consistent chain: each move starts where the previous one ended.
    for before, after in itertools.pairwise(history):
        assert after.from_stage == before.to_stage
    assert history[-1].to_stage == flow.stage.id
    assert deal["stepname"] == flow.stage.phase
