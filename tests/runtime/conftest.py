"""Runtime fixtures: an engine on every store backend, with the test clock."""

from __future__ import annotations

import pytest
from runtime_support import SALES, Clock

import bpf


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def new_engine(make_engine, clock: Clock):
    """A factory of engines with the test clock, on every store backend (tests/conftest.py)."""

    def make(**kwargs):
        kwargs.setdefault("clock", clock)
        return make_engine(**kwargs)

    return make


@pytest.fixture
def engine(new_engine) -> bpf.Engine:
    engine = new_engine()
    engine.register(bpf.loads_process(SALES, source="deal.yaml"))
    return engine


@pytest.fixture
def deal() -> dict:
    return {"id": "opp-1", "name": "10 laptops"}
