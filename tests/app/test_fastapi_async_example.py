"""The FastAPI example's asyncio twin (examples/fastapi_app/aio_app.py), through its HTTP API:
create, fill, move in one AsyncSession transaction; a double submit moves once."""

from __future__ import annotations

from appkit import USERS, fresh_look
from examples.fastapi_app import User, database
from examples.fastapi_app.aio_app import create_app
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session


def _users(url: str) -> None:
    db = database(url)
    from examples.fastapi_app import Base

    Base.metadata.create_all(db)
    with Session(db) as session, session.begin():
        for name, roles in USERS.items():
            session.add(User(name=name, roles=roles))
    db.dispose()


def test_the_async_app_creates_fills_and_moves_and_a_double_submit_moves_once(db_url):
    _users(db_url)
    with TestClient(create_app(db_url), headers={"X-User": "ann"}) as http:
        created = http.post("/opportunities", json={"name": "Renewal", "budgetamount": 1200})
        assert created.status_code == 201, created.text
        rid = created.json()["opportunity"]["id"]
        assert created.json()["opportunity"]["stepname"] == "1-Qualify"
        assert created.json()["process"]["revision"] == 1
        filled = http.patch(f"/opportunities/{rid}", json={"parentaccountid": "acme"})
        assert filled.status_code == 200
        first = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
        second = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 1})
        assert (first.status_code, second.status_code) == (200, 409)
        assert first.json()["opportunity"]["stepname"] == "2-Develop"
        assert second.json()["process"]["revision"] == 2
        back = http.post(f"/opportunities/{rid}/previous", json={"expected_revision": 2})
        assert back.status_code == 200
        refused = http.post(f"/opportunities/{rid}/previous", json={"expected_revision": 3})
        assert refused.status_code == 422 and refused.json()["reason"] == "beginning"
        denied = http.post(f"/opportunities/{rid}/next", json={"expected_revision": 3},
                           headers={"X-User": "eve"})
        assert denied.status_code == 403
    seen = fresh_look(db_url)[rid]
    assert (seen["stage"], seen["stepname"], seen["revision"], seen["moves"]) == (
        "qualify", "1-Qualify", 3, ["start", "next", "previous"])
