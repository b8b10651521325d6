"""A database URL the command line cannot use is bad input: one located line, exit 2."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("query", ["timeout=abc", "detect_types=abc"])
def test_a_database_url_with_a_bad_parameter_is_bad_input(bpf_main, tmp_path, query):
    database = tmp_path / "flows.db"
    database.touch()  # an SQLite file that exists: the URL is what is wrong
    url = f"sqlite:///{database}?{query}"
    result = bpf_main("history", "--db", url, "opp-1")
    assert "internal error" not in result.err
    assert result.code == 2
    assert result.out == ""
    (error,) = result.err.splitlines()
    assert error.startswith(f"bpf: error: {url}: ")
    name, value = query.split("=")
    said = error.removeprefix(f"bpf: error: {url}: ")
    assert said.startswith(f"{name}={value!r} is not a number")  # names the parameter
