"""The kit finds the bugs users plant (issue 15): every bug of the planted corpus, a deep one
in few readable steps, and what it cannot check (a stage, branch or outcome never reached) is
a failure that says why. Intended refusals are told to the kit; the kit runs on PostgreSQL."""

from __future__ import annotations

import warnings

import pytest
from kit_support import DEAL
from planted import (
    CHANGE,
    CORPUS,
    past_qualify_keeps_its_account,
    rekey_on_reentry,
    with_action,
)

import bpf
from bpf.testing import (
    PROPERTIES,
    ProcessCheckFailed,
    ProcessNotCovered,
    Refuses,
    check_process,
)


@pytest.mark.parametrize("bug", CORPUS, ids=lambda b: b.name)
def test_every_planted_bug_is_found(bug) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bpf.DefinitionWarning)
        with pytest.raises((ProcessCheckFailed, ProcessNotCovered, bpf.DefinitionError)):
            bug.check(1)


def test_an_action_bug_four_moves_deep_reads_as_what_a_user_did() -> None:
    with pytest.raises(ProcessCheckFailed) as caught:
        check_process(with_action("develop", "rekey"),
                      engine_factory=lambda: bpf.Engine(actions={"rekey": rekey_on_reentry}),
                      invariants=[past_qualify_keeps_its_account], seed=2)
    failure = caught.value
    assert failure.property == "invariant"
    moves = [s.split(": ", 1)[1].split(" as ")[0] for s in failure.steps if ": " in s
             and " as " in s and not s.startswith("fill")]
    # Four moves: start, next into develop, back to qualify, next into develop again.
    assert moves in (["next", "previous", "next"], ["next", "set_active qualify", "next"]), \
        failure.steps
    assert failure.steps[1].startswith("start deal on opportunity-1 as ")
    assert failure.violation == (
        "past_qualify_keeps_its_account: opportunity-1 is at develop without an account")
    assert PROPERTIES["invariant"] in str(failure)


def test_a_stage_never_entered_fails_the_check_and_says_why() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bpf.DefinitionWarning)
        typo = bpf.loads_process(CHANGE.format(when="{field: riks, equals: high}"))
        dead = bpf.loads_process(CHANGE.format(when="{field: summary, is_set: false}"))
    with pytest.raises(ProcessNotCovered) as caught:
        check_process(typo, seed=1)
    assert caught.value.gaps[0].startswith("stage 'cab-review' was never entered in ")
    assert caught.value.gaps[0].endswith(
        "examples: its branch from 'assess' `riks == 'high'`: `riks == 'high'` is never true: "
        "no stage collects `riks` (did you mean `risk`?)")
    assert "branch assess → implement" not in str(caught.value)
    report = check_process(dead, seed=1, require_coverage=False)
    assert not report.covered
    assert report.stages_missed == {"change": ("cab-review", )}
    assert report.branches_missed["change"] == (
        "assess → cab-review when summary is empty", "cab-review → implement")
    assert report.gaps[0].endswith(
        "`summary is empty` is never true on a record that fills the required step summary "
        "of 'assess'")


def test_the_report_counts_branches_outcomes_and_refusals() -> None:
    report = check_process(DEAL, seed=3)
    assert report.covered and report.gaps == ()
    assert set(report.branches_taken["deal"]) == {
        "qualify → executive-review when budgetamount > 100000", "qualify → develop",
        "executive-review → develop", "develop → close",
    }
    assert all(report.branches_taken["deal"].values())
    assert all(report.outcomes_reached["deal"].values())
    assert {"gate", "role", "status"} <= set(report.refusals)
    assert report.refusals["gate"] == sum(
        n for k, n in report.results.items() if k.endswith(" refused: gate"))


def big_deal(attempt) -> bool:
    return attempt.kind == "abandon" and (attempt.record.get("budgetamount") or 0) > 100_000


def never_abandon_big_deals(event: bpf.FlowEvent) -> None:
    record = event.flow.record
    if event.to_status == "aborted" and (record.get("budgetamount") or 0) > 100_000:
        raise bpf.Cancel("big deals are never abandoned")


def guarded() -> bpf.Engine:
    engine = bpf.Engine()
    engine.on("status_changing", never_abandon_big_deals)
    return engine


def test_a_refusal_the_users_hook_makes_on_purpose_is_declared_and_then_required() -> None:
    with pytest.raises(ProcessCheckFailed) as caught:
        check_process(DEAL, engine_factory=guarded, seed=1)
    assert caught.value.property == "allowed"
    assert "expect_refusals=[Refuses('cancel', when=...)]" in caught.value.steps[-1]

    expected = Refuses("cancel", big_deal, why="big deals are never abandoned")
    report = check_process(DEAL, engine_factory=guarded, seed=1, expect_refusals=[expected])
    assert report.results["abandon refused: cancel"] > 0

    # Declared, the refusal is required: an engine without the hook breaks "expected".
    with pytest.raises(ProcessCheckFailed) as caught:
        check_process(DEAL, seed=1, expect_refusals=[expected])
    assert caught.value.property == "expected"
    assert caught.value.steps[-1].endswith("aborted although big deals are never abandoned")


def test_the_machine_api_for_invariants_of_your_own() -> None:
    seen: dict[str, int] = {"calls": 0}

    def reads_the_machine(machine) -> None:
        seen["calls"] += 1
        assert isinstance(machine.engine, bpf.Engine)
        assert all(isinstance(f, bpf.Flow) for f in machine.flows)
        assert all("id" in r for r in machine.records)
        assert isinstance(machine.steps, list)

    check_process(DEAL, max_examples=10, seed=1, invariants=[reads_the_machine],
                  require_coverage=False)
    assert seen["calls"] > 10


@pytest.mark.postgres
def test_check_process_runs_on_postgresql(postgres_url: str) -> None:
    report = check_process(DEAL, store=postgres_url, max_examples=8, seed=1,
                           require_coverage=False)
    assert report.results["reopen succeeded"] > 0
    assert report.results["next succeeded"] > 0
