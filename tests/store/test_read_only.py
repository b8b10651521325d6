"""A SQLite database on read-only media: opened read-only (``mode=ro`` or ``immutable=1`` in a
``file:`` URI), read in full, never written, not even to open it."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
from storekit import PROCESS, engine_on

import bpf
from bpf.store.sql import SQLStore


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A database with one flow, closed, in a directory made read-only."""
    folder = tmp_path / "media"
    folder.mkdir()
    path = folder / "flows.db"
    engine = engine_on(f"sqlite:///{path}")
    engine.start(PROCESS, {"id": "opp-1", "budget": 1}).next()
    engine.close()
    folder.chmod(0o555)  # as root (the tests' user) this stops nothing: the checks below do
    yield path
    folder.chmod(0o755)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("options", ["immutable=1", "mode=ro"])
def test_a_read_only_database_is_read_and_never_written(database, options):
    before = digest(database)
    store = SQLStore(f"sqlite:///file:{database}?{options}&uri=true")
    try:
        assert store.read_only
        (flow,) = store.record_flows("opp-1", "opportunity")
        assert flow.stage == "develop"
        assert [e.kind for e in store.history(flow.id)] == ["start", "next"]
        assert store.stage_counts(PROCESS) == {(1, "develop"): 1}
        with pytest.raises(bpf.StoreError, match="cannot write: the store was opened read-only"):
            store.write([])
        stored = store.definitions()
        assert [(p, v) for p, v, _ in stored] == [("lead-to-opportunity", 1), (PROCESS, 1)]
        store.save_definition("other", 1, "text", "f")  # a reader registers: nothing saved
        assert store.definitions() == stored
        with pytest.raises(bpf.RegistrationError, match="another definition"):
            store.save_definition(PROCESS, 1, "text", "f")
    finally:
        store.close()
    assert digest(database) == before
    if options == "immutable=1":  # SQLite itself opens no -wal or -shm file then
        assert sorted(p.name for p in database.parent.iterdir()) == ["flows.db"]


def test_an_engine_on_a_read_only_database_refuses_a_move_with_a_store_error(database):
    engine = engine_on(f"sqlite:///file:{database}?immutable=1&uri=true")
    flow = engine.flow("opp-1", PROCESS, entity="opportunity").bind({"id": "opp-1", "budget": 1})
    with pytest.raises(bpf.StoreError, match="read-only"):
        flow.next()
    engine.close()


def test_a_read_only_database_without_bpf_tables_is_a_store_error(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(bpf.StoreError, match="no bpf tables in this database, opened read-only"):
        SQLStore(f"sqlite:///file:{empty}?immutable=1&uri=true")
    assert empty.read_bytes() == b""


def test_the_cli_reads_a_read_only_database(database):
    before = digest(database)
    url = f"sqlite:///file:{database}?immutable=1&uri=true"
    for command in (["funnel", "--db", url], ["history", "--db", url, "opp-1"]):
        bpf_command = str(Path(sys.executable).with_name("bpf"))
        done = subprocess.run([bpf_command, *command], capture_output=True, text=True,
                              env={**os.environ, "NO_COLOR": "1"}, timeout=120)
        assert done.returncode == 0, done.stderr
        assert "opp-1" in done.stdout or "develop" in done.stdout.lower()
    assert digest(database) == before
    assert sorted(p.name for p in database.parent.iterdir()) == ["flows.db"]
