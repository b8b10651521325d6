"""``bpf run``: scenarios play step by step; an unexpected refusal stops them (exit 1)."""

from __future__ import annotations

import pytest
from clitools import EXAMPLES

SCENARIO = """\
actors:
  alice: [salesperson]
  guest: [marketing]
steps:
  - start: {record: {id: opp-1, name: Contoso}, actor: alice}
  - next: {record: opp-1, actor: alice, expect: gate}
  - set: {record: opp-1, fields: {budgetamount: 250000}}
  - next: {record: opp-1, actor: guest, expect: denied}
  - next: {record: opp-1, actor: alice}
  - set: {record: opp-1, fields: {executiveapproval: true}}
  - next: {record: opp-1, actor: alice}
  - finish: {record: opp-1, outcome: won, actor: alice}
"""


def outcomes(out: str) -> list[str]:
    """The step lines of a run's output, without the columns' padding."""
    return [" ".join(line.split()) for line in out.splitlines() if line[:3].strip().isdigit()]


def test_a_scenario_prints_each_outcome_and_passes(bpf_main, tiny, write):
    result = bpf_main("run", tiny, write("s.yaml", SCENARIO))
    assert result.code == 0, result.out + result.err
    assert outcomes(result.out) == [
        "1 start opp-1 alice started tiny-deal at Qualify (stepname = 1-Qualify)",
        "2 next opp-1 alice refused, as expected: cannot leave stage 'Qualify' of 'tiny-deal': "
        "required Estimated Budget (budgetamount) is not filled",
        "3 set opp-1 budgetamount = 250000",
        "4 next opp-1 guest refused, as expected: actor 'guest' may not move a 'tiny-deal' "
        "flow: it needs one of the roles salesperson",
        "5 next opp-1 alice Qualify -> Executive Review (stepname = 2-Develop)",
        "6 set opp-1 executiveapproval = true",
        "7 next opp-1 alice Executive Review -> Close (stepname = 4-Close)",
        "8 finish opp-1 alice finished at Close as won",
    ]
    assert result.out.splitlines()[-1] == "passed: 8 steps, 2 refusals as expected"
    assert result.err == ""


def test_the_first_unexpected_refusal_stops_the_run_with_exit_1(bpf_main, tiny, write):
    scenario = write("s.yaml", SCENARIO.replace(", expect: gate", ""))
    result = bpf_main("run", tiny, scenario)
    assert result.code == 1
    lines = outcomes(result.out)
    assert len(lines) == 2
    assert lines[1].startswith("2 next opp-1 alice REFUSED (gate): cannot leave stage 'Qualify'")
    assert result.out.splitlines()[-1] == "FAILED: 1 unexpected outcome in 2 of 8 steps (step 2)"
    assert result.err == (
        f"bpf: step 2 ({scenario}:6) did not go as the scenario expects; stopped there. Mark "
        "an expected refusal with `expect: refused` (or gate, denied), or run with "
        "--keep-going\n"
    )


def test_keep_going_plays_every_step_and_still_fails(bpf_main, tiny, write):
    scenario = write("s.yaml", SCENARIO.replace(", expect: gate", "")
                     .replace(", expect: denied", ""))
    result = bpf_main("run", tiny, scenario, "--keep-going")
    assert result.code == 1
    assert len(outcomes(result.out)) == 8
    assert result.out.splitlines()[-1] == (
        "FAILED: 2 unexpected outcomes in 8 of 8 steps (steps 2, 4)"
    )
    assert result.err == ""


def test_a_step_expected_to_be_refused_that_moves_fails(bpf_main, tiny, write):
    scenario = write("s.yaml", SCENARIO.replace(
        "  - next: {record: opp-1, actor: alice}\n  - set: {record: opp-1, fields: {exec",
        "  - next: {record: opp-1, actor: alice, expect: refused}\n"
        "  - set: {record: opp-1, fields: {exec", 1))
    result = bpf_main("run", tiny, scenario)
    assert result.code == 1
    assert outcomes(result.out)[-1] == (
        "5 next opp-1 alice Qualify -> Executive Review (stepname = 2-Develop) -- but the step "
        "expects a refusal (expect: refused)"
    )


@pytest.mark.parametrize(
    ("example", "process"),
    [
        ("opportunity-happy-path.yaml", "opportunity-sales"),
        ("opportunity-gate-refusal.yaml", "opportunity-gated"),
        ("several-flows-one-record.yaml", "lead-to-opportunity"),
    ],
)
def test_the_shipped_examples_pass(bpf_main, example, process):
    result = bpf_main("run", process, EXAMPLES / example)
    assert result.code == 0, result.out + result.err
    assert result.out.splitlines()[-1].startswith("passed: ")


def test_every_example_scenario_is_tested():
    tested = {"opportunity-happy-path.yaml", "opportunity-gate-refusal.yaml",
              "several-flows-one-record.yaml"}
    assert {p.name for p in EXAMPLES.glob("*.yaml")} == tested


def test_several_flows_show_the_pipeline_field_following_either(bpf_main):
    result = bpf_main("run", "lead-to-opportunity", EXAMPLES / "several-flows-one-record.yaml")
    lines = outcomes(result.out)
    assert ("note: processes 'lead-to-opportunity' and 'opportunity-sales' both write "
            "opportunity.stepname") in result.out
    assert lines[5].endswith("started opportunity-sales at Qualify (stepname = 1-Qualify)")
    assert lines[7].endswith("lead-to-opportunity: Develop -> Propose (stepname = 3-Propose)")
    assert lines[9].endswith("opportunity-sales: Qualify -> Develop (stepname = 2-Develop)")


def test_stage_actions_are_stood_in_for_and_reported(bpf_main):
    result = bpf_main("run", "opportunity-gated", EXAMPLES / "opportunity-gate-refusal.yaml")
    assert "Develop -> Executive Review (stepname = 2-Develop); ran notify-sales-executives" \
        in result.out


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("steps:\n  - jump: {record: x}\n", 2,
         "step 1: unknown step 'jump'; steps: start, set, next, previous, set_active, finish, "
         "abandon, reactivate, wait"),
        ("steps:\n  - next: {record: opp-9}\n", 2,
         "step 1 (next): no record 'opp-9' yet; records so far: none"),
        ("actors: {alice: [salesperson]}\nsteps:\n  - start: {record: {id: a}, actor: bob}\n",
         3, "step 1 (start): unknown actor 'bob'; `actors:` has alice"),
        ("steps:\n  - start: {record: {id: a}, expect: maybe}\n", 2,
         "step 1 (start): `expect` is one of moved, refused, gate, denied"),
        ("steps:\n  - start: {record: {id: a}}\n  - set_active: {record: a, stage: nope}\n", 3,
         "step 2 (set_active): 'tiny-deal' has no stage 'nope'; stages: qualify, review, close"),
        ("steps:\n  - start: {record: {id: a}, process: other}\n", 2,
         "step 1 (start): process 'other' is not in this run: tiny-deal; add it to the "
         "scenario's `processes:`"),
        ("stepz: []\n", 1, "unknown key 'stepz'; a scenario has actors, description, "
         "processes, steps"),
        ("steps: [\n", 2, None),
    ],
)
def test_a_bad_scenario_is_one_located_line_before_anything_runs(bpf_main, tiny, write, text,
                                                                   line, message):
    scenario = write("bad.yaml", text)
    result = bpf_main("run", tiny, scenario)
    assert result.code == 2
    assert result.out == ""
    (error,) = result.err.splitlines()
    assert error.startswith(f"bpf: error: {scenario}:{line}:")
    if message is not None:
        assert error.endswith(message)


def test_a_missing_scenario_is_bad_input(bpf_main, tiny, tmp_path):
    result = bpf_main("run", tiny, tmp_path / "nope.yaml")
    assert result.code == 2
    assert result.err == f"bpf: error: {tmp_path / 'nope.yaml'}: no such file\n"


def test_a_run_with_a_database_keeps_its_flows_for_history(bpf_main, tiny, write, tmp_path):
    db = tmp_path / "run.db"
    result = bpf_main("run", tiny, write("s.yaml", SCENARIO), "--db", f"sqlite:///{db}")
    assert result.code == 0
    assert result.out.splitlines()[-1] == (
        f"flows saved in sqlite:///{db}: try `bpf funnel --db sqlite:///{db} --process {tiny}` or "
        f"`bpf history --db sqlite:///{db} RECORD_ID`"
    )
    history = bpf_main("history", "--db", db, "opp-1")
    assert history.code == 0, history.err
    kinds = [line.split()[2] for line in history.out.splitlines() if line.startswith("  20")]
    assert kinds == ["start", "next", "next", "finish"]


def test_waits_move_the_scenario_clock(bpf_main, tiny, write, tmp_path):
    db = tmp_path / "run.db"
    scenario = write("s.yaml", """\
        actors: {alice: [salesperson]}
        steps:
          - start: {record: {id: opp-1}, actor: alice}
          - wait: {days: 3, hours: 4}
          - set: {record: opp-1, fields: {budgetamount: 10}}
          - next: {record: opp-1, actor: alice}
        """)
    result = bpf_main("run", tiny, scenario, "--db", db)
    assert "2  wait" in result.out and "3d 4h later" in result.out
    history = bpf_main("history", "--db", db, "opp-1").out
    start = next(line for line in history.splitlines() if "  start  " in line)
    assert start.rstrip().endswith("3d 4h")
