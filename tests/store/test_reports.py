"""bpf.reports: the funnel, time in stage, stale flows and status counts, on every backend."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storekit import PROCESS, Clock, sales

import bpf
from bpf import reports

DAY = timedelta(days=1)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def pipeline(open_engine, clock):
    """Five opportunities over ten days (day 0 = clock start):

    A: qualify, develop on day 1, propose on day 3.
    B: develop on day 1, back to qualify on day 4, develop again on day 6.
    C: abandoned in qualify on day 8.
    D: develop on day 10.
    E: in qualify since day 0.
    """
    engine = open_engine(clock)
    start = clock.now
    flows = {n: engine.start(PROCESS, {"id": n, "budget": 1}) for n in "ABCDE"}

    def on_day(day, *moves):
        clock.now = start + day * DAY
        for name, move in moves:
            getattr(flows[name], move)()

    on_day(1, ("A", "next"), ("B", "next"))
    on_day(3, ("A", "next"))
    on_day(4, ("B", "previous"))
    on_day(6, ("B", "next"))
    on_day(8, ("C", "abandon"))
    on_day(10, ("D", "next"))
    clock.now = start + 21 * DAY
    return engine


def test_the_funnel_counts_each_stage_in_definition_order(pipeline):
    rows = reports.funnel(pipeline, PROCESS)

    assert [r.stage for r in rows] == ["qualify", "develop", "propose", "close"]
    qualify, develop, propose, close = rows
    assert (qualify.active, qualify.reached, qualify.advanced) == (1, 5, 3)
    assert (develop.active, develop.reached, develop.advanced) == (2, 3, 1)
    assert (propose.active, propose.reached, propose.advanced) == (1, 1, 0)
    assert (close.active, close.reached, close.advanced) == (0, 0, 0)
    assert qualify.conversion == pytest.approx(0.6)
    assert develop.conversion == pytest.approx(1 / 3)
    assert (propose.conversion, close.conversion) == (0.0, None)
    assert (qualify.median_time, develop.median_time, propose.median_time) == (
        2 * DAY, 2.5 * DAY, None,
    )
    assert [r.weighted for r in rows] == pytest.approx([0.1, 0.8, 0.7, 0.0])
    assert [r.stale for r in rows] == [1, 1, 0, 0]
    assert (qualify.name, qualify.phase, qualify.probability) == ("Qualify", "1-Qualify", 10)


def test_time_in_stage_sums_every_completed_stay(pipeline):
    times = reports.time_in_stage(pipeline, PROCESS)

    assert [(t.stage, t.stays, t.total, t.mean, t.median) for t in times] == [
        ("qualify", 5, 22 * DAY, 4.4 * DAY, 2 * DAY),
        ("develop", 2, 5 * DAY, 2.5 * DAY, 2.5 * DAY),
    ]


def test_stale_flows_are_those_in_their_stage_longer_than_stale_after_days(pipeline, clock):
    stale = reports.stale_flows(pipeline, PROCESS)

    assert sorted(f.record_id for f in stale) == ["B", "E"]
    later = clock.now + 4 * DAY  # day 25: D has been in develop 15 days, more than 14
    assert sorted(f.record_id for f in reports.stale_flows(pipeline, PROCESS, now=later)) == [
        "B", "D", "E",
    ]
    assert all(isinstance(f, bpf.Flow) for f in reports.stale_flows(pipeline, PROCESS))


def test_status_counts_list_every_status(pipeline):
    assert reports.status_counts(pipeline, PROCESS) == {"active": 4, "finished": 0, "aborted": 1}


def test_the_clock_of_a_stay_stops_while_the_flow_is_aborted(open_engine, clock):
    engine = open_engine(clock)
    flow = engine.start(PROCESS, {"id": "F", "budget": 1})
    clock.advance(days=1)
    flow.abandon()
    clock.advance(days=4)
    flow.reactivate()
    clock.advance(days=1)
    flow.next()

    (qualify,) = reports.time_in_stage(engine, PROCESS)

    assert (qualify.stays, qualify.total) == (2, 2 * DAY)


def test_flows_of_older_versions_count_under_their_stage_ids(pipeline):
    pipeline.register(sales(2))
    pipeline.start(PROCESS, {"id": "G"})

    rows = reports.funnel(pipeline, PROCESS)

    assert [r.stage for r in rows] == ["qualify", "build", "propose", "negotiate", "close",
                                       "develop"]
    assert rows[0].active == 2
    assert rows[-1].active == 2
    assert rows[-1].name == "Develop"


def test_reports_need_a_registered_process(open_engine):
    with pytest.raises(bpf.UnknownProcessError):
        reports.funnel(open_engine(), "nope")


def test_a_database_store_answers_reports_without_loading_flows(pipeline, monkeypatch):
    if not pipeline.store.durable:
        pytest.skip("the memory store holds every flow in memory anyway")

    def no(*args, **kwargs):
        raise AssertionError("a report read every flow")

    monkeypatch.setattr(pipeline.store, "iter_flows", no)
    monkeypatch.setattr(pipeline.store, "history", no)

    assert len(reports.funnel(pipeline, PROCESS)) == 4
    assert len(reports.time_in_stage(pipeline, PROCESS)) == 2
    assert reports.status_counts(pipeline, PROCESS)["active"] == 4
