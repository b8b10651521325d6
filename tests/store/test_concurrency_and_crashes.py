"""Real OS processes against one database: no lost updates, and a SIGKILL leaves it consistent."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import storekit
from storekit import PROCESS

from bpf._history import STAGE_KINDS

HERE = Path(__file__).parent
ROUNDS = 6


def test_two_processes_moving_one_flow_one_wins_and_the_other_changes_nothing(open_db_engine):
    engine = open_db_engine()
    record_ids = [f"opp-{i}" for i in range(ROUNDS)]
    with engine.batch():
        for rid in record_ids:
            engine.start(PROCESS, {"id": rid})
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2, timeout=60), spawn.Queue()
    racers = [
        spawn.Process(target=storekit.race, args=(open_db_engine.url, record_ids, barrier, results))
        for _ in range(2)
    ]
    for racer in racers:
        racer.start()
    outcomes = [results.get(timeout=60) for _ in range(2 * ROUNDS)]
    for racer in racers:
        racer.join(timeout=60)
        assert racer.exitcode == 0

    for rid in record_ids:
        assert sorted(o for r, o in outcomes if r == rid) == ["conflict", "moved"], rid
        flow = engine.flow(rid, PROCESS)
        assert (flow.stage.id, flow.revision) == ("develop", 2)
        assert [e.kind for e in flow.history] == ["start", "next"]


def test_a_process_killed_mid_stream_leaves_every_flow_consistent(open_db_engine):
    flows = 40
    for seed, delay in enumerate((0.0, 0.004, 0.011, 0.023, 0.05)):  # kills landing anywhere
        kill_mid_stream(open_db_engine.url, flows, seed, delay)

        engine = open_db_engine()
        seen = list(engine.iter_flows(PROCESS))
        assert len(seen) == flows
        for flow in seen:
            history = flow.history
            assert history[0].kind == "start"
            assert flow.stage.id == history[-1].to_stage
            assert flow.traversed_path[-1] == flow.stage.id
            assert flow.revision == len(history)
            last = history[-1].kind
            assert flow.status == {"finish": "finished", "abandon": "aborted"}.get(last, "active")
            last_move = [e for e in history if e.kind in STAGE_KINDS][-1]
            assert engine.last_stage_change(flow.record_id, entity="opportunity") == last_move
        assert sum(len(f.history) for f in seen) > flows + 200 * (seed + 1)
        engine.close()


def kill_mid_stream(url: str, flows: int, seed: int, delay: float) -> None:
    """Run a writer streaming moves; SIGKILL it ``delay`` seconds after its 200th commit."""
    writer = subprocess.Popen(
        [sys.executable, str(HERE / "storekit.py"), "stream", url, str(flows), str(seed)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert writer.stdout.readline().strip() == "started", writer.stderr.read()
        commits = 0
        while commits < 200:
            line = writer.stdout.readline()
            assert line, writer.stderr.read()
            commits = int(line)
        time.sleep(delay)
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == -signal.SIGKILL
