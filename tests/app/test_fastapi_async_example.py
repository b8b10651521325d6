"""The FastAPI example's asyncio twin (examples/fastapi_app/aio_app.py), through its HTTP API:
create, fill, move in one AsyncSession transaction; a double submit moves once, whether the
two requests come one after the other (TestClient) or at once (httpx's AsyncClient)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
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


# -- over httpx's AsyncClient: requests in flight together, in the app's event loop -------------


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _httpx() -> Any:
    """httpx's successor (httpx2, which Starlette 1.x uses), or httpx itself."""
    try:
        import httpx2 as httpx
    except ImportError:
        import httpx
    return httpx


@contextlib.asynccontextmanager
async def async_client(url: str) -> AsyncIterator[Any]:
    """The asyncio app on ``url``, served in this event loop (its lifespan opened), and an
    `AsyncClient` calling it as ann."""
    httpx = _httpx()
    app = create_app(url)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://app",
                                     headers={"X-User": "ann"}) as http:
            yield http


@pytest.mark.anyio
async def test_a_double_submit_sent_at_once_moves_once_and_other_records_all_move(db_url):
    _users(db_url)
    async with async_client(db_url) as http:
        ids = []
        for i in range(6):
            created = await http.post("/opportunities", json={"name": f"Deal {i}",
                                                              "budgetamount": 1200})
            assert created.status_code == 201, created.text
            ids.append(created.json()["opportunity"]["id"])
            filled = await http.patch(f"/opportunities/{ids[-1]}",
                                      json={"parentaccountid": "acme"})
            assert filled.status_code == 200, filled.text
        rid, others = ids[0], ids[1:]

        def move(record: int) -> Any:
            return http.post(f"/opportunities/{record}/next", json={"expected_revision": 1})

        # The same click twice, both requests in flight together: one moves, one is told.
        first, second = await asyncio.gather(move(rid), move(rid))
        assert sorted((first.status_code, second.status_code)) == [200, 409]
        late = second if second.status_code == 409 else first
        assert late.json()["process"]["revision"] == 2
        # Different records moved at once: every one moves.
        answers = await asyncio.gather(*(move(other) for other in others))
        assert [a.status_code for a in answers] == [200] * len(others), [a.text for a in answers]
    for record in ids:
        seen = fresh_look(db_url)[record]
        assert (seen["stage"], seen["stepname"], seen["revision"], seen["moves"]) == (
            "develop", "2-Develop", 2, ["start", "next"])
