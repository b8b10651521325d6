"""The command line opens only the files its arguments name, never one named by data.

A process name read from a database is looked up among the names bpf ships; a NAME given on
the command line is looked up the same way, and anything written as a path is the user's own
file, opened as given (docs/cli.md, "Naming a process").
"""

from __future__ import annotations

import sqlite3

import pytest
from clitools import TINY

SCENARIO = """\
actors: {alice: [salesperson]}
steps:
  - start: {record: {id: opp-1}, actor: alice}
"""

SECRET = "root:x:0:0:the-secret-first-line:/root:/bin/bash\n"


@pytest.fixture
def database(bpf_main, tiny, write, tmp_path):
    """A database holding one flow of ``tiny-deal`` on ``opp-1``."""
    db = tmp_path / "flows.db"
    result = bpf_main("run", tiny, write("s.yaml", SCENARIO), "--db", db)
    assert result.code == 0, result.err
    return db


def rename_process(db, name: str) -> None:
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE bpf_flows SET process = ?", (name,))


@pytest.mark.parametrize("shape", ["absolute", "yaml"])
def test_history_does_not_open_a_file_a_process_name_in_the_database_names(
        bpf_main, database, tmp_path, monkeypatch, shape):
    secret = tmp_path / "secret.yaml"
    secret.write_text(SECRET, encoding="utf-8")
    if shape == "absolute":
        name = str(secret)
    else:
        monkeypatch.chdir(tmp_path)
        name = "secret.yaml"
    rename_process(database, name)
    result = bpf_main("history", "--db", database, "opp-1")
    assert result.code == 0, result.err
    assert "the-secret-first-line" not in result.out + result.err
    assert f"{name} v1: in qualify" in result.out  # unknown to bpf: stage ids, not names


def test_history_still_names_the_stages_of_a_shipped_process(bpf_main, database):
    rename_process(database, "opportunity-sales")
    result = bpf_main("history", "--db", database, "opp-1")
    assert result.code == 0, result.err
    assert "opportunity-sales v1: in Qualify" in result.out


def test_show_looks_a_name_up_among_the_shipped_processes_only(bpf_main, tmp_path, monkeypatch):
    (tmp_path / "evil.yaml").write_text(TINY, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # Once, a name was joined to the examples folder: an absolute or ../ name escaped it.
    for escaping in (str(tmp_path / "evil"), "../" + tmp_path.name + "/evil"):
        result = bpf_main("show", escaping)
        assert result.code == 2
        assert result.out == ""
        assert result.err == f"bpf: error: {escaping}: no such file\n"


def test_show_of_a_shipped_example_outside_the_examples_folder_is_refused(bpf_main):
    result = bpf_main("show", "../opportunity-sales")
    assert result.code == 2
    assert result.err == "bpf: error: ../opportunity-sales: no such file\n"


def test_a_path_on_the_command_line_is_the_users_own_file(bpf_main, tmp_path, monkeypatch):
    (tmp_path / "evil.yaml").write_text(TINY, encoding="utf-8")
    sub = tmp_path / "sub"
    sub.mkdir()
    monkeypatch.chdir(sub)
    for path in ("../evil.yaml", str(tmp_path / "evil.yaml")):
        result = bpf_main("show", path)
        assert result.code == 0, result.err
        assert result.out.startswith("tiny-deal v1: Tiny Deal")


def test_names_are_still_found_shipped_and_example(bpf_main):
    assert bpf_main("show", "opportunity-sales").out.startswith("opportunity-sales v1:")
    assert bpf_main("show", "opportunity-gated").out.startswith("opportunity-gated v")
    unknown = bpf_main("show", "no-such-process")
    assert unknown.code == 2
    assert unknown.err.startswith("bpf: error: no shipped process 'no-such-process'; ")
    assert unknown.err.rstrip().endswith("examples: opportunity-gated")

