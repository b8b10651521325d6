"""The rows of a funnel, one per stage or per pipeline phase: what the text chart of
``bpf funnel`` prints and its PNG/SVG/PDF chart draws."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import attrs

import bpf
from bpf import reports
from bpf.cli._output import probability
from bpf.definition.model import ProcessDefinition


@attrs.frozen
class Row:
    """One line of the funnel: a stage, or a pipeline phase of one or more stages."""

    label: str
    phase: str | None
    active: int
    reached: int
    conversion: float | None
    median_time: timedelta | None
    probability: str
    weighted: float
    stale: int


def rows_by_stage(funnel: Sequence[reports.FunnelRow],
                  definition: ProcessDefinition) -> list[Row]:
    out = []
    for r in funnel:
        last = definition.has_stage(r.stage) and definition.is_last(r.stage)
        out.append(Row(r.name, r.phase, r.active, r.reached, None if last else r.conversion,
                       r.median_time, probability(r.probability), r.weighted, r.stale))
    return out


def rows_by_phase(funnel: Sequence[reports.FunnelRow]) -> list[Row]:
    """The stages grouped by pipeline phase, in stage order.

    A phase counts as reached by as many flows as its most reached stage (exact when every
    flow of the phase passes one of its stages, as it usually does); its conversion is the
    share of those that reached the next phase; its median time is the sum of its stages'
    medians, an estimate when it has several.
    """
    groups: dict[str, list[reports.FunnelRow]] = {}
    for r in funnel:
        groups.setdefault(r.phase or r.stage, []).append(r)
    keys = list(groups)
    out = []
    for i, key in enumerate(keys):
        members = groups[key]
        reached = max(m.reached for m in members)
        nxt = max(m.reached for m in groups[keys[i + 1]]) if i + 1 < len(keys) else None
        medians = [m.median_time for m in members if m.median_time is not None]
        probabilities = sorted({m.probability for m in members if m.probability is not None})
        out.append(Row(
            label=key,
            phase=key,
            active=sum(m.active for m in members),
            reached=reached,
            conversion=None if nxt is None or not reached else min(nxt / reached, 1.0),
            median_time=sum(medians, timedelta(0)) if medians else None,
            probability="-" if not probabilities else
            "/".join(f"{p:g}" for p in probabilities) + "%",
            weighted=sum(m.weighted for m in members),
            stale=sum(m.stale for m in members),
        ))
    return out


def funnel_rows(engine: bpf.Engine, definition: ProcessDefinition, by: str) -> list[Row]:
    found = reports.funnel(engine, definition.process)
    return rows_by_phase(found) if by == "phase" else rows_by_stage(found, definition)
