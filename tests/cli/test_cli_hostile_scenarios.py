"""Hostile scenario files: `bpf run` reads them as it reads process files, with limits.

Each runs the real program with a timeout and a cap on its memory, so that a regression is a
failed test, not a machine brought down: before the scenario reader had limits, /dev/zero grew
to 23 GB, a 714-byte alias bomb printed 351 MB, and deep nesting was an internal RecursionError.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from clitools import Result, bpf_script

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="resource limits are POSIX")

#: The memory the program may map: bpf needs about 150 MB; the old reader took 943 MB and more.
MEMORY = 512 * 1024 * 1024
TIMEOUT = 30


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def run_limited(*args: str | Path) -> Result:
    """Run ``bpf ARGS`` as a real program, within `MEMORY` and `TIMEOUT`."""
    done = subprocess.run([str(bpf_script()), *map(str, args)], capture_output=True, text=True,
                          timeout=TIMEOUT, preexec_fn=_limit_memory, check=False)
    # The output is bounded too: a bomb printed is no better than a bomb held.
    assert len(done.stdout) < 100_000
    return Result(done.returncode, done.stdout, done.stderr)


def alias_bomb() -> str:
    """A scenario of some 620 bytes whose `fields` expand to 9**9 (387 million) values."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]")
    anchors = "\n".join(f"    {line}" for line in lines)
    return ("steps:\n"
            "  - start: {record: {id: opp-1}}\n"
            "  - set:\n"
            "      record: opp-1\n"
            "      fields:\n"
            f"{anchors}\n")


def test_a_device_is_refused_before_anything_is_read():
    result = run_limited("run", "opportunity-sales", "/dev/zero")
    assert result.code == 2
    assert result.out == ""
    assert result.err == ("bpf: error: /dev/zero:1:1: cannot read the file: it is a device, "
                          "not a regular file\n")


def test_an_alias_bomb_is_refused_in_little_time_and_memory(tmp_path):
    scenario = tmp_path / "bomb.yaml"
    scenario.write_text(alias_bomb(), encoding="utf-8")
    assert scenario.stat().st_size < 1024
    result = run_limited("run", "opportunity-sales", scenario)
    assert result.code == 2
    assert result.out == ""
    (error,) = result.err.splitlines()
    assert error.startswith(f"bpf: error: {scenario}:")
    assert error.endswith("through its aliases (*a4): refused")


def test_deep_nesting_is_refused_without_recursion(tmp_path):
    scenario = tmp_path / "deep.yaml"
    scenario.write_text("steps:\n  - set: {record: x, fields: {a: " + "[" * 5000 + "]" * 5000
                        + "}}\n", encoding="utf-8")
    result = run_limited("run", "opportunity-sales", scenario)
    assert result.code == 2
    assert result.out == ""
    (error,) = result.err.splitlines()
    assert "RecursionError" not in error
    assert error.startswith(f"bpf: error: {scenario}:2:")
    # libyaml may stop first (at 1,000 levels), else bpf does (at 100).
    assert error.endswith(("too deep for a scenario", "exceeded maximum nesting depth "
                           "(while increasing flow level at line 2, column 1029)"))


def test_nesting_deeper_than_a_hundred_levels_is_refused(tmp_path):
    scenario = tmp_path / "deep.yaml"
    scenario.write_text("steps:\n  - set: {record: x, fields: {a: " + "[" * 101 + "]" * 101
                        + "}}\n", encoding="utf-8")
    result = run_limited("run", "opportunity-sales", scenario)
    assert result.code == 2
    assert result.err == (f"bpf: error: {scenario}:2:129: lists and mappings are nested more "
                          "than 100 levels deep: too deep for a scenario\n")


def test_a_scenario_larger_than_a_mebibyte_is_refused(tmp_path):
    scenario = tmp_path / "large.yaml"
    scenario.write_text("description: " + "x" * (1024 * 1024) + "\nsteps: []\n",
                        encoding="utf-8")
    result = run_limited("run", "opportunity-sales", scenario)
    assert result.code == 2
    assert result.err == (f"bpf: error: {scenario}:1:1: the file is larger than 1 MiB: a "
                          "scenario may be at most 1,048,576 bytes\n")


def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "scenario.yaml"
    os.mkfifo(fifo)
    result = run_limited("run", "opportunity-sales", fifo)
    assert result.code == 2
    assert result.err == (f"bpf: error: {fifo}:1:1: cannot read the file: it is a named pipe, "
                          "not a regular file\n")


@pytest.mark.parametrize("wait", ["1e400", ".inf", ".nan", "1000000000", "-1", "true"])
def test_a_wait_that_is_not_a_sensible_length_is_located(tmp_path, wait):
    scenario = tmp_path / "wait.yaml"
    scenario.write_text(f"steps:\n  - start: {{record: {{id: a}}}}\n  - wait: {{days: {wait}}}\n",
                        encoding="utf-8")
    result = run_limited("run", "opportunity-sales", scenario)
    assert result.code == 2
    (error,) = result.err.splitlines()
    assert error.startswith(f"bpf: error: {scenario}:3:")
    assert "internal error" not in error


def test_waits_adding_up_to_more_than_a_century_are_located(tmp_path):
    scenario = tmp_path / "wait.yaml"
    waits = "".join("  - wait: {days: 36500}\n" for _ in range(3))
    scenario.write_text(f"steps:\n  - start: {{record: {{id: a}}}}\n{waits}", encoding="utf-8")
    result = run_limited("run", "opportunity-sales", scenario)
    assert result.code == 2
    assert result.err == (f"bpf: error: {scenario}:4: step 3 (wait): the scenario waits more "
                          "than 36,500 days in all (its clock starts that long ago)\n")
