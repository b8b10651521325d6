"""Time in stage has one home (bpf._history): the flow, the reports, the stores and
``bpf history`` give the same answer, across a migration and a reactivation.

One deal, on a fake clock (day 0 = its start):

- day 0 start in Qualify; day 1 Next to Develop;
- day 3 migrated to version 2 while in Develop: the stay goes on;
- day 6 Next to Close: one 5-day stay in Develop (2 days before the migration, 3 after);
- day 7 finish (the clock stops); day 9 reactivate in Close (it runs again);
- day 10 Previous to Develop; day 14 abandon.

So: Qualify 1 day (one stay), Develop 5 + 4 = 9 days (two stays), Close 1 + 1 = 2 days (two
stays: the two days the deal was finished do not count).
"""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import bpf
from bpf import reports

DAY = timedelta(days=1)
START = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PROCESS = "stay-deal"
STAGES = """\
stages:
  - {id: qualify, name: Qualify, category: Qualify}
  - {id: develop, name: Develop, category: Develop}
  - {id: close, name: Close, category: Close}
"""
V1 = f"""\
process: {PROCESS}
name: Stay Deal
entity: opportunity
version: 1
{STAGES}"""
#: Version 2 has the same stages: the flow keeps its stage through the migration.
V2 = V1.replace("version: 1", "version: 2").replace("name: Stay Deal", "name: Stay Deal v2")

#: Total time in each stage, and its completed stays.
EXPECTED = {"qualify": (1 * DAY, 1), "develop": (9 * DAY, 2), "close": (2 * DAY, 2)}


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def on_day(self, day: int) -> None:
        self.now = START + day * DAY


def play(engine: bpf.Engine, clock: Clock) -> None:
    """The deal's history above, through the public API."""
    engine.register(bpf.loads_process(V1, source="stay-deal-v1.yaml"))
    deal = {"id": "deal-1"}
    flow = engine.start(PROCESS, deal)
    clock.on_day(1)
    flow.next()
    clock.on_day(3)
    engine.register(bpf.loads_process(V2, source="stay-deal-v2.yaml"))
    assert engine.migrate(PROCESS, 2) == 1
    flow = engine.flow(deal, PROCESS)
    assert (flow.version, flow.stage.id) == (2, "develop")
    clock.on_day(6)
    flow.next()
    clock.on_day(7)
    flow.finish()
    clock.on_day(9)
    flow.reactivate()
    clock.on_day(10)
    flow.previous()
    clock.on_day(14)
    flow.abandon()
    clock.on_day(30)  # long after: a stopped clock adds nothing


def _played(url: str):
    clock = Clock()
    engine = bpf.Engine(url, clock=clock)
    try:
        play(engine, clock)
        yield engine
    finally:
        engine.close()


@pytest.fixture
def played(store_url):
    """The deal played on memory, SQLite and PostgreSQL."""
    yield from _played(store_url)


@pytest.fixture
def played_db(persistent_url):
    """The deal played on SQLite and PostgreSQL, where ``bpf history`` can read it."""
    yield from _played(persistent_url)


def test_the_flow_counts_a_stay_through_a_migration_whole(played):
    flow = played.flow("deal-1", PROCESS)
    assert [e.kind for e in flow.history] == [
        "start", "next", "migrate", "next", "finish", "reactivate", "previous", "abandon",
    ]
    assert {s: flow.time_in_stage(s) for s in EXPECTED} == {
        s: total for s, (total, _) in EXPECTED.items()
    }


def test_the_reports_agree_with_the_flow(played):
    found = {t.stage: (t.total, t.stays) for t in reports.time_in_stage(played, PROCESS)}
    assert found == EXPECTED


def test_the_store_report_agrees_with_the_flow(played):
    found = played.store.time_in_stage(PROCESS)
    assert {s: (timedelta(seconds=t.total_seconds), t.stays) for s, t in found.items()} == (
        EXPECTED
    )


def test_bpf_history_shows_each_stay_once_on_the_change_that_entered_the_stage(
    played_db, persistent_url
):
    played_db.close()
    # The real command, as tests/cli/clitools.py runs it: the console script next to Python.
    done = subprocess.run(
        [str(Path(sys.executable).parent / "bpf"), "history", "--db", persistent_url, "deal-1"],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode == 0, done.stderr

    lines = done.stdout.splitlines()
    header = next(line for line in lines if "CHANGE" in line)
    rows = [line for line in lines if line.startswith("  20")]
    change, to, stay = (header.index(h) for h in ("CHANGE", "TO ", "TIME IN STAGE"))
    shown = [(r[change:].split()[0], r[to:].split()[0] if r[to:].strip() else "",
              r[stay:].strip()) for r in rows]
    # (stage names: the database keeps the definitions of its flows, no process file needed)
    assert shown == [
        ("start", "Qualify", "1d"),
        ("next", "Develop", "5d"),      # the whole stay, 2 days of it before the migration
        ("migrate", "Develop", ""),     # a migration goes on with the same stay
        ("next", "Close", "1d"),
        ("finish", "Close", ""),
        ("reactivate", "Close", "1d"),
        ("previous", "Develop", "4d"),
        ("abandon", "Develop", ""),
    ]
    totals: dict[str, timedelta] = {}
    for _, stage, length in shown:
        if length:
            stage_id = stage.lower()
            totals[stage_id] = (totals.get(stage_id, timedelta(0))
                                + int(length.removesuffix("d")) * DAY)
    assert totals == {s: total for s, (total, _) in EXPECTED.items()}
