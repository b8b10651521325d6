"""The seam between bpf and the application: one transaction for the flow and the
application's row, double clicks raced by real OS processes, a server killed mid-request, and
records of two tables with one id."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import random
import signal
import time
from collections import Counter

import appkit
import pytest
import sqlalchemy as sa
from appkit import PROCESS, client, disagreements, fresh_look
from examples.fastapi_app import Opportunity, database
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

import bpf

ANN = bpf.Actor("ann", roles={"salesperson"})


class Boom(Exception):
    """What the application raises after bpf moved the flow."""


def new_opportunities(app, n: int) -> list[int]:
    http = client(app)
    return [http.post("/opportunities", json={"name": f"deal {i}"}).json()["opportunity"]["id"]
            for i in range(n)]


def test_two_servers_racing_on_every_double_click_move_each_record_once(make_app, db_url):
    """40 records, 2 rounds of clicks on each: the client reads the view, and the same click
    (its revision) reaches two servers, real OS processes with an engine each, at once."""
    app = make_app()
    http = client(app)
    ids = new_opportunities(app, 40)
    rounds = 2
    spawn = multiprocessing.get_context("spawn")
    barrier, results = spawn.Barrier(2, timeout=60), spawn.Queue()
    inboxes = [spawn.Queue(), spawn.Queue()]
    servers = [spawn.Process(target=appkit.double_clicker, args=(db_url, inbox, results, barrier))
               for inbox in inboxes]
    for server in servers:
        server.start()
    answers: Counter[tuple[int, ...]] = Counter()
    try:
        for _ in range(rounds):
            clicks = [(rid, http.get(f"/opportunities/{rid}").json()["process"]["revision"])
                      for rid in ids]
            for inbox in inboxes:
                inbox.put(clicks)
            both = [results.get(timeout=120) for _ in servers]
            for first, second in zip(*both, strict=True):
                assert first[0] == second[0]
                answers[tuple(sorted((first[1], second[1])))] += 1
        for inbox in inboxes:
            inbox.put(None)
        for server in servers:
            server.join(60)
            assert server.exitcode == 0
    finally:
        for server in servers:
            if server.is_alive():
                server.kill()
    assert answers == {(200, 409): rounds * len(ids)}  # one move and one refusal per click
    seen = fresh_look(db_url)
    assert disagreements(seen) == []
    double_moves = {rid: s["moves"] for rid, s in seen.items()
                    if s["moves"] != ["start"] + ["next"] * rounds}
    assert double_moves == {}
    phase = ["1-Qualify", "2-Develop", "3-Propose", "4-Close"][rounds]
    assert Counter(s["stepname"] for s in seen.values()) == {phase: len(ids)}


@pytest.mark.parametrize("raises", [True, False], ids=["raises", "commits"])
def test_the_application_raising_after_next_undoes_the_move_everywhere(make_app, db_url,
                                                                       raises):
    app = make_app()
    engine, db = app.state.engine, app.state.db
    (rid,) = new_opportunities(app, 1)
    committed_rows: list[str | None] = []

    def after_commit(event: bpf.FlowEvent) -> None:
        # A stage_changed hook runs once the application's transaction committed: another
        # connection already sees the new phase.
        with Session(db) as other:
            committed_rows.append(other.get(Opportunity, rid).stepname)

    engine.on("stage_changed", after_commit)
    with Session(db) as session:
        with contextlib.suppress(Boom), session.begin(), engine.transaction(session):
            opportunity = session.get(Opportunity, rid)
            flow = engine.flow(opportunity, PROCESS)
            flow.next(actor=ANN, expected_revision=1)
            assert (flow.stage.id, opportunity.stepname) == ("develop", "2-Develop")
            if raises:
                raise Boom("the application failed after the move")
        stage, phase, revision = ("qualify", "1-Qualify", 1) if raises else \
            ("develop", "2-Develop", 2)
        # In memory: the flow object and the record object.
        assert (flow.stage.id, flow.revision, len(flow.history)) == (stage, revision, revision)
        assert opportunity.stepname == phase
        assert engine.last_stage_change(opportunity).phase == phase
    # Read fresh: the application's row, the store's flow and last stage change.
    seen = fresh_look(db_url)[rid]
    assert (seen["stepname"], seen["stage"], seen["last_phase"], seen["revision"]) == (
        phase, stage, phase, revision)
    assert committed_rows == ([] if raises else ["2-Develop"])


def test_a_server_killed_at_random_points_leaves_every_record_agreeing_with_its_flow(
        make_app, db_url):
    """20 runs: a server moving records at random is SIGKILLed after a random delay; after
    each kill, the saved rows and the flows, read fresh, agree."""
    app = make_app()
    ids = new_opportunities(app, 5)
    # Each run's server is a fresh OS process, forked from a server process that imported
    # the libraries once: a spawned interpreter spends most of a second importing them.
    # (The fork server does not see this directory on its path, so appkit is not preloaded.)
    forks = multiprocessing.get_context("forkserver")
    forks.set_forkserver_preload(["bpf.runtime.engine", "bpf.store.sql", "fastapi.testclient",
                                  "pydantic", "sqlalchemy.orm", "psycopg", "jsonschema"])
    rnd = random.Random(12)
    answered = []
    for run in range(20):
        done = forks.Value("i", 0, lock=False)
        server = forks.Process(target=appkit.request_loop, args=(db_url, ids, run, done))
        server.start()
        try:
            deadline = time.monotonic() + 60
            while done.value < 1:  # its connections are open: the kill lands among requests
                assert time.monotonic() < deadline and server.is_alive(), "no server"
                time.sleep(0.005)
            time.sleep(rnd.uniform(0.0, 0.15))
            os.kill(server.pid, signal.SIGKILL)
            server.join(30)
        finally:
            if server.is_alive():
                server.kill()
        assert server.exitcode == -signal.SIGKILL
        answered.append(done.value)
        assert disagreements(fresh_look(db_url)) == [], f"run {run}, killed after {done.value}"
    print(f"requests answered before each kill: {answered}")  # shown with pytest -s


# -- two tables, one id --------------------------------------------------------------------------


class LeadBase(DeclarativeBase):
    pass


class Lead(LeadBase):
    """Another table of the application, whose ids overlap the opportunities'."""

    __tablename__ = "lead"

    id: Mapped[int] = mapped_column(primary_key=True)
    subject: Mapped[str]
    leadstage: Mapped[str | None]


LEADS = """
process: lead-qualification
name: Lead Qualification
entity: lead
pipeline_field: leadstage
stages:
  - {id: new, name: New, phase: 1-New}
  - {id: qualified, name: Qualified, phase: 2-Qualified}
"""


def test_lead_42_and_opportunity_42_each_see_only_their_own_flows(make_app, db_url):
    app = make_app()
    engine, db = app.state.engine, app.state.db
    LeadBase.metadata.create_all(db)
    engine.register(bpf.loads_process(LEADS, source="leads.yaml"))
    engine.entity("lead", model=Lead)
    with Session(db) as session, session.begin(), engine.transaction(session):
        session.add_all([Lead(id=42, subject="Renewal"), Opportunity(id=42, name="Renewal")])
        session.flush()
        lead_flow = engine.start("lead-qualification", session.get(Lead, 42))
        deal_flow = engine.start(PROCESS, session.get(Opportunity, 42), actor=ANN)
        deal_flow.next(actor=ANN, expected_revision=1)

    other_db = database(db_url)
    again = bpf.Engine(other_db)  # what another server sees
    again.register(bpf.standard_process("opportunity-sales"))
    again.register(bpf.loads_process(LEADS, source="leads.yaml"))
    again.entity("opportunity", model=Opportunity)
    again.entity("lead", model=Lead)
    try:
        for eng in (engine, again):
            with Session(db) as session:
                lead, deal = session.get(Lead, 42), session.get(Opportunity, 42)
                assert (lead.leadstage, deal.stepname) == ("1-New", "2-Develop")
                assert [f.id for f in eng.flows(lead)] == [lead_flow.id]
                assert [f.id for f in eng.flows(deal)] == [deal_flow.id]
                assert eng.active_flow(lead).id == lead_flow.id
                assert eng.active_flow(deal).id == deal_flow.id
                lead_change, deal_change = eng.last_stage_change(lead), eng.last_stage_change(deal)
                assert (lead_change.process, lead_change.phase) == ("lead-qualification",
                                                                     "1-New")
                assert (deal_change.process, deal_change.phase) == (PROCESS, "2-Develop")
                with pytest.raises(bpf.RecordError, match="several entities"):
                    eng.flows(42)

        # Moving the lead changes the lead's row and phase only.
        with Session(db) as session, session.begin(), engine.transaction(session):
            engine.flow(session.get(Lead, 42), "lead-qualification").next(expected_revision=1)
        with Session(db) as session:
            assert session.execute(sa.select(Lead.leadstage, Opportunity.stepname)
                                   .where(Lead.id == Opportunity.id)).one() == (
                "2-Qualified", "2-Develop")
            assert again.last_stage_change(session.get(Opportunity, 42)).phase == "2-Develop"
            assert again.last_stage_change(session.get(Lead, 42)).phase == "2-Qualified"
    finally:
        again.close()
        other_db.dispose()
