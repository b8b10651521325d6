"""Both engines on every store: each test here runs on `bpf.Engine` and on `bpf.AsyncEngine`,
on memory, SQLite and PostgreSQL (the backends of tests/conftest.py).

Tests are written once, awaited (``await engine.start(...)``, ``await flow.next()``); the sync
engine runs them through `Awaited`, which awaits nothing: it calls the engine and gives back
its results, flows wrapped the same way. So one test states one behaviour of both engines.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aio_support import SALES, Clock

import bpf

#: Flow methods awaited on both engines; ``history`` is a method of an `AsyncFlow` (it may
#: read the store) and a property of a `Flow`.
_FLOW_AWAITED = frozenset({"next", "previous", "set_active", "finish", "abandon", "reactivate",
                           "refresh", "view", "missing", "time_in_stage"})
_ENGINE_AWAITED = frozenset({"register", "processes", "process", "flows", "flow", "active_flow",
                             "last_stage_change", "get_flow", "start", "switch", "migrate",
                             "events", "deliver"})


def _wrap(value: Any) -> Any:
    if isinstance(value, bpf.Flow):
        return Awaited(value, _FLOW_AWAITED)
    if isinstance(value, list):
        return [_wrap(v) for v in value]
    return value


class Awaited:
    """A sync engine or flow with the awaited face of the async ones."""

    def __init__(self, target: Any, awaited: frozenset[str]) -> None:
        self._target = target
        self._awaited = awaited

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name == "history" and isinstance(self._target, bpf.Flow):
            async def history() -> Any:
                return value
            return history
        if name not in self._awaited:
            return _wrap(value)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return _wrap(value(*args, **kwargs))

        return call

    def __eq__(self, other: object) -> bool:
        other = other._target if isinstance(other, Awaited) else other
        return self._target == other

    def __hash__(self) -> int:
        return hash(self._target)

    def __repr__(self) -> str:
        return repr(self._target)

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[Awaited]:
        with self._target.batch():
            yield self

    @contextlib.asynccontextmanager
    async def transaction(self, conn: Any) -> AsyncIterator[Awaited]:
        with self._target.transaction(conn):
            yield self

    async def aclose(self) -> None:
        self._target.close()


def unwrap(flow: Any) -> Any:
    """The flow object itself (a sync `bpf.Flow` or a `bpf.AsyncFlow`)."""
    return flow._target if isinstance(flow, Awaited) else flow


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def new_engine(kind: str, store_url: str, clock: Clock
                     ) -> AsyncIterator[Callable[..., Any]]:
    """A factory of engines of ``kind`` on ``store_url``, with the test clock; closed after."""
    made: list[Any] = []

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        if kind == "sync":
            engine: Any = Awaited(bpf.Engine(store_url, **kwargs), _ENGINE_AWAITED)
        else:
            engine = bpf.AsyncEngine(store_url, **kwargs)
        made.append(engine)
        return engine

    make.kind = kind  # type: ignore[attr-defined]
    make.url = store_url  # type: ignore[attr-defined]
    yield make
    for engine in made:
        await engine.aclose()


@pytest.fixture
async def engine(new_engine: Callable[..., Any]) -> Any:
    engine = new_engine()
    await engine.register(bpf.loads_process(SALES, source="deal.yaml"))
    return engine


@pytest.fixture
def deal() -> dict:
    return {"id": "opp-1", "name": "10 laptops"}
