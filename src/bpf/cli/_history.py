"""``bpf history --db URL RECORD_ID``: every stage change of every flow on a record."""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta
from typing import Any

import bpf
from bpf._clock import utcnow
from bpf._history import Stay, stays
from bpf.cli._common import CliError, add_database_to_read, existing_database, known_definition
from bpf.cli._output import duration, table
from bpf.store.base import FlowRow

HELP = "every stage change of every flow on a record, with time in stage"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history", parents=parents, help=HELP,
        description="Show every stage and status change of every flow on a record, oldest "
        "first, who made it and how long the flow stayed in the stage, read from a database "
        "that `bpf demo` or `bpf run --db` wrote.",
    )
    add_database_to_read(p)
    p.add_argument("record", metavar="RECORD_ID", help="the record's id")
    p.add_argument("--entity", metavar="ENTITY",
                   help="the record's entity, when the id names records of several entities "
                        "(a lead 42 and an opportunity 42)")
    p.set_defaults(handler=run)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def _stay(stay: Stay, now: datetime) -> str:
    """How long a stay lasted, or has lasted ``so far`` while it goes on."""
    if stay.ended_at is None:
        return duration(max(now - stay.started_at, timedelta(0))) + " so far"
    return duration(stay.ended_at - stay.started_at)


def run(args: argparse.Namespace) -> int:
    url = existing_database(args.db)
    with bpf.Engine(url) as engine:
        store = engine.store
        rows: list[FlowRow] = list(store.record_flows(args.record, args.entity))
        if not rows:
            raise CliError(f"no flow on record {args.record!r} in {store.url}")
        entities = sorted({e for row in rows for e, r in row.records if r == args.record})
        if len(entities) > 1:
            raise CliError(
                f"{args.record!r} is the id of records of several entities "
                f"({', '.join(entities)}): say which with --entity"
            )
        entity = entities[0]
        now = utcnow()
        shown = store.active_flow_id(args.record, entity)
        last = store.last_change(args.record, entity)
        print(f"{args.record}: {len(rows)} flow{'s' if len(rows) > 1 else ''}")
        if last is not None:
            print(f"pipeline phase {last.phase}: last stage change by any flow was "
                  f"{last.process} {last.from_stage or '-'} -> {last.to_stage}"
                  + (f" by {last.actor}" if last.actor else "") + f" at {_when(last.at)}")
        for row in rows:
            definition = known_definition(row.process, row.version, engine)

            def name(stage: str | None, definition: Any = definition) -> str:
                if stage is None:
                    return ""
                if definition is not None and definition.has_stage(stage):
                    return definition.stage(stage).name
                return stage

            print()
            state = f"in {name(row.stage)}" if row.status == "active" else (
                f"{row.status} at {name(row.stage)}"
                + (f" ({row.outcome})" if row.outcome else ""))
            marks = []
            if row.id == shown:
                marks.append("the flow the record shows")
            if len(row.records) > 1:
                marks.append("records " + ", ".join(f"{e} {r}" for e, r in row.records))
            print(f"{row.process} v{row.version}: {state}"
                  + (f" ({'; '.join(marks)})" if marks else ""))
            entries = store.history(row.id)
            # Each stay once, whole, on the entry that entered the stage: a migration goes on
            # with the same stay (bpf._history), so its row shows none.
            stay_of = {stay.entered: _stay(stay, now) for stay in stays(entries)}
            lines = []
            for i, entry in enumerate(entries):
                stay = stay_of.get(i, "")
                # A status change (finish, abandon, reactivate) stays in its stage: show it once.
                leaving = entry.from_stage if entry.from_stage != entry.to_stage else None
                lines.append([_when(entry.at), entry.kind, name(leaving),
                              name(entry.to_stage), entry.phase, entry.actor or "-", stay])
            print(table(["WHEN (UTC)", "CHANGE", "FROM", "TO", "PHASE", "BY", "TIME IN STAGE"],
                        lines, indent="  "))
    return 0
