"""Where flows live: in memory (`MemoryStore`) or in SQLite / PostgreSQL (`SQLStore`)."""

from __future__ import annotations

from typing import Any

from bpf._errors import StoreError
from bpf.store.base import FlowRow, StageTime, Store
from bpf.store.memory import MemoryStore


def open_store(target: Any = None) -> Store:
    """A store for ``target``: None or "memory", a database URL, a SQLAlchemy Engine, a Store."""
    if target is None or target == "memory":
        return MemoryStore()
    if isinstance(target, Store):
        return target
    if isinstance(target, str):
        from bpf.store.sql import SQLStore

        return SQLStore(target)
    try:
        import sqlalchemy
    except ImportError:  # pragma: no cover - sqlalchemy is a dependency
        sqlalchemy = None
    if sqlalchemy is not None and isinstance(target, sqlalchemy.engine.Engine):
        from bpf.store.sql import SQLStore

        return SQLStore(target)
    raise StoreError(
        f"cannot open a store from {type(target).__name__}: pass None or 'memory', a database URL "
        "('sqlite:///bpf.db', 'postgresql+psycopg://user@host/db'), a SQLAlchemy Engine or a Store"
    )


def __getattr__(name: str) -> Any:
    # SQLStore imports SQLAlchemy: only when asked for, so in-memory use stays light.
    if name == "SQLStore":
        from bpf.store.sql import SQLStore

        return SQLStore
    raise AttributeError(f"module 'bpf.store' has no attribute {name!r}")


__all__ = ["FlowRow", "MemoryStore", "SQLStore", "StageTime", "Store", "open_store"]
