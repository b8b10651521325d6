"""The kit can fail: faults planted in an engine are each reported, cut down to the few steps
that show them.

Every check runs derandomized, so a run is the same every time; the assertions are on what a
user reads: the property broken and the steps.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from kit_support import (
    DEAL,
    AmnesiacEngine,
    BranchBlindEngine,
    CrashingEngine,
    EndlessEngine,
    ForgetfulEngine,
    GatelessEngine,
    LeakyEngine,
    LyingEngine,
    PipelineSkippingEngine,
    RoleBlindEngine,
)

from bpf.testing import ProcessCheckFailed, check_process

START = "start deal on opportunity-1 as maria (salesperson) → started at qualify"


def failure(**kwargs: Any) -> ProcessCheckFailed:
    with pytest.raises(ProcessCheckFailed) as caught:
        check_process(DEAL, derandomize=True, **kwargs)
    return caught.value


def test_a_correct_engine_passes() -> None:
    report = check_process(DEAL, derandomize=True)
    assert report.examples >= 100
    assert not report.stages_missed["deal"]


def test_gating_off_is_reported_with_the_empty_required_steps() -> None:
    found = failure(engine_factory=GatelessEngine)
    assert found.property == "gate"
    assert found.steps == (
        "opportunity-1 = {}",
        START,
        "deal on opportunity-1: next as maria (salesperson) → moved to develop although "
        "parentaccountid is empty and budgetamount is empty and decisionmaker is not marked "
        "complete",
    )
    assert str(found).endswith(
        "property broken (gate): a forward move passes a gate only when every required step "
        "of the active stage is filled"
    )


def test_a_pipeline_field_left_unwritten_is_reported() -> None:
    found = failure(engine_factory=PipelineSkippingEngine)
    assert found.property == "pipeline"
    assert found.steps == ("opportunity-1 = {}", START)
    assert found.violation == (
        "opportunity-1.stepname is None; the last stage change on opportunity-1 was deal start "
        "to qualify (1-Qualify)"
    )


def test_a_dropped_history_entry_is_reported() -> None:
    found = failure(engine_factory=ForgetfulEngine)
    assert found.property == "history"
    assert found.steps[-2].endswith("next as maria (salesperson) → moved to develop")
    assert found.steps[-1].endswith("previous as maria (salesperson) → back to qualify")
    assert len(found.steps) <= 5
    assert found.violation == (
        "the history of deal on opportunity-1 is start qualify, next develop (2 entries); the "
        "operations above make it start qualify, next develop, previous qualify (3 entries)"
    )


def test_an_ignored_branch_is_reported_with_the_condition_that_holds() -> None:
    found = failure(engine_factory=BranchBlindEngine)
    assert found.property == "branch"
    assert len(found.steps) <= 5
    assert "budgetamount = 100001" in "\n".join(found.steps[:-1])
    assert found.steps[-1].endswith(
        "→ moved to develop; the definition says executive-review (the first branch whose "
        "condition holds: budgetamount > 100000)"
    )


def test_roles_not_enforced_are_reported() -> None:
    found = failure(engine_factory=RoleBlindEngine)
    assert found.property == "roles"
    assert len(found.steps) <= 5
    assert re.fullmatch(
        r"(start deal on|deal on opportunity-1: \w+) .*as (guest \(no roles\)|no actor) → .* "
        r"although (guest holds none of the roles|no actor was given and the process needs one "
        r"of the roles) salesperson, sales-manager",
        found.steps[-1],
    ), found.steps[-1]


def test_finishing_before_the_last_stage_is_reported() -> None:
    found = failure(engine_factory=EndlessEngine)
    assert found.property == "status"
    assert found.steps[-1] == (
        "deal on opportunity-1: finish as maria (salesperson) → finished at qualify although "
        "qualify is not a last stage"
    )


def test_a_refused_move_that_changes_the_record_is_reported() -> None:
    found = failure(engine_factory=LeakyEngine)
    assert found.property == "refusal"
    assert found.steps[-1] == (
        "deal on opportunity-1: next as maria (salesperson) → refused (gate), yet "
        "opportunity-1.stepname changed from '1-Qualify' to '2-Develop'"
    )


def test_a_store_that_loses_history_is_reported_by_a_new_engine() -> None:
    found = failure(engine_factory=AmnesiacEngine, store="sqlite", max_examples=20)
    assert found.property == "store"
    assert found.steps == ("opportunity-1 = {}", START, "open the store in a new engine")
    assert found.violation == (
        "the new engine sees the history of deal on opportunity-1 as empty; the engine that "
        "wrote it has start qualify (1 entry)"
    )


def test_an_engine_error_that_is_not_a_bpf_error_is_reported() -> None:
    found = failure(engine_factory=CrashingEngine)
    assert found.property == "errors"
    assert found.steps[-1] == (
        "deal on opportunity-1: previous as maria (salesperson) → raised KeyError: 'traversed'"
    )


def test_the_kit_decides_from_the_definition_not_from_the_engine_helpers() -> None:
    # An engine whose missing() lies but whose gate holds is right where it matters: no
    # failure. (The kit never asks the engine what is missing.)
    check_process(DEAL, engine_factory=LyingEngine, derandomize=True, max_examples=30)
