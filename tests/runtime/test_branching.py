"""Branches are chosen from the record's values at the moment of the move."""

from __future__ import annotations

from runtime_support import QUALIFIED, SELLER


def test_the_branch_follows_the_value_at_the_moment_of_the_move(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, budgetamount=250_000, approvedby="ceo")
    assert flow.next(actor=SELLER).id == "executive-review"
    assert deal["stepname"] == "8-Approval"
    flow.previous(actor=SELLER)
    deal["budgetamount"] = 90_000
    assert flow.next(actor=SELLER).id == "develop"
    assert flow.traversed_path == ("qualify", "develop")


def test_the_active_path_is_predicted_from_current_values(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    assert flow.active_path == ("qualify", "develop", "propose", "close")
    deal["budgetamount"] = 500_000
    assert flow.active_path == ("qualify", "executive-review", "develop", "propose", "close")
    deal.update(QUALIFIED, budgetamount=500_000, approvedby="ceo")
    flow.next(actor=SELLER)
    deal["budgetamount"] = 1  # the past stays: the path ahead is predicted, the path behind is not
    assert flow.active_path == ("qualify", "executive-review", "develop", "propose", "close")


def test_branches_merge_back_into_the_main_path(engine, deal):
    flow = engine.start("deal", deal, actor=SELLER)
    deal.update(QUALIFIED, budgetamount=500_000, approvedby="ceo", customerneed="x")
    for expected in ("executive-review", "develop", "propose", "close"):
        assert flow.next(actor=SELLER).id == expected
    assert flow.traversed_path == ("qualify", "executive-review", "develop", "propose", "close")
