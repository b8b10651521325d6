"""`Store.write(ops, connection=...)`: bpf's rows written through the application's own
SQLAlchemy connection, inside its transaction: seen by it before its commit, gone with its
rollback, kept by its commit; a refused write leaves the transaction usable."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from test_store_contract import OPP, Flow, write

import bpf
from bpf.store.sql import SQLStore


@pytest.fixture
def store(persistent_url):
    opened = SQLStore(persistent_url, busy_timeout=1)
    yield opened
    opened.close()


def count(conn, table="bpf_flows"):
    return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar()


def started_and_moved(store, conn) -> Flow:
    """Flow f1 on opp-1 started and moved to develop through ``conn``, in a transaction it
    leaves open."""
    flow = Flow("f1", "opp-1")
    conn.begin()
    store.write(flow.ops(active=True), connection=conn)
    flow.written()
    flow.move("next", "develop", hours=1)
    store.write(flow.ops(), connection=conn)  # a move of a flow of this transaction
    return flow


@pytest.mark.parametrize("commit", [True, False], ids=["commit", "rollback"])
def test_writes_are_seen_by_the_application_before_its_commit_and_end_with_it(store, commit):
    with store.engine.connect() as conn:
        flow = started_and_moved(store, conn)
        assert count(conn) == 1 and count(conn, "bpf_history") == 2
        assert store.get_flow("f1") is None  # the store's own connections: not committed yet
        (conn.commit if commit else conn.rollback)()

    if commit:
        assert store.get_flow("f1") == flow.row
        assert [e.kind for e in store.history("f1")] == ["start", "next"]
        assert store.last_change("opp-1", OPP).to_stage == "develop"
        flow.written().move("next", "propose", hours=2)
        write(store, flow)  # the store goes on from the committed revision
        assert store.get_flow("f1").stage == "propose"
    else:
        assert store.get_flow("f1") is None
        assert store.active_flow_id("opp-1", OPP) is None
        write(store, Flow("f1", "opp-1"))  # nothing of it is left
        assert store.get_flow("f1").stage == "qualify"


def test_a_rolled_back_move_leaves_the_store_to_read_the_flow_again(store):
    flow = Flow("f1", "opp-1")
    write(store, flow)
    flow.move("next", "develop", hours=1)
    with store.engine.connect() as conn, conn.begin() as tx:
        store.write(flow.ops(), connection=conn)
        tx.rollback()
    flow.row = flow.stored  # the engine undoes its in-memory change
    flow.entries, flow.new_records = [], []
    flow.move("next", "develop", hours=2)
    flow.move("next", "propose", hours=3)

    write(store, flow)

    history = store.history("f1")
    assert [(e.kind, e.to_stage) for e in history] == [
        ("start", "qualify"), ("next", "develop"), ("next", "propose")]
    assert store.time_in_stage("opportunity-sales")["qualify"].total_seconds == 2 * 3600


def test_a_refused_write_leaves_the_application_transaction_usable(store):
    write(store, Flow("f1", "opp-1"))
    stale = Flow("f1", "opp-1").written()
    stale.stored = stale.row = store.get_flow("f1")
    other = Flow("f2", "opp-2")
    with store.engine.connect() as conn:
        conn.begin()
        store.write(other.ops(), connection=conn)
        with pytest.raises(bpf.FlowExistsError, match="opportunity 'opp-1' already has"):
            store.write([*Flow("f3", "opp-3").ops(), *Flow("f4", "opp-1").ops()],
                        connection=conn)
        stale.row = stale.row._replace(revision=7)
        stale.stored = stale.row
        stale.move("next", "develop", hours=1)
        with pytest.raises(bpf.ConcurrencyError, match="'f1'"):
            store.write(stale.ops(), connection=conn)
        assert count(conn) == 2  # f1 and f2: nothing of the refused writes
        conn.commit()
    assert sorted(r.id for r in store.iter_flows()) == ["f1", "f2"]


def test_sqlite_writes_through_the_application_connection_holding_the_write_lock(tmp_path):
    url = f"sqlite:///{tmp_path / 'app.db'}"
    store = SQLStore(url, busy_timeout=1)
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE deal (id VARCHAR PRIMARY KEY, stage VARCHAR)"))
    try:
        with store.engine.connect() as conn:
            conn.begin()
            conn.execute(sa.text("INSERT INTO deal VALUES ('opp-1', 'qualify')"))  # write lock
            store.write(Flow("f1", "opp-1").ops(active=True), connection=conn)  # not locked
            conn.commit()
        assert store.get_flow("f1").stage == "qualify"
    finally:
        store.close()


def test_a_connection_of_another_kind_is_a_store_error(store):
    with pytest.raises(bpf.StoreError, match="must be a SQLAlchemy Connection"):
        store.write(Flow("f1").ops(), connection=object())


def test_reads_through_the_application_connection_see_its_uncommitted_writes(store):
    with store.engine.connect() as conn:
        flow = started_and_moved(store, conn)
        assert store.get_flow("f1", connection=conn) == flow.row
        assert store.record_flows("opp-1", OPP, connection=conn) == [flow.row]
        assert store.record_flows("opp-1", connection=conn) == [flow.row]
        assert [e.kind for e in store.history("f1", connection=conn)] == ["start", "next"]
        assert store.active_flow_id("opp-1", OPP, connection=conn) == "f1"
        assert store.last_change("opp-1", OPP, connection=conn).to_stage == "develop"
        # ...and the store's own reads see none of it before the commit.
        assert store.get_flow("f1") is None and store.record_flows("opp-1", OPP) == []
        conn.rollback()
    assert store.get_flow("f1") is None
