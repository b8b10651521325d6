"""A PostgreSQL connection the server drops (restart, idle timeout) costs no move."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import bpf

pytestmark = pytest.mark.postgres

PROCESS = """
process: reconnect
name: Reconnect
entity: opportunity
pipeline_field: stepname
stages:
  - {id: qualify, name: Qualify, category: Qualify}
  - {id: develop, name: Develop, category: Develop}
  - {id: close, name: Close, category: Close}
"""


APP = "bpf-reconnect-test"


def drop_connections(server: sa.Engine) -> int:
    """Terminate the test engines' sessions, as a server restart would."""
    with server.begin() as conn:
        return conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = :app"
            ),
            {"app": APP},
        ).scalar_one()


def test_a_move_after_the_server_dropped_the_connection_succeeds(postgres_server, postgres_url):
    url = sa.make_url(postgres_url).update_query_dict({"application_name": APP})
    postgres_url = url.render_as_string(hide_password=False)
    engine = bpf.Engine(postgres_url)
    engine.register(bpf.loads_process(PROCESS))
    deal = {"id": "opp-1"}
    flow = engine.start("reconnect", deal)
    assert drop_connections(postgres_server) >= 1
    flow.next()
    assert flow.stage.id == "develop"
    assert drop_connections(postgres_server) >= 1
    # a read retries too
    assert [f.stage.id for f in engine.flows("opp-1", entity="opportunity")] == ["develop"]
    assert drop_connections(postgres_server) >= 1
    again = bpf.Engine(postgres_url)
    again.register(bpf.loads_process(PROCESS))
    assert again.flow("opp-1", "reconnect").stage.id == "develop"
    assert [h.kind for h in again.flow("opp-1", "reconnect").history] == ["start", "next"]
    engine.close()
    again.close()


def test_a_transaction_after_the_server_dropped_the_connection_succeeds(
    postgres_server, postgres_url
):
    # Starts and batches are not single statements: they run in an explicit transaction on
    # the store's write connection, which must be replaced just the same.
    url = sa.make_url(postgres_url).update_query_dict({"application_name": APP})
    engine = bpf.Engine(url.render_as_string(hide_password=False))
    engine.register(bpf.loads_process(PROCESS))
    first = engine.start("reconnect", {"id": "opp-batch-1"})
    assert drop_connections(postgres_server) >= 1
    second = engine.start("reconnect", {"id": "opp-batch-2"})
    assert drop_connections(postgres_server) >= 1
    with engine.batch():
        first.next()
        second.next()
        second.next()
    stored = {rid: engine.flow(rid, "reconnect") for rid in ("opp-batch-1", "opp-batch-2")}
    assert stored["opp-batch-1"].stage.id == "develop"
    assert stored["opp-batch-2"].stage.id == "close"
    assert [h.kind for h in stored["opp-batch-2"].history] == ["start", "next", "next"]
    engine.close()


def test_moves_go_on_after_the_server_dropped_every_pooled_connection(
    postgres_server, postgres_url
):
    # The write connection and the pool's others all dropped at once: the retry must not
    # take another dead connection from the pool.
    url = sa.make_url(postgres_url).update_query_dict({"application_name": APP})
    engine = bpf.Engine(url.render_as_string(hide_password=False))
    engine.register(bpf.loads_process(PROCESS))
    flows = [engine.start("reconnect", {"id": f"opp-{i}"}) for i in range(50)]
    for _ in range(20):
        held = [engine.store.engine.connect() for _ in range(4)]  # four in the pool
        for conn in held:
            conn.close()
        assert drop_connections(postgres_server) >= 5
        flows[0].next() if flows[0].stage.id == "qualify" else flows[0].previous()
    assert drop_connections(postgres_server) >= 1
    for flow in flows:  # 100 moves in a row, the first right after the drop
        flow.next()
        flow.next() if flow.stage.id == "develop" else flow.previous()
    assert engine.store.stage_counts("reconnect") == {(1, "close"): 50}
    engine.close()
