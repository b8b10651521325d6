"""``bpf history --db URL RECORD_ID``: every stage change of every flow on a record."""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

import bpf
from bpf.cli._common import CliError, existing_database, known_definition
from bpf.cli._output import duration, table
from bpf.runtime.engine import utcnow
from bpf.store.base import FlowRow

HELP = "every stage change of every flow on a record, with time in stage"

#: History kinds that put the flow in a stage, where its clock runs.
ENTERING = frozenset({"start", "next", "previous", "set_active", "migrate", "reactivate"})


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "history", parents=parents, help=HELP,
        description="Show every stage and status change of every flow on a record, oldest "
        "first, who made it and how long the flow stayed in the stage, read from a database "
        "that `bpf demo` or `bpf run --db` wrote.",
    )
    p.add_argument("--db", required=True, metavar="URL",
                   help="the database: sqlite:///file.db, a PostgreSQL URL, or an SQLite path")
    p.add_argument("record", metavar="RECORD_ID", help="the record's id")
    p.set_defaults(handler=run)


def _when(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M")


def run(args: argparse.Namespace) -> int:
    url = existing_database(args.db)
    with bpf.Engine(url) as engine:
        store = engine.store
        rows: list[FlowRow] = list(store.record_flows(args.record))
        if not rows:
            raise CliError(f"no flow on record {args.record!r} in {store.url}")
        now = utcnow()
        shown = store.active_flow_id(args.record)
        last = store.last_change(args.record)
        print(f"{args.record}: {len(rows)} flow{'s' if len(rows) > 1 else ''}")
        if last is not None:
            print(f"pipeline phase {last.phase}: last stage change by any flow was "
                  f"{last.process} {last.from_stage or '-'} -> {last.to_stage}"
                  + (f" by {last.actor}" if last.actor else "") + f" at {_when(last.at)}")
        for row in rows:
            definition = known_definition(row.process, row.version)

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
            lines = []
            for i, entry in enumerate(entries):
                if entry.kind in ENTERING:
                    until = entries[i + 1].at if i + 1 < len(entries) else (
                        now if row.status == "active" else None)
                    stay = duration(until - entry.at) if until is not None else "-"
                    if i + 1 == len(entries) and row.status == "active":
                        stay += " so far"
                else:
                    stay = ""
                # A status change (finish, abandon, reactivate) stays in its stage: show it once.
                leaving = entry.from_stage if entry.from_stage != entry.to_stage else None
                lines.append([_when(entry.at), entry.kind, name(leaving),
                              name(entry.to_stage), entry.phase, entry.actor or "-", stay])
            print(table(["WHEN (UTC)", "CHANGE", "FROM", "TO", "PHASE", "BY", "TIME IN STAGE"],
                        lines, indent="  "))
    return 0
