"""A database URL the command line cannot use is bad input: one located line, exit 2."""

from __future__ import annotations

import pytest


@pytest.fixture
def database(bpf_main, tiny, write, tmp_path):
    """A database holding one flow on ``opp-1``."""
    db = tmp_path / "flows.db"
    scenario = write("s.yaml", "actors: {alice: [salesperson]}\nsteps:\n"
                     "  - start: {record: {id: opp-1}, actor: alice}\n")
    result = bpf_main("run", tiny, scenario, "--db", db)
    assert result.code == 0, result.err
    return db


@pytest.mark.parametrize("query", ["timeout=abc", "detect_types=abc"])
def test_a_database_url_with_a_bad_parameter_is_bad_input(bpf_main, database, query):
    url = f"sqlite:///{database}?{query}"
    result = bpf_main("history", "--db", url, "opp-1")
    assert "internal error" not in result.err
    assert result.code == 2
    assert result.out == ""
    (error,) = result.err.splitlines()
    assert error.startswith(f"bpf: error: {url}: ")
    assert query.split("=")[0] in error.removeprefix(f"bpf: error: {url}: ")
