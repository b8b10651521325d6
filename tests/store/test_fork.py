"""A store crossing os.fork(): the child writes on a connection of its own."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from storekit import PROCESS, sales

import bpf


def _connections(url: str) -> int:
    """How many connections to the database at ``url`` the database sees from its clients
    named like ``url``'s (PostgreSQL), or this OS process holds open on the file (SQLite)."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = Path(parsed.database).resolve()
        fds = Path("/proc/self/fd")
        return sum(1 for fd in fds.iterdir() if _target(fd) == database)
    name = parsed.query["application_name"]
    server = sa.create_engine(parsed.difference_update_query(["application_name"]))
    try:
        with server.connect() as conn:
            return conn.scalar(
                sa.text("SELECT count(*) FROM pg_stat_activity WHERE application_name = :name"),
                {"name": name},
            )
    finally:
        server.dispose()


def _target(fd: Path) -> Path | None:
    try:
        return fd.resolve()
    except OSError:  # closed since listed
        return None


@pytest.mark.skipif(not hasattr(os, "fork") or not Path("/proc/self/fd").is_dir(),
                    reason="needs os.fork and /proc")
def test_a_forked_child_and_its_parent_both_write(persistent_url):
    url = persistent_url
    if url.startswith("postgresql"):  # name the store's connections, to count them
        url = sa.make_url(url).update_query_dict(
            {"application_name": f"bpf-fork-{uuid.uuid4().hex[:8]}"}
        ).render_as_string(hide_password=False)
    engine = bpf.Engine(url)
    engine.register(sales())
    # Writing opens the store's write connection before the fork:
    parent = engine.start(PROCESS, {"id": "opp-parent", "budget": 1000})
    pid = os.fork()
    if pid == 0:  # the child: must not write on the parent's connection
        code = 1
        try:
            engine.store.record_flows("opp-parent")  # the reads have a connection now
            inherited = _connections(url)
            child = engine.start(PROCESS, {"id": "opp-child", "budget": 1000})
            child.next()
            # Connections of its own, opened in this process, beside the parent's:
            code = 0 if _connections(url) > inherited else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent.next()
    parent.next()
    engine.close()

    again = bpf.Engine(url)
    again.register(sales())
    assert again.flow("opp-child", PROCESS).stage.id == "develop"
    assert again.flow("opp-parent", PROCESS).stage.id == "propose"
    assert [h.kind for h in again.flow("opp-parent", PROCESS).history] == ["start", "next", "next"]
    again.close()
