"""A version-1 database (records by id alone), written by the bpf of commit 1485a01, opens with
today's bpf: migrated in place to version 2 (records by (entity, id)), every flow, history entry,
last change and active flow read back as that bpf wrote them (fixtures/make_v1_db.py)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

import bpf
from bpf.store.sql import SCHEMA_VERSION, SQLStore

FIXTURES = Path(__file__).parent / "fixtures"
V1 = FIXTURES / "v1.db"
sys.path.insert(0, str(FIXTURES))
import v1_tables  # noqa: E402

OPP = "opportunity"


def v1_rows() -> dict[str, list[dict]]:
    """Every row of the version-1 fixture, by table, read without bpf."""
    con = sqlite3.connect(f"file:{V1}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return {t: [dict(r) for r in con.execute(f"SELECT * FROM {t} ORDER BY 1")]
                for t in ("bpf_flows", "bpf_flow_records", "bpf_history", "bpf_records")}
    finally:
        con.close()


def flow_of(rows: dict, entity: str, record_id: str, process: str) -> str:
    primary = {(s["entity"], s["record_id"]) for s in rows["bpf_flow_records"]}
    assert (entity, record_id) in primary
    (flow_id,) = [f["id"] for f in rows["bpf_flows"]
                  if f["process"] == process and f["record_id"] == record_id
                  and any(s["flow_id"] == f["id"] and s["position"] == 0 and s["entity"] == entity
                          for s in rows["bpf_flow_records"])]
    return flow_id


def check_migrated(store: SQLStore) -> None:
    """What the fixture holds, read back through the version-2 store."""
    rows = v1_rows()
    assert store.schema_version() == SCHEMA_VERSION == 4
    # Every flow and its history, as written.
    for f in rows["bpf_flows"]:
        row = store.get_flow(f["id"])
        spans = sorted((s for s in rows["bpf_flow_records"] if s["flow_id"] == f["id"]),
                       key=lambda s: s["position"])
        assert row.records == tuple((s["entity"], s["record_id"]) for s in spans)
        assert (row.process, row.stage, row.status, row.revision) == (
            f["process"], f["stage"], f["status"], f["revision"])
        entries = [h for h in rows["bpf_history"] if h["flow_id"] == f["id"]]
        assert [(e.kind, e.from_stage, e.to_stage, e.record_id, e.actor)
                for e in store.history(f["id"])] == [
            (h["kind"], h["from_stage"], h["to_stage"], h["record_id"], h["actor"])
            for h in entries]
        assert [e.at.replace(tzinfo=None) for e in store.history(f["id"])] == [
            datetime.fromisoformat(str(h["at"])).replace(tzinfo=None) for h in entries]
    assert len(list(store.iter_flows())) == len(rows["bpf_flows"]) == 6

    sales, crossing = "opportunity-sales", "lead-to-opportunity"
    opp1 = flow_of(rows, OPP, "opp-1", sales)
    opp2 = flow_of(rows, OPP, "opp-2", sales)
    lead2 = flow_of(rows, "lead", "lead-2", crossing)
    lead42 = flow_of(rows, "lead", "42", crossing)
    lead7 = flow_of(rows, "lead", "7", crossing)
    opp7 = flow_of(rows, OPP, "7", sales)

    def last(entity, rid):
        change = store.last_change(rid, entity)
        return None if change is None else (change.flow_id, change.kind, change.to_stage)

    # Records of one entity each: as version 1 had them.
    assert last(OPP, "opp-1") == (opp1, "previous", "develop")
    assert store.last_change("opp-1", OPP).actor == "maria"
    assert store.active_flow_id("opp-1", OPP) == opp1
    assert [r.id for r in store.record_flows("opp-2", OPP)] == [opp2, lead2]  # start order
    assert last(OPP, "opp-2") == (lead2, "next", "develop")  # the crossing flow moved last
    assert store.active_flow_id("opp-2", OPP) == opp2  # switched back to
    assert last("lead", "lead-2") == (lead2, "start", "qualify")
    assert store.active_flow_id("lead-2", "lead") == lead2
    # Lead 42 and opportunity 42, spanned by one flow: two records now.
    assert store.record_flows("42", "lead") == store.record_flows("42", OPP) == [
        store.get_flow(lead42)]
    assert store.get_flow(lead42).records == (("lead", "42"), (OPP, "42"))
    assert store.active_flow_id("42", "lead") == lead42  # the flow's start set it
    assert store.active_flow_id("42", OPP) is None
    assert last(OPP, "42") == (lead42, "next", "develop")
    # Lead 7 and opportunity 7 shared one row, the later flow's: each has its own again.
    assert [r.id for r in store.record_flows("7")] == [lead7, opp7]
    assert store.active_flow_id("7", OPP) == opp7
    assert last(OPP, "7") == (opp7, "next", "develop")
    assert store.active_flow_id("7", "lead") == lead7
    assert last("lead", "7") == (lead7, "start", "qualify")
    assert store.stage_counts(sales) == {(1, "develop"): 2}
    assert store.reached_counts(sales) == {"qualify": 3, "develop": 3, "propose": 2, "close": 1}


def engine_on(store: SQLStore) -> bpf.Engine:
    sys.path.insert(0, str(FIXTURES))
    from make_v1_db import lead_to_opportunity, sales

    engine = bpf.Engine(store)
    engine.register(sales())
    engine.register(lead_to_opportunity())
    return engine


def check_moves_on(store: SQLStore) -> None:
    """The migrated flows move on, and the new unique key lets a lead and an opportunity of
    one id each have a flow of a process."""
    engine = engine_on(store)
    flow = engine.flow("opp-1", "opportunity-sales", entity=OPP)
    flow.bind({"id": "opp-1", "budget": 10}).next()
    assert engine.flow("opp-1", "opportunity-sales", entity=OPP).stage.id == "propose"
    engine.start("lead-to-opportunity", {"id": "opp-1"})  # a lead opp-1: another record
    assert len(engine.flows("opp-1", entity="lead")) == 1


def test_a_version_1_sqlite_database_is_migrated_in_place_and_reads_back(tmp_path):
    path = tmp_path / "v1.db"
    shutil.copyfile(V1, path)

    store = SQLStore(f"sqlite:///{path}")
    try:
        check_migrated(store)
    finally:
        store.close()
    again = SQLStore(f"sqlite:///{path}")  # migrated once: opened as it is
    try:
        check_migrated(again)
        with again.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
            assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        check_moves_on(again)
    finally:
        again.close()


def test_the_fixture_is_a_version_1_database():
    digest = hashlib.sha256(V1.read_bytes()).hexdigest()
    con = sqlite3.connect(f"file:{V1}?mode=ro", uri=True)
    try:
        assert con.execute(
            "SELECT value FROM bpf_meta WHERE key = 'schema_version'").fetchone() == ("1",)
    finally:
        con.close()
    assert hashlib.sha256(V1.read_bytes()).hexdigest() == digest


@pytest.mark.postgres
def test_a_version_1_postgresql_database_is_migrated_in_place_and_reads_back(postgres_url):
    # A version-1 schema (the tables of 1485a01) holding the rows that bpf wrote to v1.db.
    server = sa.create_engine(postgres_url)
    rows = v1_rows()
    with server.begin() as conn:
        v1_tables.metadata.create_all(conn)
        conn.execute(v1_tables.meta.insert().values(key="schema_version", value="1"))
        for table in ("bpf_flows", "bpf_flow_records", "bpf_history", "bpf_records"):
            values = [{k: _aware(v) if k in _TIMES else v for k, v in r.items()}
                      for r in rows[table]]
            conn.execute(v1_tables.metadata.tables[table].insert(), values)
        # The ids were written by the database: carry its sequences on past them.
        for table in ("bpf_flow_records", "bpf_history"):
            conn.execute(sa.text(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f"(SELECT max(id) FROM {table}))"))
    server.dispose()

    store = SQLStore(postgres_url)
    try:
        check_migrated(store)
        check_moves_on(store)
    finally:
        store.close()


_TIMES = {"stage_started_at", "started_at", "completed_at", "changed_at", "at", "last_at"}


def _aware(value):
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)
