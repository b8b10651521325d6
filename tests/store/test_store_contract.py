"""The store contract, on every store: rows and history entries in, the same rows, history and
answers out, and the same refusals. Each test writes ops straight to a store (no engine), the
way the engine hands them over: one op per flow in a write, carrying the flow's final row and
every history entry the write made."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest

import bpf
from bpf._history import STAGE_KINDS, StageChange, stays
from bpf.store import FlowRow, Store, open_store
from bpf.store.base import InsertFlow, Op, SetActiveFlow, SetLastChange, StageTime, UpdateFlow

PROCESS = "opportunity-sales"
PHASES = {"qualify": "1-Qualify", "develop": "2-Develop", "build": "2-Develop",
          "propose": "3-Propose", "close": "4-Close"}
T0 = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    opened = open_store(store_url)
    yield opened
    opened.close()


@pytest.fixture
def stores(persistent_url: str) -> Iterator[tuple[Store, Store]]:
    """Two stores on one database, as two processes have."""
    first, second = open_store(persistent_url), open_store(persistent_url)
    yield first, second
    first.close()
    second.close()


class Flow:
    """A flow's row and history as the engine would hand them to a store: `move` records a
    change in memory, `ops` hands over what changed since the last write, folded into one op."""

    def __init__(self, flow_id: str, record: str = "opp-1", *, process: str = PROCESS,
                 entity: str = "opportunity", hours: float = 0, actor: str | None = None) -> None:
        self.row = FlowRow(
            id=flow_id, process=process, version=1, records=((entity, record),), stage="qualify",
            stage_started_at=at(hours), traversed=("qualify",), status="active",
            started_at=at(hours), completed_at=None, outcome=None, revision=0,
        )
        self.entries: list[StageChange] = []
        self.stored: FlowRow | None = None  # the row as last written
        self.new_records: list[tuple[str, str]] = []
        #: the record of the last change, (entity, id)
        self.last_record = (entity, record)
        self._change("start", None, "qualify", hours, record, actor)

    def move(self, kind: str, to_stage: str | None = None, hours: float = 0, *,
             record: str | None = None, entity: str = "opportunity", version: int | None = None,
             actor: str | None = None) -> StageChange:
        row = self.row
        if record is not None and (entity, record) not in row.records:
            self.new_records.append((entity, record))
            self.row = row = row._replace(records=(*row.records, (entity, record)))
        if version is not None:
            self.row = row = row._replace(version=version)
        if record is not None:
            self.last_record = (entity, record)
        return self._change(kind, row.stage, to_stage or row.stage, hours,
                            self.last_record[1], actor)

    def _change(self, kind: str, from_stage: str | None, to_stage: str, hours: float,
                record: str, actor: str | None) -> StageChange:
        row = self.row
        entry = StageChange(row.id, row.process, row.version, record, kind, from_stage, to_stage,
                            PHASES[to_stage], at(hours), actor)
        traversed = row.traversed
        if kind == "next":
            traversed = (*traversed, to_stage)
        elif kind in ("previous", "set_active"):
            traversed = traversed[:traversed.index(to_stage) + 1]
        elif kind == "migrate":
            traversed = (*traversed[:-1], to_stage)
        status = {"finish": "finished", "abandon": "aborted", "reactivate": "active"}
        self.row = row._replace(
            stage=to_stage, traversed=traversed, revision=row.revision + 1,
            status=status.get(kind, row.status),
            stage_started_at=(at(hours) if kind in STAGE_KINDS and kind != "migrate"
                              else row.stage_started_at),
            completed_at=at(hours) if kind in ("finish", "abandon") else (
                None if kind == "reactivate" else row.completed_at),
            outcome="won" if kind == "finish" else (None if kind == "reactivate" else row.outcome),
        )
        self.entries.append(entry)
        return entry

    def ops(self, *, last: bool = True, active: bool = False) -> list[Op]:
        """The write of every change since the last one: the folded flow op, then the record's
        last change (and, if asked, its active flow)."""
        entries = tuple(self.entries)
        if self.stored is None:
            op: Op = InsertFlow(self.row, entries)
        else:
            op = UpdateFlow(self.row, self.stored.revision, entries, tuple(self.new_records))
        out = [op]
        if active:
            entity, rid = self.row.records[0]
            out.append(SetActiveFlow(rid, self.row.id, entity))
        if last and entries:
            entity, rid = self.last_record
            out.append(SetLastChange(rid, entries[-1], entity))
        return out

    def written(self) -> Flow:
        """Mark the ops as written."""
        self.stored, self.entries, self.new_records = self.row, [], []
        return self


def write(store: Store, *flows: Flow, active: bool = False) -> None:
    store.write([op for f in flows for op in f.ops(active=active)])
    for f in flows:
        f.written()


OPP = "opportunity"


def contents(store: Store, flow_ids: Sequence[str], records: Sequence[str],
             entity: str = OPP) -> object:
    """Everything the store holds of these flows and records (of ``entity``)."""
    return (
        [store.get_flow(i) for i in flow_ids], [store.history(i) for i in flow_ids],
        [store.record_flows(r, entity) for r in records], [store.record_flows(r) for r in records],
        [store.active_flow_id(r, entity) for r in records],
        [store.last_change(r, entity) for r in records],
    )


# -- inserting and reading back ---------------------------------------------------------------


def test_an_inserted_flow_reads_back_as_it_was_written(store):
    flow = Flow("f1", "opp-1", actor="maria")
    start = flow.entries[0]

    write(store, flow, active=True)

    assert store.get_flow("f1") == flow.row
    assert store.get_flow("f1").stage_started_at.tzinfo == UTC
    assert store.record_flows("opp-1", OPP) == [flow.row]
    assert store.history("f1") == [start]
    assert store.last_change("opp-1", OPP) == start
    assert store.active_flow_id("opp-1", OPP) == "f1"


def test_unknown_flows_and_records_read_as_nothing(store):
    assert store.get_flow("nope") is None
    assert store.history("nope") == []
    assert store.record_flows("nope", OPP) == store.record_flows("nope") == []
    assert store.active_flow_id("nope", OPP) is None
    assert store.last_change("nope", OPP) is None


def test_flows_are_listed_by_process_version_and_status(store):
    won, open_, other = Flow("f1", "opp-1"), Flow("f2", "opp-2"), Flow("f3", "lead-1",
                                                                       process="lead")
    won.move("finish", hours=1)
    write(store, won, open_, other)

    assert sorted(r.id for r in store.iter_flows()) == ["f1", "f2", "f3"]
    assert sorted(r.id for r in store.iter_flows(PROCESS)) == ["f1", "f2"]
    assert [r.id for r in store.iter_flows(PROCESS, status="active")] == ["f2"]
    assert [r.id for r in store.iter_flows(PROCESS, status="finished")] == ["f1"]
    assert list(store.iter_flows(PROCESS, version=2)) == []


# -- updating, with the expected revision --------------------------------------------------------


@pytest.mark.parametrize("with_last_change", [True, False], ids=["move", "flow-only"])
def test_an_update_at_the_expected_revision_replaces_the_row_and_adds_history(
    store, with_last_change
):
    flow = Flow("f1")
    write(store, flow)
    entry = flow.move("next", "develop", hours=2)

    store.write(flow.ops(last=with_last_change))

    assert store.get_flow("f1") == flow.row
    assert store.get_flow("f1").revision == 2
    assert [e.kind for e in store.history("f1")] == ["start", "next"]
    assert store.history("f1")[-1] == entry
    assert (store.last_change("opp-1", OPP) == entry) is with_last_change


@pytest.mark.parametrize("with_last_change", [True, False], ids=["move", "flow-only"])
def test_an_update_at_another_revision_is_a_concurrency_error_and_writes_nothing(
    store, with_last_change
):
    flow, bystander = Flow("f1", "opp-1"), Flow("f2", "opp-2")
    write(store, flow, bystander)
    flow.move("next", "develop", hours=1)
    write(store, flow)
    before = contents(store, ["f1", "f2"], ["opp-1", "opp-2"])
    flow.stored = flow.stored._replace(revision=1)  # as if made on the first revision
    flow.move("next", "propose", hours=2)
    bystander.move("next", "develop", hours=2)

    with pytest.raises(bpf.ConcurrencyError) as raised:
        store.write([*bystander.ops(), *flow.ops(last=with_last_change)])

    message = str(raised.value)
    assert "'f1'" in message and "refresh" in message
    assert re.findall(r"\d+", message.replace("'f1'", "")) == ["2", "1"]  # stored, expected
    assert contents(store, ["f1", "f2"], ["opp-1", "opp-2"]) == before


def test_an_update_of_a_flow_not_in_the_store_is_a_flow_not_found_error(store):
    flow = Flow("f1")
    flow.written()  # never really written
    flow.move("next", "develop", hours=1)

    with pytest.raises(bpf.FlowNotFoundError, match=r"'f1'.* in the store"):
        store.write(flow.ops())

    assert store.get_flow("f1") is None
    assert store.last_change("opp-1", OPP) is None


# -- one flow per process and primary record ----------------------------------------------------


def test_a_second_flow_of_a_process_on_one_record_is_a_flow_exists_error(store):
    write(store, Flow("f1", "opp-1"))
    before = contents(store, ["f1", "f2", "f3"], ["opp-1", "opp-2"])

    with pytest.raises(bpf.FlowExistsError, match="opportunity 'opp-1' already has a "
                                                   "'opportunity-sales' flow"):
        write(store, Flow("f2", "opp-2"), Flow("f3", "opp-1"))

    assert contents(store, ["f1", "f2", "f3"], ["opp-1", "opp-2"]) == before


def test_two_flows_of_a_process_on_one_record_in_one_write_are_a_flow_exists_error(store):
    with pytest.raises(bpf.FlowExistsError, match="opportunity 'opp-1' already has a "
                                                   "'opportunity-sales' flow"):
        write(store, Flow("f1", "opp-1"), Flow("f2", "opp-1"))

    assert list(store.iter_flows()) == []


def test_flows_of_other_processes_share_a_record_listed_in_start_order(store):
    own = Flow("f1", "opp-1")
    crossing = Flow("f2", "lead-1", process="lead", entity="lead")
    write(store, crossing)
    write(store, own)
    crossing.move("next", "develop", hours=1, record="opp-1")
    write(store, crossing)

    assert [r.id for r in store.record_flows("opp-1", OPP)] == ["f1", "f2"]
    assert store.record_flows("lead-1", "lead") == [crossing.row]
    assert store.get_flow("f2").records == (("lead", "lead-1"), ("opportunity", "opp-1"))
    assert store.history("f2")[-1].record_id == "opp-1"


# -- a record is its (entity, id) ---------------------------------------------------------------


def test_a_lead_and_an_opportunity_with_one_id_are_two_records(store):
    lead = Flow("f1", "42", process="lead", entity="lead")
    deal = Flow("f2", "42", process="deal", entity=OPP)
    deal_start = deal.entries[0]
    write(store, lead, active=True)
    write(store, deal, active=True)
    lead_move = lead.move("next", "develop", hours=1, entity="lead")
    write(store, lead)

    assert store.record_flows("42", "lead") == [lead.row]
    assert store.record_flows("42", OPP) == [deal.row]
    assert [r.id for r in store.record_flows("42")] == ["f1", "f2"]  # the id, of any entity
    assert store.record_flows("42", "account") == []
    assert store.active_flow_id("42", "lead") == "f1"
    assert store.active_flow_id("42", OPP) == "f2"
    assert store.last_change("42", "lead") == lead_move
    assert store.last_change("42", OPP) == deal_start
    assert store.active_flow_id("42", "account") is None
    assert store.last_change("42", "account") is None


def test_one_process_may_have_a_flow_on_a_lead_and_on_an_opportunity_of_one_id(store):
    write(store, Flow("f1", "42", process="p", entity="lead"))
    write(store, Flow("f2", "42", process="p", entity=OPP))

    with pytest.raises(bpf.FlowExistsError, match="lead '42' already has a 'p' flow"):
        write(store, Flow("f3", "42", process="p", entity="lead"))

    assert [r.id for r in store.record_flows("42")] == ["f1", "f2"]


def test_a_flow_from_lead_42_to_opportunity_42_spans_both_records(store):
    flow = Flow("f1", "42", process="lead-to-opportunity", entity="lead")
    write(store, flow, active=True)
    entry = flow.move("next", "develop", hours=1, record="42", entity=OPP)
    store.write([*flow.ops(), SetActiveFlow("42", "f1", OPP)])
    flow.written()

    assert store.get_flow("f1").records == (("lead", "42"), (OPP, "42"))
    assert store.record_flows("42", "lead") == store.record_flows("42", OPP) == [flow.row]
    assert store.record_flows("42") == [flow.row]  # once, though it spans the id twice
    assert store.last_change("42", OPP) == entry
    assert store.last_change("42", "lead").kind == "start"
    assert store.active_flow_id("42", "lead") == store.active_flow_id("42", OPP) == "f1"


# -- history, last change, active flow -----------------------------------------------------------


def test_history_comes_back_oldest_first_across_writes(store):
    flow = Flow("f1")
    write(store, flow)
    kinds = [("next", "develop"), ("next", "propose"), ("previous", "develop"),
             ("set_active", "qualify")]
    for hours, (kind, stage) in enumerate(kinds, 1):
        flow.move(kind, stage, hours=hours)
        write(store, flow)

    history = store.history("f1")

    assert [(e.kind, e.to_stage) for e in history] == [("start", "qualify"), *kinds]
    assert [e.at for e in history] == [at(h) for h in range(5)]


def test_a_batch_folds_many_changes_of_a_flow_into_one_op(store):
    flow = Flow("f1", actor="maria")
    flow.move("next", "develop", hours=1, actor="maria")
    flow.move("next", "propose", hours=2)
    flow.move("previous", "develop", hours=3)
    ops = flow.ops(active=True)

    store.write(ops)

    assert len(ops) == 3 and len(ops[0].entries) == 4
    assert store.get_flow("f1") == flow.row
    assert store.get_flow("f1").traversed == ("qualify", "develop")
    assert store.history("f1") == list(ops[0].entries)
    assert store.last_change("opp-1", OPP) == ops[0].entries[-1]
    assert store.reached_counts(PROCESS) == {"qualify": 1, "develop": 1, "propose": 1}
    assert store.advanced_counts(PROCESS) == {"qualify": 1, "develop": 1}


def test_the_last_change_is_the_latest_by_any_flow_and_the_active_flow_the_last_set(store):
    own = Flow("f1", "opp-1")
    crossing = Flow("f2", "lead-1", process="lead", entity="lead")
    write(store, own, active=True)
    write(store, crossing, active=True)
    entry = crossing.move("next", "develop", hours=1, record="opp-1")
    store.write([*crossing.ops(), SetActiveFlow("opp-1", "f2", OPP)])
    crossing.written()

    assert store.last_change("opp-1", OPP) == entry
    assert store.active_flow_id("opp-1", OPP) == "f2"
    store.write([SetActiveFlow("opp-1", "f1", OPP)])
    assert store.active_flow_id("opp-1", OPP) == "f1"
    assert store.last_change("lead-1", "lead").kind == "start"


# -- the reports: the queries give what the rows and history give ------------------------------


def _every_answer(store: Store, cutoffs: dict) -> tuple:
    """What a store answers for the reports, beside what `Store`'s defaults (which read every
    flow and its history, through `bpf._history.stays`) answer for the same store."""
    def answers(call):
        return (
            call.stage_counts(store, PROCESS), call.stage_counts(store, PROCESS, status=None),
            call.status_counts(store, PROCESS), call.reached_counts(store, PROCESS),
            call.advanced_counts(store, PROCESS), call.stale_counts(store, PROCESS, cutoffs),
            sorted(r.id for r in call.stale(store, PROCESS, cutoffs)),
            call.time_in_stage(store, PROCESS),
        )
    return answers(type(store)), answers(Store)


def test_report_answers_agree_with_the_history_across_migration_and_reactivation(store):
    a, b, c = Flow("f1", "opp-1"), Flow("f2", "opp-2"), Flow("f3", "opp-3")
    a.move("next", "develop", hours=2)
    write(store, a, b, c)
    a.move("migrate", "build", hours=3, version=2)  # the stay in develop goes on, as build
    write(store, a)
    a.move("next", "propose", hours=7)
    a.move("finish", hours=8)
    b.move("abandon", hours=5)
    write(store, a, b)
    b.move("reactivate", hours=9)  # the clock stopped from 5 to 9
    write(store, b)
    b.move("next", "develop", hours=10)
    c.move("next", "develop", hours=4)
    c.move("previous", "qualify", hours=5)
    write(store, b, c)
    cutoffs = {(1, "qualify"): at(6), (1, "develop"): at(11), (2, "build"): at(1)}

    mine, by_history = _every_answer(store, cutoffs)

    assert mine == by_history
    stages = mine[-1]
    assert stages["qualify"].stays == 4  # a, b (5 h + 1 h after reactivation), c once
    assert stages["qualify"].total_seconds == (2 + 5 + 1 + 4) * 3600
    assert stages["build"].total_seconds == 5 * 3600  # the whole stay from 2 to 7
    assert stages["develop"] == StageTime(1, 3600.0, 3600.0)  # c's: a's went on as build
    assert stages["propose"] == StageTime(1, 3600.0, 3600.0)
    assert mine[3] == {"qualify": 3, "develop": 3, "build": 1, "propose": 1}
    assert mine[4] == {"qualify": 3, "build": 1}
    assert mine[5] == {(1, "qualify"): 1, (1, "develop"): 1}


def test_a_clock_that_went_backwards_gives_a_zero_stay(store):
    flow = Flow("f1", hours=5)
    flow.move("next", "develop", hours=4)
    write(store, flow)

    (qualify,) = [s for s in stays(store.history("f1")) if s.stage == "qualify"]

    assert store.time_in_stage(PROCESS)["qualify"].total_seconds == 0.0
    assert qualify.ended_at == qualify.started_at


# -- several stores on one database --------------------------------------------------------------


def test_a_store_that_never_read_a_flow_reads_its_state_back_before_updating(stores):
    first, second = stores
    flow = Flow("f1")
    flow.move("next", "develop", hours=2)
    write(first, flow)
    flow.move("abandon", hours=3)
    write(first, flow)
    flow.move("reactivate", hours=4)
    flow.move("previous", "qualify", hours=6)
    stale = flow.ops()
    flow.move("next", "develop", hours=7)

    write(second, flow)  # `second` knows nothing of f1: it reads it in its transaction
    with pytest.raises(bpf.ConcurrencyError, match="at revision 6"):
        first.write(stale)  # `first` knew f1 at revision 3

    assert first.get_flow("f1") == second.get_flow("f1") == flow.row
    assert first.reached_counts(PROCESS) == {"qualify": 1, "develop": 1}
    assert first.advanced_counts(PROCESS) == {"qualify": 1}
    assert first.time_in_stage(PROCESS) == Store.time_in_stage(first, PROCESS)
    assert first.time_in_stage(PROCESS)["qualify"].stays == 2
    assert first.time_in_stage(PROCESS)["develop"].total_seconds == (1 + 2) * 3600


def test_a_move_on_a_revision_another_store_replaced_is_a_concurrency_error(stores):
    first, second = stores
    mine = Flow("f1")
    write(first, mine)
    theirs = Flow("f1")
    theirs.written()
    theirs.row = second.get_flow("f1")
    theirs.stored = theirs.row
    theirs.move("next", "develop", hours=1)
    write(second, theirs)
    mine.move("next", "develop", hours=2)

    with pytest.raises(bpf.ConcurrencyError, match="at revision 2"):
        first.write(mine.ops())  # one move of a flow `first` knows, at revision 1

    assert first.history("f1") == second.history("f1")
    assert [e.at for e in first.history("f1")] == [at(0), at(1)]
    assert first.last_change("opp-1", OPP).at == at(1)
