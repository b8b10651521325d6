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
