"""Flows live in the database: a new engine, even in a new OS process, sees them as they were."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from storekit import PROCESS, Clock, engine_on, snapshot

import bpf

HERE = Path(__file__).parent


def in_new_process(url: str, targets: list[tuple[str, str]]) -> list[dict]:
    done = subprocess.run(
        [sys.executable, str(HERE / "storekit.py"), "snapshots", url, json.dumps(targets)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_new_engine_in_a_new_process_sees_every_flow_as_it_was(persistent_url):
    clock = Clock()
    engine = engine_on(persistent_url, clock=clock)
    seller = bpf.Actor("maria")
    moved = {"id": "opp-1", "budget": 5000}
    flow = engine.start(PROCESS, moved, actor=seller)
    for _ in range(3):
        clock.advance(hours=5, microseconds=7)
        flow.next(actor=seller)
    clock.advance(days=1)
    flow.previous()
    won = {"id": "opp-2", "budget": 1}
    other = engine.start(PROCESS, won)
    for _ in range(3):
        other.next()
    other.finish("won", actor=seller)
    lost = {"id": "opp-3", "budget": 1}
    engine.start(PROCESS, lost).abandon()
    lead, opportunity = {"id": "lead-1"}, {"id": "opp-9"}
    engine.start("lead-to-opportunity", lead).next(record=opportunity)
    targets = [("opp-1", PROCESS), ("opp-2", PROCESS), ("opp-3", PROCESS),
               ("lead-1", "lead-to-opportunity"), ("opp-9", "lead-to-opportunity")]
    here = [snapshot(engine, rid, process) for rid, process in targets]
    engine.close()

    there = in_new_process(persistent_url, targets)

    assert there == here
    assert there[0]["stage"] == "propose"
    assert there[0]["path"] == ["qualify", "develop", "propose"]
    assert [h[4] for h in there[0]["history"]] == ["start", "next", "next", "next", "previous"]
    assert there[0]["last_stage_change"][4] == "previous"
    assert (there[1]["status"], there[1]["outcome"]) == ("finished", "won")
    assert there[2]["status"] == "aborted"
    assert there[3]["records"] == {"lead": "lead-1", "opportunity": "opp-9"}


def test_times_come_back_timezone_aware_in_utc_to_the_microsecond(open_db_engine):
    clock = Clock(datetime(2026, 3, 29, 1, 59, 59, 999999, tzinfo=UTC))
    open_db_engine(clock).start(PROCESS, {"id": "opp-1"})

    flow = open_db_engine().flows("opp-1", entity="opportunity")[0]

    assert flow.started_at == clock.now
    assert flow.started_at.tzinfo == UTC
    assert flow.history[0].at == clock.now


def test_a_record_spanned_by_several_flows_lists_them_in_start_order(open_db_engine):
    engine = open_db_engine()
    lead, opportunity = {"id": "lead-1"}, {"id": "opp-1"}
    crossing = engine.start("lead-to-opportunity", lead)
    own = engine.start(PROCESS, opportunity)
    crossing.next(record=opportunity)

    flows = open_db_engine().flows("opp-1", entity="opportunity")

    assert [f.id for f in flows] == [own.id, crossing.id]


def test_a_stale_engine_gets_a_concurrency_error_and_changes_nothing(open_db_engine):
    first, second = open_db_engine(), open_db_engine()
    first.start(PROCESS, {"id": "opp-1", "budget": 1})
    mine = first.flow("opp-1", PROCESS).bind(record := {"id": "opp-1", "budget": 1})
    theirs = second.flow("opp-1", PROCESS).bind({"id": "opp-1", "budget": 1})
    theirs.next()

    with pytest.raises(bpf.ConcurrencyError, match="refresh"):
        mine.next()

    assert (mine.stage.id, mine.revision) == ("qualify", 1)
    assert "stepname" not in record
    assert [e.kind for e in second.flow("opp-1", PROCESS).history] == ["start", "next"]
    mine.refresh().next()
    assert mine.stage.id == "propose"
    assert [e.kind for e in mine.history] == ["start", "next", "next"]


def test_a_duplicate_start_racing_past_the_check_is_a_flow_exists_error(open_db_engine):
    first, second = open_db_engine(), open_db_engine()
    first.start(PROCESS, {"id": "opp-1"})
    # The engine checks the store before starting; a racing process can pass that check.
    second.store.record_flows = lambda record_id, entity=None: []  # type: ignore[method-assign]
    record = {"id": "opp-1"}

    with pytest.raises(bpf.FlowExistsError, match="opp-1"):
        second.start(PROCESS, record)

    assert "stepname" not in record
    assert len(list(first.iter_flows(PROCESS))) == 1


def test_two_starts_on_one_record_in_one_batch_are_refused_together(open_engine):
    engine = open_engine()

    # Inside a batch the first start is not stored yet: the store itself refuses the second.
    with pytest.raises(bpf.FlowExistsError, match="opp-1"), engine.batch():
        engine.start(PROCESS, {"id": "opp-2"})
        engine.start(PROCESS, {"id": "opp-1"})
        engine.start(PROCESS, {"id": "opp-1"})

    assert list(engine.iter_flows()) == []


def test_a_big_batch_lands_in_one_transaction(open_engine):
    engine = open_engine()
    records = [{"id": f"opp-{i}", "budget": i} for i in range(1500)]
    with engine.batch():
        for record in records:
            engine.start(PROCESS, record).next()

    again = open_engine() if open_engine.url != "memory" else engine
    assert again.store.stage_counts(PROCESS) == {(1, "develop"): 1500}
    assert [e.kind for e in again.flow("opp-1499", PROCESS).history] == ["start", "next"]
    assert again.last_stage_change("opp-7", entity="opportunity").to_stage == "develop"
    assert again.active_flow("opp-7", entity="opportunity").stage.id == "develop"


def test_a_failing_batch_writes_nothing(open_engine):
    engine = open_engine()
    engine.start(PROCESS, {"id": "opp-0"})

    with pytest.raises(bpf.FlowExistsError), engine.batch():
        for i in range(1, 50):
            engine.start(PROCESS, {"id": f"opp-{i}"})
        engine.start(PROCESS, {"id": "opp-0"})

    assert [f.record_id for f in engine.iter_flows(PROCESS)] == ["opp-0"]


def test_two_engines_moving_one_flow_keep_the_report_counts_right(open_db_engine):
    # A store that never read the flow it updates (after a restart) reads its state back in
    # the write: test_store_contract.py writes through such a store directly.
    first, second = open_db_engine(), open_db_engine()
    mine = first.start(PROCESS, {"id": "opp-1", "budget": 1})
    mine.next()
    theirs = second.flow("opp-1", PROCESS).bind({"id": "opp-1", "budget": 1})
    theirs.previous()

    with pytest.raises(bpf.ConcurrencyError, match="at revision 3"):
        mine.next()
    theirs.next()

    assert first.store.reached_counts(PROCESS) == {"qualify": 1, "develop": 1}
    assert first.store.advanced_counts(PROCESS) == {"qualify": 1}
    assert first.store.time_in_stage(PROCESS)["qualify"].stays == 2
