"""Engines with the test processes registered, on every backend (or the persistent ones)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from storekit import lead_to_opportunity, sales

import bpf


def _registering(make: Callable[..., bpf.Engine]) -> Callable[..., bpf.Engine]:
    def open_engine(clock: Any = None, **kwargs: Any) -> bpf.Engine:
        engine = make(clock, **kwargs)
        engine.register(sales(1))
        engine.register(lead_to_opportunity())
        return engine

    open_engine.url = make.url  # type: ignore[attr-defined]
    return open_engine


@pytest.fixture
def open_engine(make_engine: Callable[..., bpf.Engine]) -> Callable[..., bpf.Engine]:
    """`make_engine` with the sales and lead-to-opportunity processes registered."""
    return _registering(make_engine)


@pytest.fixture
def open_db_engine(make_persistent_engine: Callable[..., bpf.Engine]) -> Callable[..., bpf.Engine]:
    """`open_engine` on SQLite and PostgreSQL only: engines share the database."""
    return _registering(make_persistent_engine)
