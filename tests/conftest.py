"""Store fixtures shared by every suite: the same behaviour tests run on every backend.

``store_url``
    Parametrized over ``"memory"``, ``"sqlite"`` (a real file in ``tmp_path``) and
    ``"postgres"`` (a fresh schema per test on ``BPF_TEST_POSTGRES_URL``, default
    ``postgresql+psycopg://postgres@127.0.0.1:5432/test``). The value is what `bpf.Engine`
    takes: ``"memory"`` or a database URL.

``make_engine(clock=None, **kwargs) -> bpf.Engine``
    A factory of engines on ``store_url``; keyword arguments go to `bpf.Engine` (``actions``).
    Engines from one factory share the database, which is how "a new engine sees the same
    state" is tested; on ``memory`` every engine has its own store (flows are live objects of
    one engine), so such tests use ``persistent_url`` or skip on memory. Engines are closed
    after the test. ``make_engine.url`` is the store URL.

``persistent_url``
    Like ``store_url``, without memory: SQLite and PostgreSQL only.

PostgreSQL must run at 127.0.0.1:5432 (trust auth, database ``test``) on development machines
and in CI. When it cannot be reached the PostgreSQL tests fail if ``BPF_REQUIRE_POSTGRES=1``
(CI sets it) and are skipped with the reason otherwise.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import bpf

POSTGRES_URL = os.environ.get(
    "BPF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Any]:
    """A SQLAlchemy engine on the test server, or a skip/fail saying why there is none."""
    shown = re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", POSTGRES_URL)
    try:
        import sqlalchemy as sa

        server = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
        with server.connect():
            pass
    except Exception as exc:
        cause = " ".join(str(getattr(exc, "orig", None) or exc).split())
        reason = f"PostgreSQL not reachable at {shown}: {type(exc).__name__}: {cause}"
        if os.environ.get("BPF_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (BPF_REQUIRE_POSTGRES=1)", pytrace=False)
        pytest.skip(reason)
    yield server
    server.dispose()


@pytest.fixture
def postgres_url(postgres_server: Any) -> Iterator[str]:
    """The test server's URL with a fresh, empty schema first on the search path."""
    import sqlalchemy as sa

    schema = f"bpf_test_{uuid.uuid4().hex[:12]}"
    with postgres_server.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    url = postgres_server.url.update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with postgres_server.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))


BACKENDS = ("memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres))


def _url(request: pytest.FixtureRequest, kind: str, tmp_path: Any) -> str:
    if kind == "memory":
        return "memory"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'bpf.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return _url(request, request.param, tmp_path)


@pytest.fixture(params=BACKENDS[1:])
def persistent_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    return _url(request, request.param, tmp_path)


def _factory(url: str) -> Iterator[Callable[..., bpf.Engine]]:
    engines: list[bpf.Engine] = []

    def make_engine(clock: Callable[[], Any] | None = None, **kwargs: Any) -> bpf.Engine:
        engine = bpf.Engine(url, clock=clock, **kwargs)
        engines.append(engine)
        return engine

    make_engine.url = url  # type: ignore[attr-defined]
    yield make_engine
    for engine in engines:
        engine.close()


@pytest.fixture
def make_engine(store_url: str) -> Iterator[Callable[..., bpf.Engine]]:
    yield from _factory(store_url)


@pytest.fixture
def make_persistent_engine(persistent_url: str) -> Iterator[Callable[..., bpf.Engine]]:
    """`make_engine` on SQLite and PostgreSQL only."""
    yield from _factory(persistent_url)
