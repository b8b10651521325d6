"""What the application tests share: the example app on a database with its users, a gated
variant of its process, a fresh look at a record and its flow, and the code that runs in other
OS processes (two servers racing on double clicks, a server killed mid-request)."""

from __future__ import annotations

import random
from typing import Any

import sqlalchemy as sa
from examples.fastapi_app import Opportunity, User, create_app, database
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

import bpf

PROCESS = "opportunity-sales"
#: who calls the API: a salesperson, a manager, and someone the process does not let in
USERS = {"ann": "salesperson", "max": "sales-manager", "eve": "marketing"}

#: The shipped process as an organization gates it: Qualify needs the account and the budget.
GATED = """
extends: opportunity-sales
process: opportunity-gated-app
name: Opportunity Sales (gated)
stages:
  - id: qualify
    steps:
      require: [parentaccountid, budgetamount]
"""


def open_app(url: str, process: bpf.ProcessDefinition | None = None) -> FastAPI:
    """The example application on ``url``, with `USERS` in its user table."""
    app = create_app(url, process)
    with Session(app.state.db) as session, session.begin():
        for name, roles in USERS.items():
            if session.get(User, name) is None:
                session.add(User(name=name, roles=roles))
    return app


def close_app(app: FastAPI) -> None:
    app.state.engine.close()
    app.state.db.dispose()


def client(app: FastAPI, user: str = "ann") -> TestClient:
    return TestClient(app, headers={"X-User": user})


def fresh_look(url: str, process: str = PROCESS) -> dict[int, dict[str, Any]]:
    """Every opportunity as a new engine and a new session read them: the row's pipeline
    phase and status, and its flow's stage, phase, status, revision and moves."""
    db = database(url)
    engine = bpf.Engine(db)
    engine.register(bpf.standard_process(PROCESS) if process == PROCESS
                    else bpf.loads_process(GATED, source="gated.yaml"))
    try:
        with Session(db) as session:
            rows = session.scalars(sa.select(Opportunity).order_by(Opportunity.id)).all()
            seen = {}
            for row in rows:
                flow = engine.flow(row.id, process, entity="opportunity")
                last = engine.last_stage_change(row.id, entity="opportunity")
                seen[row.id] = {
                    "stepname": row.stepname, "statecode": row.statecode,
                    "stage": flow.stage.id, "phase": flow.stage.phase, "status": flow.status,
                    "revision": flow.revision, "last_phase": last.phase if last else None,
                    "moves": [e.kind for e in flow.history],
                }
            return seen
    finally:
        engine.close()
        db.dispose()


def disagreements(seen: dict[int, dict[str, Any]]) -> list[str]:
    """Records whose saved pipeline field differs from their flow's phase, or from the last
    stage change the store holds for them."""
    return [
        f"opportunity {rid}: row says {s['stepname']!r}, flow is at {s['stage']!r} "
        f"({s['phase']!r}), last change {s['last_phase']!r}"
        for rid, s in seen.items() if not s["stepname"] == s["phase"] == s["last_phase"]
    ]


# -- run in other processes --------------------------------------------------------------------


def double_clicker(url: str, requests: Any, results: Any, barrier: Any) -> None:
    """One of two servers, each with its own engine, receiving the same clicks: for every
    (opportunity id, revision the client's view showed), wait for the other server, then
    POST next with that revision; report the status per request. Runs until it gets None."""
    app = open_app(url)
    try:
        with client(app) as http:
            while (batch := requests.get()) is not None:
                statuses = []
                for rid, revision in batch:
                    barrier.wait()
                    r = http.post(f"/opportunities/{rid}/next",
                                  json={"expected_revision": revision})
                    statuses.append((rid, r.status_code))
                results.put(statuses)
    finally:
        close_app(app)


def request_loop(url: str, ids: list[int], seed: int, done: Any) -> None:
    """A server moving opportunities at random forever, each request as the example app
    serves it (read the view, move with its revision in one transaction with the record);
    ``done`` counts the requests answered. Killed by the test."""
    rnd = random.Random(seed)
    app = open_app(url)
    with client(app) as http:
        while True:
            rid = rnd.choice(ids)
            shown = http.get(f"/opportunities/{rid}").json()["process"]
            actions, move = shown["actions"], None
            if shown["status"] != "active":
                move = "reactivate"
            elif actions["finish"] and rnd.random() < 0.3:
                move = "finish"
            elif actions["next"]["allowed"] and rnd.random() < 0.7:
                move = "next"
            elif actions["previous"]:
                move = "previous"
            if move is not None:
                http.post(f"/opportunities/{rid}/{move}",
                          json={"expected_revision": shown["revision"], "outcome": "won"})
            done.value += 1  # a lock-free counter: a lock held at the kill would stay held
