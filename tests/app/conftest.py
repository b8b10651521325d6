"""The application tests run the example of examples/fastapi_app on SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the application tests need the 'test' extra (FastAPI)")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # examples.fastapi_app; processes started here inherit it

import appkit  # noqa: E402  (needs the path above)


@pytest.fixture
def db_url(persistent_url: str) -> str:
    """A SQLite file or a fresh PostgreSQL schema: where the application and bpf keep their
    tables."""
    return persistent_url


@pytest.fixture
def make_app(db_url: str) -> Iterator[Callable[..., Any]]:
    """Opens the example application on ``db_url`` (``process=`` another definition); every
    app opened is closed after the test."""
    apps: list[Any] = []

    def make(process: Any = None) -> Any:
        app = appkit.open_app(db_url, process)
        apps.append(app)
        return app

    yield make
    for app in apps:
        appkit.close_app(app)
