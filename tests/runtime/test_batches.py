"""A batch: many operations in one store transaction, kept or undone together."""

from __future__ import annotations

import pytest
from runtime_support import QUALIFIED, SELLER


def test_a_failing_batch_changes_nothing_in_memory_or_in_the_store(engine, deal):
    kept = engine.start("deal", deal, actor=SELLER)
    records = [{"id": f"new-{i}"} for i in range(3)]
    deal.update(QUALIFIED)
    with pytest.raises(LookupError), engine.batch():
        kept.next(actor=SELLER)
        for record in records:
            engine.start("deal", record, actor=SELLER)
        raise LookupError("the import failed")
    assert [engine.flows(r) for r in records] == [[], [], []]
    assert all("stepname" not in r for r in records)
    assert (kept.stage.id, kept.revision, deal["stepname"]) == ("qualify", 1, "1-Qualify")
    assert engine.get_flow(kept.id).revision == 1


def test_changed_hooks_run_once_the_batch_commits(engine):
    seen = []
    engine.on("stage_changed", lambda event: seen.append(event.flow.record_id))
    with engine.batch():
        for i in range(3):
            engine.start("deal", {"id": f"opp-{i}"}, actor=SELLER)
        assert seen == []
    assert seen == ["opp-0", "opp-1", "opp-2"]
    assert [len(engine.flows(f"opp-{i}")) for i in range(3)] == [1, 1, 1]
