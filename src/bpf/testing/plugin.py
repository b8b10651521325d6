"""The bpf pytest plugin: ``--bpf-processes DIR`` and the ``bpf_engine`` fixtures.

Loaded in every pytest run of a project that has bpf installed, so it imports nothing heavy
until it is used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bpf", "bpf business process flows")
    group.addoption(
        "--bpf-processes", action="append", default=[], metavar="PATH",
        help="property-test every process YAML in PATH (a folder or a file); repeatable",
    )


@pytest.fixture
def bpf_engine() -> Any:
    """A fresh `bpf.Engine` with an in-memory store."""
    import bpf

    return bpf.Engine()


@pytest.fixture
def bpf_sqlite_engine(tmp_path: Any) -> Iterator[Any]:
    """A fresh `bpf.Engine` on a temporary SQLite file, closed after the test."""
    import bpf

    engine = bpf.Engine(f"sqlite:///{tmp_path / 'bpf.db'}")
    try:
        yield engine
    finally:
        engine.close()
