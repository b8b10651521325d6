"""The engines an example runs on: the user's factory (or `bpf.Engine`), on memory or on a
temporary SQLite file, with the example's processes registered and a no-op for every stage
action the engine lacks."""

from __future__ import annotations

import contextlib
import inspect
import os
import tempfile
import warnings
from collections.abc import Callable, Sequence
from typing import Any

from bpf._errors import PipelineFieldWarning
from bpf.definition.model import ProcessDefinition
from bpf.runtime.engine import Engine


def _noop_action(event: Any) -> None:
    """Stands in for a stage action the check's engine does not have."""


def _call_factory(factory: Callable[..., Any], url: str | None) -> Engine:
    if url is None:
        try:
            takes_store = bool(inspect.signature(factory).parameters)
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            takes_store = True
        engine = factory(None) if takes_store else factory()
    else:
        engine = factory(url)
    if not isinstance(engine, Engine):
        raise TypeError(
            f"engine_factory must return a bpf.Engine, got {type(engine).__name__}"
        )
    return engine


def open_engine(
    factory: Callable[..., Engine] | None, url: str | None,
    definitions: Sequence[ProcessDefinition],
) -> Engine:
    """An engine from ``factory`` (default `bpf.Engine`) on ``url`` (None: memory), with
    ``definitions`` registered."""
    engine = _call_factory(factory or Engine, url)
    for definition in definitions:
        for stage in definition.stages:
            for name in stage.actions:
                engine.actions.setdefault(name, _noop_action)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PipelineFieldWarning)
        for definition in definitions:
            engine.register(definition)
    return engine


def temporary_database() -> str:
    """The path of a new, empty SQLite file."""
    fd, path = tempfile.mkstemp(prefix="bpf-check-", suffix=".db")
    os.close(fd)
    return path


def remove_database(path: str) -> None:
    """Remove a SQLite file and the journal files next to it."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(OSError):
            os.remove(path + suffix)


def is_postgres(store: object) -> bool:
    """Whether ``store`` is a PostgreSQL URL (``postgresql+psycopg://...``)."""
    return isinstance(store, str) and store.startswith(("postgresql", "postgres:"))


def example_store(kind: str) -> tuple[str | None, Callable[[], None]]:
    """A fresh, empty store for one example: its URL (None: memory) and how to remove it.

    ``kind`` is "memory", "sqlite" (a temporary file) or a PostgreSQL URL (a schema of its own
    on that database, first on the search path, dropped afterwards)."""
    if kind == "memory":
        return None, lambda: None
    if kind == "sqlite":
        path = temporary_database()
        return f"sqlite:///{path}", lambda: remove_database(path)
    return _temporary_schema(kind)


#: One SQLAlchemy engine per PostgreSQL URL, to create and drop the examples' schemas.
_SERVERS: dict[str, Any] = {}


def _temporary_schema(url: str) -> tuple[str, Callable[[], None]]:
    import uuid

    import sqlalchemy as sa

    server = _SERVERS.get(url)
    if server is None:
        server = _SERVERS[url] = sa.create_engine(url, poolclass=sa.pool.NullPool)
    schema = f"bpf_check_{uuid.uuid4().hex[:12]}"
    with server.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    scoped = server.url.update_query_dict({"options": f"-csearch_path={schema}"})

    def drop() -> None:
        with server.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

    return scoped.render_as_string(hide_password=False), drop
