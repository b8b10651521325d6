"""``bpf funnel --db URL``: the funnel of each process, as a text chart or a PNG/SVG chart.

Per process, from `bpf.reports` (aggregate queries: no flow is loaded but the stale ones it
lists), never from the pipeline field alone, which several flows on one record share.
"""

from __future__ import annotations

import argparse
from itertools import islice
from pathlib import Path
from typing import Any

import bpf
from bpf import reports
from bpf._clock import utcnow
from bpf.cli._chart import funnel_chart
from bpf.cli._common import (
    CliError,
    add_database_to_read,
    example_names,
    existing_database,
    load_definition,
    register_all,
    shipped_definition,
)
from bpf.cli._funnel import funnel_rows
from bpf.cli._output import bar, duration, percent, table
from bpf.definition.loader import shipped_names
from bpf.definition.model import ProcessDefinition

HELP = "the funnel of a database: flows per stage, conversion, time in stage, stale flows"

CHART_SUFFIXES = (".png", ".svg", ".pdf")
#: Most stale flows listed under a funnel.
STALE_LISTED = 5


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "funnel", parents=parents, help=HELP,
        description="The funnel of each process in a database: active flows per stage in "
        "order, conversion from each stage to the next, median time in stage, the pipeline "
        "weighted by each stage's probability, and stale flows. A text chart, or with -o a "
        "PNG, SVG or PDF chart (needs matplotlib: pip install 'bpf[charts]').",
    )
    add_database_to_read(p)
    p.add_argument("--process", metavar="NAME|FILE",
                   help="the process (default: every shipped process with flows in the database)")
    p.add_argument("--by", choices=("stage", "phase"), default="stage",
                   help="one row per stage (default) or per pipeline phase")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write a chart instead: .png, .svg or .pdf")
    p.set_defaults(handler=run)


def funnel_text(engine: bpf.Engine, definition: ProcessDefinition, by: str = "stage") -> str:
    """The funnel of one process as a titled text chart, with its stale flows."""
    rows = funnel_rows(engine, definition, by)
    counts = reports.status_counts(engine, definition.process)
    largest = max((r.active for r in rows), default=0)
    lines = [
        f"{definition.process} v{definition.version}: {definition.name}",
        f"  by {by}; flows: " + ", ".join(f"{n} {status}" for status, n in counts.items()),
    ]
    headers = ["STAGE" if by == "stage" else "PHASE"]
    if by == "stage":
        headers.append("PHASE")
    headers += ["ACTIVE", "", "REACHED", "CONV", "MEDIAN", "PROB", "WEIGHTED", "STALE"]
    body = []
    for r in rows:
        line: list[Any] = [r.label]
        if by == "stage":
            line.append(r.phase or "-")
        line += [r.active, bar(r.active, largest, 12), r.reached, percent(r.conversion),
                 duration(r.median_time), r.probability, f"{r.weighted:.1f}", r.stale or ""]
        body.append(line)
    first = 2 if by == "stage" else 1
    lines.append(table(headers, body, indent="  ",
                       right=(first, first + 2, first + 3, first + 4, first + 6, first + 7)))
    active = sum(r.active for r in rows)
    weighted = sum(r.weighted for r in rows)
    lines.append(f"  weighted pipeline: {weighted:.1f} of {active} active flow"
                 f"{'s' if active != 1 else ''} (each counted at its {by}'s probability)")
    lines.append(f"  CONV: share of the flows reaching the {by} that moved on; MEDIAN: median "
                 f"time in the {by}")
    stale = list(islice(reports.stale_flows(engine, definition.process), STALE_LISTED + 1))
    if stale:
        now = utcnow()
        listed = ", ".join(
            f"{f.record_id} in {f.stage.name} for {duration(now - f.stage_started_at)}"
            for f in stale[:STALE_LISTED]
        )
        more = " ..." if len(stale) > STALE_LISTED else ""
        lines.append(f"  stale: {listed}{more}")
    return "\n".join(lines)


def _processes_in(engine: bpf.Engine) -> list[ProcessDefinition]:
    """The processes that have flows in the engine's store: the newest version of each
    definition the store keeps; for a database written before bpf kept them, the shipped
    processes (and examples) by name."""
    latest: dict[str, ProcessDefinition] = {}
    for definition in engine.processes(stored=True):
        known = latest.get(definition.process)
        if known is None or known.version < definition.version:
            latest[definition.process] = definition
    for name in (*shipped_names(), *example_names()):
        if name not in latest and (shipped := shipped_definition(name)) is not None:
            latest[name] = shipped
    return [d for name, d in sorted(latest.items()) if engine.store.status_counts(name)]


def run(args: argparse.Namespace) -> int:
    url = existing_database(args.db)
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in CHART_SUFFIXES:
        raise CliError(f"cannot write a chart to {output}: give a .png, .svg or .pdf file")
    chosen = [load_definition(args.process)] if args.process else None
    with bpf.Engine(url) as engine:
        definitions = chosen or _processes_in(engine)
        if not definitions:
            raise CliError(f"no flows of a known process in {engine.store.url}; name "
                           "your process with --process NAME|FILE")
        stored = {(d.process, d.version) for d in engine.processes(stored=True)}
        register_all(engine, [d for d in definitions if (d.process, d.version) not in stored],
                     quiet=True)
        if chosen and not engine.store.status_counts(chosen[0].process):
            raise CliError(f"no {chosen[0].process!r} flows in {engine.store.url}")
        if output is not None:
            charts = [(d, funnel_rows(engine, d, args.by)) for d in definitions]
            funnel_chart(charts, output, by=args.by, source=engine.store.url)
            print(f"wrote {output}")
            return 0
        print(f"{engine.store.url}")
        for definition in definitions:
            print()
            print(funnel_text(engine, definition, args.by))
    return 0
