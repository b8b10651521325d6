"""The FastAPI example, through its HTTP API: create, fill, move; a double submit moves once;
the gate, the roles and the refusals as HTTP statuses; the view matches its schema."""

from __future__ import annotations

import jsonschema
import pytest
from appkit import GATED, client, fresh_look

import bpf
from bpf.runtime.view import view_schema


def valid(body: dict) -> dict:
    """The response's process bar, checked against the view's JSON Schema."""
    jsonschema.validate(body["process"], view_schema())
    return body["process"]


def test_create_fill_and_move_an_opportunity(make_app, db_url):
    http = client(make_app())
    created = http.post("/opportunities", json={"name": "Renewal", "budgetamount": 1200})
    assert created.status_code == 201
    rid, shown = created.json()["opportunity"]["id"], valid(created.json())
    assert created.json()["opportunity"]["stepname"] == "1-Qualify"
    assert (shown["stage"], shown["revision"], shown["record"]) == (
        "qualify", 1, {"entity": "opportunity", "id": str(rid)})

    filled = http.patch(f"/opportunities/{rid}", json={"parentaccountid": "acme",
                                                      "decisionmaker": True})
    assert filled.status_code == 200
    steps = {s["field"]: s["filled"] for s in valid(filled.json())["stages"][0]["steps"]}
    assert steps["parentaccountid"] and steps["budgetamount"] and steps["decisionmaker"]
    assert not steps["purchaseprocess"]

    moved = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
    assert moved.status_code == 200
    assert (valid(moved.json())["stage"], moved.json()["opportunity"]["stepname"]) == (
        "develop", "2-Develop")
    again = http.get(f"/opportunities/{rid}")
    assert valid(again.json()) == moved.json()["process"]
    assert fresh_look(db_url)[rid] | {"moves": None} == {
        "stepname": "2-Develop", "statecode": "open", "stage": "develop", "phase": "2-Develop",
        "status": "active", "revision": 2, "last_phase": "2-Develop", "moves": None,
    }


def test_a_double_submit_moves_once_and_the_second_gets_409_with_the_view_of_now(make_app,
                                                                                 db_url):
    http = client(make_app())
    rid = http.post("/opportunities", json={"name": "Renewal"}).json()["opportunity"]["id"]
    first = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
    second = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
    assert (first.status_code, second.status_code) == (200, 409)
    assert "changed since it was shown" in second.json()["detail"]
    now = valid(second.json())
    assert (now["stage"], now["revision"]) == ("develop", 2)
    assert second.json()["opportunity"]["stepname"] == "2-Develop"
    seen = fresh_look(db_url)[rid]
    assert (seen["stage"], seen["stepname"], seen["moves"]) == (
        "develop", "2-Develop", ["start", "next"])


def test_a_stale_click_on_every_action_is_a_409_and_changes_nothing(make_app, db_url):
    http = client(make_app())
    rid = http.post("/opportunities", json={"name": "Renewal"}).json()["opportunity"]["id"]
    http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
    for action in ("next", "previous", "finish", "abandon", "reactivate"):
        stale = http.post(f"/opportunities/{rid}/{action}",
                          json={"expected_revision": 1, "outcome": "won"})
        assert stale.status_code == 409, action
        assert valid(stale.json())["revision"] == 2
    seen = fresh_look(db_url)[rid]
    assert (seen["stage"], seen["revision"], seen["stepname"]) == ("develop", 2, "2-Develop")


def test_a_gate_refuses_with_422_naming_the_missing_fields(make_app, db_url):
    app = make_app(bpf.loads_process(GATED, source="gated.yaml"))
    http = client(app)
    rid = http.post("/opportunities", json={"name": "Renewal"}).json()["opportunity"]["id"]
    refused = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
    assert refused.status_code == 422
    assert refused.json()["reason"] == "gate"
    assert refused.json()["missing"] == ["parentaccountid", "budgetamount"]
    assert refused.json()["problems"] == {"parentaccountid": "not filled",
                                          "budgetamount": "not filled"}
    shown = valid(http.get(f"/opportunities/{rid}").json())
    assert (shown["stage"], shown["revision"]) == ("qualify", 1)
    assert shown["actions"]["next"] == {"allowed": False, "reason": "gate",
                                        "missing": ["parentaccountid", "budgetamount"]}

    http.patch(f"/opportunities/{rid}", json={"parentaccountid": "acme", "budgetamount": 900})
    moved = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
    assert moved.status_code == 200 and valid(moved.json())["stage"] == "develop"
    assert fresh_look(db_url, "opportunity-gated-app")[rid]["stepname"] == "2-Develop"


def test_who_may_do_what(make_app):
    app = make_app()
    rid = client(app).post("/opportunities", json={"name": "Renewal"}).json()["opportunity"]["id"]
    outsider = client(app, "eve")  # marketing: not a role of the process
    assert outsider.post(f"/opportunities/{rid}/next",
                         json={"expected_revision": 1}).status_code == 403
    assert outsider.post("/opportunities", json={"name": "Mine"}).status_code == 403
    shown = valid(outsider.get(f"/opportunities/{rid}").json())
    assert shown["actions"]["next"]["allowed"] is False
    assert shown["actions"]["next"]["reason"] == "role"
    assert client(app, "nobody").get(f"/opportunities/{rid}").status_code == 401
    manager = client(app, "max")
    assert manager.post(f"/opportunities/{rid}/next",
                        json={"expected_revision": 1}).status_code == 200


def test_finish_reactivate_and_the_refusals_of_the_bar(make_app, db_url):
    http = client(make_app())
    rid = http.post("/opportunities", json={"name": "Renewal"}).json()["opportunity"]["id"]
    back = http.post(f"/opportunities/{rid}/previous", json={"expected_revision": 1})
    assert (back.status_code, back.json()["reason"]) == (422, "beginning")
    early = http.post(f"/opportunities/{rid}/finish", json={"expected_revision": 1,
                                                           "outcome": "won"})
    assert early.status_code == 422
    for revision in (1, 2, 3):
        assert http.post(f"/opportunities/{rid}/next",
                         json={"expected_revision": revision}).status_code == 200
    won = http.post(f"/opportunities/{rid}/finish", json={"expected_revision": 4,
                                                         "outcome": "won"})
    assert won.status_code == 200
    assert valid(won.json())["status"] == "finished"
    assert (won.json()["opportunity"]["statecode"], won.json()["opportunity"]["statuscode"]) \
        == ("won", "won")
    reopened = http.post(f"/opportunities/{rid}/reactivate", json={"expected_revision": 5})
    assert reopened.status_code == 200
    assert reopened.json()["opportunity"]["statecode"] == "open"
    assert valid(reopened.json())["actions"]["finish"] == ["won", "lost"]
    gone = http.post(f"/opportunities/{rid}/abandon", json={"expected_revision": 6})
    assert valid(gone.json())["status"] == "aborted"
    seen = fresh_look(db_url)[rid]
    assert (seen["status"], seen["statecode"], seen["stepname"]) == ("aborted", "open", "4-Close")
    assert http.get("/opportunities/999").status_code == 404


@pytest.mark.parametrize("body", [{"stepname": "4-Close"}, {"statecode": "won"}])
def test_a_client_cannot_write_what_bpf_writes(make_app, body):
    http = client(make_app())
    rid = http.post("/opportunities", json={"name": "Renewal"}).json()["opportunity"]["id"]
    assert http.patch(f"/opportunities/{rid}", json=body).status_code == 422
    assert http.get(f"/opportunities/{rid}").json()["opportunity"]["stepname"] == "1-Qualify"
