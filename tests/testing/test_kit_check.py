"""check_process and FlowMachine on the shipped processes, in memory and on SQLite."""

from __future__ import annotations

import pickle
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test
from kit_support import DEAL, DEAL_PATH, PROCESSES, SHIPPED, GatelessEngine

import bpf
from bpf.testing import PROPERTIES, CheckReport, FlowMachine, ProcessCheckFailed, check_process


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_process_behaves_and_every_stage_is_reached(path: Path) -> None:
    report = check_process(path, derandomize=True)
    assert report.examples >= 100
    assert report.stages_missed == {report.process: ()}
    assert report.results["next succeeded"] > 0


def test_several_processes_run_on_the_same_records() -> None:
    report = check_process(
        PROCESSES / "opportunity-sales.yaml",
        others=[PROCESSES / "examples" / "opportunity-gated.yaml",
                bpf.standard_process("lead-to-opportunity")],
        derandomize=True,
    )
    assert set(report.stages_entered) == {
        "opportunity-sales", "opportunity-gated", "lead-to-opportunity",
    }
    # Lead flows made opportunities of their own, moving into their opportunity stages.
    assert report.stages_entered["lead-to-opportunity"]["develop"] > 0
    assert report.results["start refused: exists"] > 0


def test_on_sqlite_a_new_engine_sees_the_same_state() -> None:
    report = check_process(DEAL_PATH, store="sqlite", max_examples=25, derandomize=True)
    assert report.results["reopen succeeded"] > 0


def test_check_process_takes_a_path_a_text_path_or_a_definition() -> None:
    for process in (DEAL_PATH, str(DEAL_PATH), DEAL):
        assert check_process(process, max_examples=5, require_coverage=False).process == "deal"
    with pytest.raises(TypeError, match="path to a process YAML or a ProcessDefinition"):
        check_process(42)  # type: ignore[arg-type]


def test_a_seed_makes_a_run_reproducible() -> None:
    first = check_process(DEAL, max_examples=20, seed=7)
    again = check_process(DEAL, max_examples=20, seed=7)
    assert (first.examples, first.steps, first.results) == (
        again.examples, again.steps, again.results,
    )


def test_the_engine_factory_may_take_the_store_or_nothing() -> None:
    check_process(DEAL, max_examples=5, engine_factory=lambda: bpf.Engine(),
                  require_coverage=False)
    check_process(DEAL, max_examples=5, engine_factory=lambda store: bpf.Engine(store),
                  require_coverage=False)
    with pytest.raises(TypeError, match=r"must return a bpf\.Engine"):
        check_process(DEAL, max_examples=5, engine_factory=lambda: object())


def test_a_record_factory_may_supply_the_records_of_cross_entity_stages() -> None:
    made = iter(range(1, 10_000))

    def engine() -> bpf.Engine:
        engine = bpf.Engine()
        engine.record_factory("opportunity", lambda flow, lead: {"id": f"made-{next(made)}"})
        return engine

    report = check_process(PROCESSES / "lead-to-opportunity.yaml", engine_factory=engine,
                           max_examples=30, derandomize=True)
    assert report.stages_entered["lead-to-opportunity"]["develop"] > 0
    assert "next refused: entity" not in report.results


def test_stage_actions_the_check_engine_lacks_are_stubbed() -> None:
    gated = bpf.load_process(PROCESSES / "examples" / "opportunity-gated.yaml")
    assert any(stage.on_enter for stage in gated.stages)
    check_process(gated, max_examples=10, require_coverage=False)


def test_the_report_says_what_was_exercised() -> None:
    report = check_process(DEAL, max_examples=30, derandomize=True)
    assert isinstance(report, CheckReport)
    assert report.examples_per_second > 0
    assert set(report.stages_entered["deal"]) == {s.id for s in DEAL.stages}
    assert str(report).startswith(f"deal: {report.examples} examples, {report.steps} steps in ")


def test_refusals_are_counted_under_their_bpf_reason() -> None:
    report = check_process(DEAL, max_examples=30, derandomize=True)
    reasons = {key.split(" refused: ")[1] for key in report.results if " refused: " in key}
    # One vocabulary: bpf.Reason, and "unknown" for set_active to a stage the process lacks.
    assert reasons <= {*bpf.Reason, "unknown"}
    assert {"gate", "role", "status"} <= reasons


def test_flow_machine_is_a_rule_based_state_machine_users_can_run() -> None:
    machine = FlowMachine(DEAL)
    assert issubclass(machine, RuleBasedStateMachine)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=10, stateful_step_count=10, deadline=None, database=None,
    ))
    assert machine.TestCase.settings.deadline is None


def test_flow_machine_alone_raises_the_readable_failure() -> None:
    machine = FlowMachine(DEAL, engine_factory=GatelessEngine)
    with pytest.raises(ProcessCheckFailed) as caught:
        run_state_machine_as_test(machine, settings=settings(
            machine.TestCase.settings, max_examples=50, derandomize=True,
        ))
    assert caught.value.property == "gate"
    # It names the required step the move ignored (which one depends on the search's path).
    assert re.search(r"moved to develop although (parentaccountid|budgetamount|decisionmaker)"
                     r" is empty", str(caught.value))


def test_flow_machine_says_what_is_wrong_with_its_arguments() -> None:
    with pytest.raises(TypeError, match="ProcessDefinitions"):
        FlowMachine("deal.yaml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="each process may be given once"):
        FlowMachine(DEAL, others=[DEAL])
    # PostgreSQL is a store the kit runs on (a schema per example); other databases are not.
    with pytest.raises(ValueError, match="store is None, 'memory', 'sqlite' or a PostgreSQL URL"):
        FlowMachine(DEAL, store="mysql://x")


def test_a_failure_is_an_assertion_error_that_pickles_and_names_its_property() -> None:
    failure = ProcessCheckFailed("deal", ["opportunity-1 = {}"], "it broke", "pipeline",
                                 "deal.yaml")
    assert isinstance(failure, AssertionError)
    assert str(failure) == (
        "process 'deal' (deal.yaml) misbehaved; shrunk counterexample:\n"
        "  1. opportunity-1 = {}\n"
        "  then: it broke\n"
        f"property broken (pipeline): {PROPERTIES['pipeline']}"
    )
    assert str(pickle.loads(pickle.dumps(failure))) == str(failure)


def test_importing_bpf_does_not_import_hypothesis() -> None:
    code = "import sys, bpf, bpf.testing, bpf.testing.plugin; print('hypothesis' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
