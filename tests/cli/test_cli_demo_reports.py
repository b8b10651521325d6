"""``bpf demo`` tells the main job; ``bpf funnel`` and ``bpf history`` read back what it wrote."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import pytest
from clitools import assert_png

from bpf.cli import main


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory) -> Path:
    """A database `bpf demo` wrote (once for the module: the tests only read it)."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["demo", "--db", f"sqlite:///{path}"])
    assert code == 0, out.getvalue()
    return path


def test_the_demo_tells_the_story_in_a_few_dozen_lines(bpf_main, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = bpf_main("demo")
    assert result.code == 0, result.err
    assert result.err == ""
    out = result.out
    assert 20 <= len(out.splitlines()) <= 60
    assert out.startswith("bpf demo: a salesperson's month of opportunities, kept in "
                          "sqlite:///bpf-demo.db\n")
    # a gate refusal and what is missing
    assert "Refused, the gate lists what is missing:" in out
    assert "- Estimated Budget (budgetamount)" in out
    # a branch, and the stand-in for the stage action
    assert "the branch leads to Executive Review" in out
    assert "ran notify-sales-executives" in out
    # won, abandoned
    assert "finishes it as won" in out and "statecode = won" in out
    assert "abandons its flow in Develop" in out
    # two flows on one record: the warning as a plain line, stepname following either flow
    assert "   warning: processes 'opportunity-gated' and 'opportunity-sales' both write " \
           "opportunity.stepname" in out
    assert "standard flow started in Qualify: stepname = 1-Qualify" in out
    assert "moves the gated flow to Propose: stepname = 3-Propose" in out
    assert "moves the standard flow to Develop: stepname = 2-Develop" in out
    assert "engine.last_stage_change: opportunity-sales qualify -> develop by bob" in out
    # the funnel
    assert "opportunity-gated v1: Opportunity Sales Process (gated)" in out
    assert "stale: opp-litware in Qualify for" in out
    assert out.rstrip().endswith("bpf history --db sqlite:///bpf-demo.db opp-fabrikam")
    assert (tmp_path / "bpf-demo.db").is_file()


def test_the_demo_recreates_its_database_each_run(bpf_main, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert bpf_main("demo").code == 0
    first = (tmp_path / "bpf-demo.db").stat().st_size
    again = bpf_main("demo")
    assert again.code == 0, again.err
    assert (tmp_path / "bpf-demo.db").stat().st_size == first


def test_the_demo_on_memory_writes_no_file(bpf_main, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = bpf_main("demo", "--db", "memory")
    assert result.code == 0, result.err
    assert "kept in memory" in result.out
    assert "Read it back" not in result.out
    assert list(tmp_path.iterdir()) == []


def test_the_demo_refuses_a_database_that_has_its_records(bpf_main, demo_db):
    result = bpf_main("demo", "--db", f"sqlite:///{demo_db}")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith("bpf: error: ")
    assert line == (f"bpf: error: sqlite:///{demo_db} already holds the demo's flows: leave out "
                    "--db (./bpf-demo.db is recreated each run), or give a new database")


def test_the_funnel_of_a_database_lists_stages_in_order(bpf_main, demo_db):
    result = bpf_main("funnel", "--db", demo_db, "--process", "opportunity-gated")
    assert result.code == 0, result.err
    rows = [line.split() for line in result.out.splitlines() if line.startswith("  ")]
    assert rows[0] == ["by", "stage;", "flows:", "4", "active,", "1", "finished,", "1", "aborted"]
    stages = [r[0] for r in rows[2:7]]
    assert stages == ["Qualify", "Develop", "Executive", "Propose", "Close"]
    qualify = rows[2]
    assert qualify[:3] == ["Qualify", "1-Qualify", "1"]
    assert "6" in qualify and "83%" in qualify
    assert "  weighted pipeline: 2.0 of 4 active flows (each counted at its stage's " \
           "probability)" in result.out


def test_the_funnel_by_phase_groups_stages(bpf_main, demo_db):
    result = bpf_main("funnel", "--db", demo_db, "--process", "opportunity-gated", "--by",
                      "phase")
    assert result.code == 0, result.err
    phases = [line.split()[0] for line in result.out.splitlines()
              if line.startswith("  ") and line.split()[0][:1].isdigit()]
    assert phases == ["1-Qualify", "2-Develop", "3-Propose", "4-Close"]


def test_the_funnel_without_a_process_shows_every_shipped_one_with_flows(bpf_main, demo_db):
    result = bpf_main("funnel", "--db", demo_db)
    assert result.code == 0, result.err
    assert "opportunity-sales v1: Opportunity Sales Process\n" in result.out
    assert "opportunity-gated v1: Opportunity Sales Process (gated)\n" in result.out
    assert "lead-to-opportunity" not in result.out
    assert result.err == ""  # no pipeline-field warning for a command that only reads


def test_the_funnel_png_is_a_real_image_of_sensible_size(bpf_main, demo_db, tmp_path):
    target = tmp_path / "funnel.png"
    result = bpf_main("funnel", "--db", demo_db, "-o", target)
    assert result.code == 0, result.err
    assert result.out == f"wrote {target}\n"
    assert_png(target)


def test_the_funnel_svg_is_svg(bpf_main, demo_db, tmp_path):
    target = tmp_path / "funnel.svg"
    assert bpf_main("funnel", "--db", demo_db, "-o", target).code == 0
    assert "<svg" in target.read_text()


def test_the_funnel_refuses_other_chart_files(bpf_main, demo_db, tmp_path):
    result = bpf_main("funnel", "--db", demo_db, "-o", tmp_path / "funnel.txt")
    assert result.code == 2
    assert "give a .png, .svg or .pdf file" in result.err


def test_a_missing_database_is_bad_input(bpf_main, tmp_path):
    for command in (["funnel"], ["history", "opp-1"]):
        result = bpf_main(*command[:1], "--db", tmp_path / "nope.db", *command[1:])
        assert result.code == 2
        assert result.err.startswith(f"bpf: error: no database at {tmp_path / 'nope.db'}: ")
        assert not (tmp_path / "nope.db").exists()


def test_an_unreachable_database_is_one_line(bpf_main):
    result = bpf_main("funnel", "--db", "postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert result.code == 2
    (line,) = result.err.splitlines()
    assert line.startswith("bpf: error: ")
    assert "Traceback" not in result.err


def test_the_funnel_of_a_process_without_flows_is_bad_input(bpf_main, demo_db):
    result = bpf_main("funnel", "--db", demo_db, "--process", "phone-to-case")
    assert result.code == 2
    assert result.err == f"bpf: error: no 'phone-to-case' flows in sqlite:///{demo_db}\n"


def test_history_shows_every_flow_of_the_record_with_time_in_stage(bpf_main, demo_db):
    result = bpf_main("history", "--db", demo_db, "opp-fabrikam")
    assert result.code == 0, result.err
    out = result.out
    assert out.startswith("opp-fabrikam: 2 flows\npipeline phase 2-Develop: last stage change by "
                          "any flow was opportunity-sales qualify -> develop by bob at ")
    assert "\nopportunity-gated v1: in Propose\n" in out
    assert "\nopportunity-sales v1: in Develop (the flow the record shows)\n" in out
    rows = [line.split() for line in out.splitlines() if line.startswith("  20")]
    assert [r[2:5] for r in rows] == [
        ["start", "Qualify", "1-Qualify"],
        ["next", "Qualify", "Develop"],
        ["next", "Develop", "Propose"],
        ["start", "Qualify", "1-Qualify"],
        ["next", "Qualify", "Develop"],
    ]
    assert rows[0][-1] == "25d"
    assert rows[2][-2:] == ["so", "far"]


def test_history_of_a_finished_flow_stops_the_clock(bpf_main, demo_db):
    out = bpf_main("history", "--db", demo_db, "opp-contoso").out
    assert "opportunity-gated v1: finished at Close (won)" in out
    last = out.splitlines()[-1].split()
    assert last[2:] == ["finish", "Close", "4-Close", "alice"]  # no FROM, no time: it stays


def test_history_of_an_unknown_record_is_bad_input(bpf_main, demo_db):
    result = bpf_main("history", "--db", demo_db, "opp-nobody")
    assert result.code == 2
    assert result.err == f"bpf: error: no flow on record 'opp-nobody' in sqlite:///{demo_db}\n"


def test_demo_funnel_and_history_on_sqlite_and_postgresql(bpf_main, persistent_url):
    assert bpf_main("demo", "--db", persistent_url).code == 0
    funnel = bpf_main("funnel", "--db", persistent_url, "--process", "opportunity-gated")
    assert funnel.code == 0, funnel.err
    assert "weighted pipeline: 2.0 of 4 active flows" in funnel.out
    history = bpf_main("history", "--db", persistent_url, "opp-fabrikam")
    assert history.code == 0, history.err
    assert history.out.startswith("opp-fabrikam: 2 flows\n")
