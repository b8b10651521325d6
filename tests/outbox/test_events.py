"""Every committed change appends one event in its own transaction; nothing else does."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import attrs
import pytest

import bpf


def kinds(engine: bpf.Engine) -> list[tuple[str, str | None, str]]:
    return [(e.kind, e.from_stage, e.to_stage) for e in engine.events()]


def test_each_committed_change_appends_one_event_in_commit_order(make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    flow = engine.start("deal", {"id": "opp-1"}, actor=bpf.Actor("maria"))
    flow.next()
    flow.previous()
    flow.next()
    flow.next()
    flow.set_active("develop")
    flow.next()
    flow.finish()
    flow.reactivate()

    events = engine.events()
    assert [(e.kind, e.from_stage, e.to_stage) for e in events] == [
        ("start", None, "qualify"), ("next", "qualify", "develop"),
        ("previous", "develop", "qualify"), ("next", "qualify", "develop"),
        ("next", "develop", "close"), ("set_active", "close", "develop"),
        ("next", "develop", "close"), ("finish", "close", "close"),
        ("reactivate", "close", "close"),
    ]
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    assert len({e.id for e in events}) == len(events)
    first, finish = events[0], events[7]
    assert (first.flow_id, first.process, first.version, first.entity, first.record_id) == (
        flow.id, "deal", 1, "opportunity", "opp-1")
    assert (first.from_status, first.to_status, first.actor) == (None, "active", "maria")
    assert (finish.from_status, finish.to_status) == ("active", "finished")
    assert engine.events(after=events[2].seq, limit=2) == events[3:5]
    assert engine.events(process="other") == []


def test_a_batch_appends_its_events_at_commit_and_none_when_it_rolls_back(
        make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    with engine.batch():
        for i in range(3):
            engine.start("deal", {"id": f"opp-{i}"}).next()
    assert len(engine.events()) == 6
    with pytest.raises(RuntimeError), engine.batch():
        engine.start("deal", {"id": "opp-9"})
        raise RuntimeError("abort")
    assert len(engine.events()) == 6


def test_a_migration_appends_a_migrate_event(make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    engine.start("deal", {"id": "opp-1"})
    engine.register(attrs.evolve(deal, version=2))
    assert engine.migrate("deal", 2) == 1
    last = engine.events()[-1]
    assert (last.kind, last.version, last.to_stage) == ("migrate", 2, "qualify")


# -- refused or failed changes: no event, no after action ------------------------------------------


def test_a_failing_on_enter_action_leaves_no_event_and_runs_no_after_action(
        make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    flow = engine.start("deal", {"id": "opp-1"})
    actions.refuse = True
    with pytest.raises(bpf.HookError):
        flow.next()
    assert kinds(engine) == [("start", None, "qualify")]
    assert actions.ran == []
    engine.deliver()
    assert actions.ran == []


def test_a_cancelled_move_leaves_no_event_and_runs_no_after_action(make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    flow = engine.start("deal", {"id": "opp-1"})

    def cancel(event: bpf.FlowEvent) -> None:
        raise bpf.Cancel("not today")

    engine.on("stage_changing", cancel)
    with pytest.raises(bpf.Cancel):
        flow.next()
    assert kinds(engine) == [("start", None, "qualify")]
    engine.deliver()
    assert actions.ran == []


def test_a_move_losing_a_race_leaves_no_event_and_runs_no_after_action(
        make_persistent_engine, deal, actions):
    first, second = make_persistent_engine(actions=actions), make_persistent_engine(actions=actions)
    first.register(deal)
    second.register(deal)
    flow = first.start("deal", {"id": "opp-1"})
    stale = second.flow({"id": "opp-1"}, "deal")
    flow.next()
    del actions.ran[:]
    with pytest.raises(bpf.ConcurrencyError):
        stale.next()
    assert kinds(first) == [("start", None, "qualify"), ("next", "qualify", "develop")]
    second.deliver()
    assert actions.ran == []


# -- after actions ---------------------------------------------------------------------------------


def test_after_actions_run_once_after_the_commit(make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    seen = []
    engine.on("stage_changed", lambda e: seen.append(list(actions.ran)))
    flow = engine.start("deal", {"id": "opp-1"})
    flow.next()
    move = engine.events()[-1].seq
    assert actions.ran == [("left", move), ("mail", move)]
    assert seen[-1] == actions.ran  # run before the *_changed hooks, after the commit
    assert engine.deliver() == 0  # acknowledged: never again
    assert actions.ran == [("left", move), ("mail", move)]


def test_after_actions_of_a_batch_run_when_it_commits(make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    with engine.batch():
        engine.start("deal", {"id": "opp-1"}).next()
        assert actions.ran == []
    assert sorted(a for a, _ in actions.ran) == ["left", "mail"]


def test_a_failing_after_action_is_logged_and_delivered_again(make_engine, deal, actions, caplog):
    engine = make_engine(actions=actions)
    engine.register(deal)
    flow = engine.start("deal", {"id": "opp-1"})
    actions.fail_mail = True
    with caplog.at_level(logging.ERROR, logger="bpf.outbox"):
        flow.next()  # the move stands
    assert flow.stage.id == "develop"
    assert "mail server down" in caplog.text
    with pytest.raises(bpf.HookError, match="after_enter action 'mail' of stage 'develop'"):
        engine.deliver()
    actions.fail_mail = False
    assert engine.deliver() == 1
    move = engine.events()[-1].seq
    assert actions.ran.count(("mail", move)) == 1


def test_an_unknown_after_action_fails_at_register(make_engine, deal):
    engine = make_engine(actions={"check": print, "left": print})
    with pytest.raises(bpf.RegistrationError, match=r"after_enter names unknown action.*'mail'"):
        engine.register(deal)


def test_after_actions_of_a_dead_process_run_on_restart(make_persistent_engine, deal, actions):
    # A process that committed and died before delivering: simulated by a failing action,
    # then a new engine (a restart) delivering.
    engine = make_persistent_engine(actions=actions)
    engine.register(deal)
    actions.fail_mail = True
    engine.start("deal", {"id": "opp-1"}).next()
    engine.close()
    actions.fail_mail = False
    restarted = make_persistent_engine(actions=actions)
    restarted.register(deal)
    assert restarted.deliver() >= 1
    assert [a for a, _ in actions.ran].count("mail") == 1


# -- consumers -------------------------------------------------------------------------------------


def test_a_consumer_gets_each_event_and_keeps_its_position(make_persistent_engine, deal, actions):
    engine = make_persistent_engine(actions=actions)
    engine.register(deal)
    for i in range(5):
        engine.start("deal", {"id": f"opp-{i}"}).next()
    mailer = engine.consumer("mailer")
    got = []
    while events := mailer.poll(limit=3):
        for event in events[:2]:  # the third of each batch is not acknowledged...
            got.append(event.seq)
            mailer.ack(event)
    assert sorted(got) == [e.seq for e in engine.events()]  # ...and comes again
    engine.close()

    again = make_persistent_engine(actions=actions)
    assert again.consumer("mailer").poll() == []  # its position was kept
    again.start("deal", {"id": "opp-9"}) if again.register(deal) else None
    assert [e.record_id for e in again.consumer("mailer").poll()] == ["opp-9"]


def test_one_flows_events_come_in_order(make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    flows = [engine.start("deal", {"id": f"opp-{i}"}) for i in range(20)]
    for flow in flows:
        flow.next()
    consumer = engine.consumer("audit")
    by_flow: dict[str, list[int]] = {}
    seen: list[int] = []
    for event in consumer.follow(stop=lambda: len(seen) >= 40, idle=0.01):
        seen.append(event.seq)
        by_flow.setdefault(event.flow_id, []).append(event.seq)
    assert all(seqs == sorted(seqs) and len(seqs) == 2 for seqs in by_flow.values())


def test_a_consumer_of_one_process_passes_over_the_others(make_engine, deal, actions):
    engine = make_engine(actions=actions)
    engine.register(deal)
    engine.register(attrs.evolve(deal, process="other"))
    engine.start("other", {"id": "o-1"})
    engine.start("deal", {"id": "d-1"})
    consumer = engine.consumer("deals", process="deal")
    events = consumer.poll()
    assert [e.process for e in events] == ["deal"]
    consumer.ack(events[0])
    assert consumer.poll() == []


# -- retention -------------------------------------------------------------------------------------


def test_pruned_events_are_an_error_for_a_reader_behind_them(make_engine, deal, actions):
    now = [datetime(2026, 3, 1, tzinfo=UTC)]
    engine = make_engine(clock=lambda: now[0], actions=actions)
    engine.register(deal)
    slow = engine.consumer("slow")
    engine.start("deal", {"id": "opp-1"})
    assert slow.poll()  # it exists, at the start, and read but did not acknowledge
    slow.release()
    now[0] += timedelta(days=40)
    engine.start("deal", {"id": "opp-2"})
    assert engine.prune_events(before=now[0] - timedelta(days=30)) == 1
    assert [e.record_id for e in engine.events()] == ["opp-2"]
    with pytest.raises(bpf.EventsPrunedError, match="pruned"):
        engine.events(after=0)
    with pytest.raises(bpf.EventsPrunedError, match="consumer 'slow'"):
        slow.poll()
    fresh = engine.consumer("fresh")  # a new consumer starts at the oldest kept event
    assert [e.record_id for e in fresh.poll()] == ["opp-2"]


def test_the_memory_store_keeps_a_bounded_number_of_events(deal, actions):
    engine = bpf.Engine(actions=actions)
    engine.store.max_events = 100
    engine.register(deal)
    consumer = engine.consumer("slow")
    engine.start("deal", {"id": "opp-0"})
    assert consumer.poll()
    consumer.release()
    with engine.batch():
        for i in range(1, 300):
            engine.start("deal", {"id": f"opp-{i}"})
    events = engine.events(limit=1000)
    assert 90 <= len(events) <= 100 and events[-1].record_id == "opp-299"
    with pytest.raises(bpf.EventsPrunedError):
        consumer.poll()


def test_a_change_inside_the_applications_transaction_has_its_event_only_if_it_commits(
        make_persistent_engine, deal, actions):
    engine = make_persistent_engine(actions=actions)
    engine.register(deal)
    flow = engine.start("deal", {"id": "opp-1"})
    with engine.store.engine.connect() as conn:
        with engine.transaction(conn):
            flow.next()
        conn.rollback()
    assert kinds(engine) == [("start", None, "qualify")] and actions.ran == []
    flow.refresh()
    with engine.store.engine.connect() as conn:
        with engine.transaction(conn):
            flow.next()
        assert actions.ran == []  # not before the application commits
        conn.commit()
    assert kinds(engine)[-1] == ("next", "qualify", "develop")
    engine.deliver()  # SQLAlchemy tells of a Connection's commit before it is done
    assert [a for a, _ in actions.ran] == ["left", "mail"]


def test_after_actions_of_an_orm_session_run_once_it_commits(
        make_persistent_engine, deal, actions):
    from sqlalchemy.orm import Session

    engine = make_persistent_engine(actions=actions)
    engine.register(deal)
    flow = engine.start("deal", {"id": "opp-1"})
    with Session(engine.store.engine) as session:
        with engine.transaction(session):
            flow.next()
        assert actions.ran == []
        session.commit()
    assert [a for a, _ in actions.ran] == ["left", "mail"]
