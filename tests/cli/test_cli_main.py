"""The command as a whole: usage, version, exit codes, and one clear line for bad input."""

from __future__ import annotations

import argparse

import pytest

import bpf
from bpf.cli import _show, main


def test_version_prints_the_package_version(bpf_main):
    result = bpf_main("--version")
    assert result.code == 0
    assert result.out.strip() == f"bpf {bpf.__version__}"


def test_help_lists_every_command(bpf_main):
    result = bpf_main("--help")
    assert result.code == 0
    for command in ("validate", "show", "diagram", "demo", "run", "funnel", "history"):
        assert command in result.out


def test_no_command_is_a_usage_error(bpf_main):
    result = bpf_main()
    assert result.code == 2
    assert "usage: bpf" in result.err


def test_unknown_option_is_a_usage_error(bpf_main):
    result = bpf_main("show", "opportunity-sales", "--colour")
    assert result.code == 2
    assert "unrecognized arguments: --colour" in result.err


def test_unknown_process_is_one_line_naming_the_known_ones(bpf_main):
    result = bpf_main("show", "opportunity-sails")
    assert result.code == 2
    assert result.out == ""
    lines = result.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bpf: error: no shipped process 'opportunity-sails'")
    assert "did you mean 'opportunity-sales'" in lines[0]
    assert "opportunity-gated" in lines[0]  # the shipped examples are named too


def test_missing_file_is_one_line(bpf_main, tmp_path):
    result = bpf_main("show", tmp_path / "nope.yaml")
    assert result.code == 2
    assert result.err == f"bpf: error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_invalid_definition_is_its_first_problem_and_how_many_more(bpf_main, write):
    path = write("bad.yaml", """\
        process: bad
        name: Bad
        entity: opportunity
        stages:
          - {id: a, name: A, categori: Qualify}
          - {id: a, name: B}
        """)
    result = bpf_main("show", path)
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith(f"bpf: error: {path}:5:")
    assert "and 1 more problem: run `bpf validate`" in line
    assert "Traceback" not in result.err


def test_debug_adds_the_traceback(bpf_main, tmp_path):
    result = bpf_main("--debug", "show", "opportunity-sails")
    assert result.code == 2
    assert "Traceback (most recent call last)" in result.err
    assert "UnknownProcessError" in result.err
    assert result.err.rstrip().splitlines()[-1].startswith("bpf: error: no shipped process")


def test_debug_may_follow_the_command(bpf_main):
    result = bpf_main("show", "opportunity-sails", "--debug")
    assert "Traceback (most recent call last)" in result.err


def test_a_bug_is_still_one_line_and_points_to_debug(bpf_main, monkeypatch):
    def broken(args: argparse.Namespace) -> int:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(_show, "run", broken)
    result = bpf_main("show", "opportunity-sales")
    assert result.code == 2
    assert result.err == (
        "bpf: error: internal error: ZeroDivisionError: division by zero (rerun with --debug "
        "for the traceback, and please report it)\n"
    )


def test_bpf_warnings_print_as_plain_lines(bpf_main, monkeypatch):
    import warnings

    def warns(args: argparse.Namespace) -> int:
        warnings.warn(bpf.DefinitionWarning("30 stages is the Dynamics limit"), stacklevel=1)
        return 0

    monkeypatch.setattr(_show, "run", warns)
    result = bpf_main("show", "opportunity-sales")
    assert result.code == 0
    assert result.err == "bpf: warning: 30 stages is the Dynamics limit\n"


def test_main_reads_sys_argv_by_default(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["bpf", "--version"])
    assert main() == 0
    assert capsys.readouterr().out.startswith("bpf ")


@pytest.mark.parametrize("argv", [["run"], ["funnel"], ["history", "x"]])
def test_missing_arguments_are_usage_errors(bpf_main, argv):
    result = bpf_main(*argv)
    assert result.code == 2
    assert "the following arguments are required" in result.err
