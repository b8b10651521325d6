"""Runtime fixtures: the behaviour suite on both engines, `bpf.Engine` and `bpf.AsyncEngine`
(through its blocking face, blocking.py), on every store backend, with the test clock.

``kind`` is ``"sync"`` or ``"async"``; a test id reads ``[sqlite-async]``. A test that is about
the sync engine alone (OS threads sharing one `bpf.Engine`) is marked
``@pytest.mark.sync_only("why; where the async counterpart is")`` and skipped on ``async``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from blocking import open_engine
from runtime_support import SALES, Clock

import bpf


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sync_only(reason): a runtime test of the sync engine alone; skipped on "
        "the asyncio engine with the reason")


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    only = request.node.get_closest_marker("sync_only")
    if request.param == "async" and only is not None:
        pytest.skip(f"sync engine only: {only.args[0]}")
    return request.param


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _factory(store: Any, kind: str, clock: Clock) -> Iterator[Callable[..., Any]]:
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        made.append(open_engine(kind, store, **kwargs))
        return made[-1]

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for engine in made:
        engine.close()


@pytest.fixture
def new_engine(store_url: str, kind: str, clock: Clock) -> Iterator[Callable[..., Any]]:
    """A factory of engines of ``kind`` with the test clock, on every store backend
    (tests/conftest.py); closed after the test."""
    yield from _factory(store_url, kind, clock)


@pytest.fixture
def new_persistent_engine(persistent_url: str, kind: str, clock: Clock
                          ) -> Iterator[Callable[..., Any]]:
    """`new_engine` on SQLite and PostgreSQL only: engines of one factory share the
    database."""
    yield from _factory(persistent_url, kind, clock)


@pytest.fixture
def engine(new_engine: Callable[..., Any]) -> Any:
    engine = new_engine()
    engine.register(bpf.loads_process(SALES, source="deal.yaml"))
    return engine


@pytest.fixture
def deal() -> dict:
    return {"id": "opp-1", "name": "10 laptops"}
