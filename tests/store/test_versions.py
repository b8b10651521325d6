"""Definition versions: flows stay on their version until migrated, explicitly and all at once."""

from __future__ import annotations

import pytest
from storekit import PROCESS, Clock, sales

import bpf


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def engine(open_engine, clock):
    return open_engine(clock)


def start(engine, rid, moves=0):
    record = {"id": rid, "budget": 1}
    flow = engine.start(PROCESS, record)
    for _ in range(moves):
        flow.next()
    return flow, record


def test_registering_version_2_leaves_version_1_flows_on_version_1(engine):
    old, _ = start(engine, "opp-1", moves=1)

    engine.register(sales(2))
    new, _ = start(engine, "opp-2")
    old.next()

    assert (old.version, old.stage.id) == (1, "propose")
    assert new.version == 2
    assert engine.store.stage_counts(PROCESS) == {(1, "propose"): 1, (2, "qualify"): 1}


def test_migrate_moves_active_flows_with_the_map_and_records_it(engine, clock, open_engine):
    at_develop, record = start(engine, "opp-1", moves=1)
    at_qualify, _ = start(engine, "opp-2")
    finished, _ = start(engine, "opp-3", moves=3)
    finished.finish("won")
    before = (at_develop.stage_started_at, at_develop.revision)
    engine.register(sales(2))
    clock.advance(days=1)
    manager = bpf.Actor("ines")

    moved = engine.migrate(PROCESS, to_version=2, stage_map={"develop": "build"}, actor=manager)

    assert moved == 2
    assert (at_develop.version, at_develop.stage.id) == (2, "build")
    assert at_develop.traversed_path == ("qualify", "build")
    assert (at_develop.stage_started_at, at_develop.revision) == (before[0], before[1] + 1)
    assert at_develop.history[-1][4:] == (
        "migrate", "develop", "build", "2-Develop", clock.now, "ines",
    )
    assert at_develop.history[-1].version == 2
    assert (at_qualify.version, at_qualify.stage.id) == (2, "qualify")
    assert finished.version == 1
    at_develop.bind(record).next()  # moves on along version 2
    assert at_develop.stage.id == "propose"
    if open_engine.url != "memory":
        again = open_engine()
        again.register(sales(2))
        assert again.flow("opp-2", PROCESS).version == 2
        assert [e.kind for e in again.flow("opp-1", PROCESS).history] == [
            "start", "next", "migrate", "next",
        ]


def test_a_stage_without_mapping_is_an_error_before_anything_changes(engine):
    at_develop, _ = start(engine, "opp-1", moves=1)
    at_propose, _ = start(engine, "opp-2", moves=2)
    engine.register(sales(2))

    with pytest.raises(bpf.TransitionError, match="'develop' \\(1 flow\\)") as raised:
        engine.migrate(PROCESS, to_version=2, stage_map={})

    assert raised.value.reason == "migrate"
    for flow in (at_develop, at_propose):
        assert flow.version == 1
        assert "migrate" not in [e.kind for e in flow.history]
    assert engine.store.stage_counts(PROCESS) == {(1, "develop"): 1, (1, "propose"): 1}


def test_a_map_to_a_stage_the_new_version_lacks_is_an_error(engine):
    start(engine, "opp-1", moves=1)
    engine.register(sales(2))

    with pytest.raises(bpf.UnknownStageError, match="'develop'"):
        engine.migrate(PROCESS, to_version=2, stage_map={"develop": "develop"})


def test_migrating_to_an_unregistered_version_is_an_error(engine):
    start(engine, "opp-1")

    with pytest.raises(bpf.UnknownProcessError):
        engine.migrate(PROCESS, to_version=2, stage_map={})


def test_the_pipeline_field_changes_only_when_the_phase_does(engine):
    flow, record = start(engine, "opp-1", moves=1)
    engine.register(sales(2))

    engine.migrate(PROCESS, to_version=2, stage_map={"develop": "build"})  # both 2-Develop

    assert record["stepname"] == "2-Develop"
    assert engine.last_stage_change("opp-1", entity="opportunity").kind == "next"

    engine.register(without_build(sales(2)))
    engine.migrate(PROCESS, to_version=3, stage_map={"build": "propose"})

    assert record["stepname"] == "3-Propose"
    last = engine.last_stage_change("opp-1", entity="opportunity")
    assert last[4:7] == ("migrate", "build", "propose")
    assert flow.traversed_path == ("qualify", "propose")


def without_build(v2):
    """Version 3: version 2 without its build stage."""
    return bpf.ProcessDefinition(
        process=v2.process, name=v2.name, entity=v2.entity, version=3,
        pipeline_field=v2.pipeline_field, stages=[s for s in v2.stages if s.id != "build"],
        outcomes=v2.outcomes,
    )


def test_a_flow_changed_elsewhere_during_the_migration_fails_it_whole(open_db_engine):
    engine, rival = open_db_engine(), open_db_engine()
    start(engine, "opp-1", moves=1)
    start(engine, "opp-2")
    engine.register(sales(2))
    theirs = rival.flow("opp-1", PROCESS).bind({"id": "opp-1", "budget": 1})
    write = engine.store.write

    def rival_commits_first(ops):
        theirs.next()
        write(ops)

    engine.store.write = rival_commits_first

    with pytest.raises(bpf.ConcurrencyError):
        engine.migrate(PROCESS, to_version=2, stage_map={"develop": "build"})

    assert [f.version for f in engine.iter_flows(PROCESS)] == [1, 1]
    assert engine.store.stage_counts(PROCESS) == {(1, "propose"): 1, (1, "qualify"): 1}


def test_a_stay_goes_on_through_a_migration_under_the_new_stage_id(engine, clock):
    flow, record = start(engine, "opp-1", moves=1)  # in develop
    clock.advance(days=2)
    engine.register(sales(2))
    engine.migrate(PROCESS, to_version=2, stage_map={"develop": "build"})
    clock.advance(days=3)
    flow.bind(record).next()
    # The whole five-day stay counts once, under the id the stage has now, as in the reports.
    assert flow.time_in_stage("build").days == 5
    assert engine.store.time_in_stage(PROCESS)["build"].total_seconds == 5 * 86400
