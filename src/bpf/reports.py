"""Reports over the flows of a process: the funnel, time in stage, stale flows, status counts.

Every report asks the engine's store, which answers with aggregate queries (a database store
never loads every flow into memory for them). Stages are listed in the order of the latest
registered version of the process; flows still on older versions count under the same stage
ids, and stage ids only older versions have come after.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from bpf.definition.model import ProcessDefinition, Stage

if TYPE_CHECKING:
    from bpf.runtime.engine import Engine
    from bpf.runtime.flow import Flow
    from bpf.store.base import Store

#: The statuses a flow can have, in the order reports list them.
STATUSES = ("active", "finished", "aborted")


@attrs.frozen
class FunnelRow:
    """One stage of the funnel."""

    #: the stage id, its name and pipeline phase
    stage: str
    name: str
    phase: str | None
    #: active flows in the stage now
    active: int
    #: flows that ever entered the stage
    reached: int
    #: flows that ever moved forward (``next``) out of the stage
    advanced: int
    #: ``advanced / reached``: the share of flows that went on from here (None: none reached)
    conversion: float | None
    #: the median length of a completed stay in the stage (None: no stay completed yet)
    median_time: timedelta | None
    #: the stage's probability (percent), and ``active × probability / 100``
    probability: float | None
    weighted: float
    #: active flows in the stage for longer than its ``stale_after_days``
    stale: int


@attrs.frozen
class TimeInStage:
    """The completed stays of flows in one stage.

    A stay runs from the history entry that put a flow in the stage to its next entry (a move,
    or finish/abandon, which stop the clock until the flow is reactivated).
    """

    stage: str
    name: str
    stays: int
    total: timedelta
    mean: timedelta
    median: timedelta


def funnel(engine: Engine, process: str, *, now: datetime | None = None) -> list[FunnelRow]:
    """The funnel of ``process``: per stage, active, reached and advanced flows, conversion,
    median time in stage, weighted pipeline and stale flows (stale as of ``now``, default the
    engine's clock)."""
    store = engine.store
    definitions = _definitions(engine, process)
    cutoffs = _cutoffs(definitions, now or engine.now())
    active, reached, advanced, times, stale = _side_by_side(
        store,
        lambda: store.stage_counts(process, status="active"),
        lambda: store.reached_counts(process),
        lambda: store.advanced_counts(process),
        lambda: store.time_in_stage(process),
        lambda: store.stale_counts(process, cutoffs),
    )
    stages = _stages(definitions, {s for _, s in active} | set(reached))
    rows = []
    for stage_id, stage in stages:
        weighted = 0.0
        count = 0
        for (version, s), n in active.items():
            if s != stage_id:
                continue
            count += n
            own = _stage_of(definitions.get(version), s) or stage
            if own is not None and own.probability is not None:
                weighted += n * own.probability / 100
        entered = reached.get(stage_id, 0)
        went_on = advanced.get(stage_id, 0)
        time = times.get(stage_id)
        rows.append(FunnelRow(
            stage=stage_id,
            name=stage.name if stage else stage_id,
            phase=stage.phase if stage else None,
            active=count,
            reached=entered,
            advanced=went_on,
            conversion=went_on / entered if entered else None,
            median_time=timedelta(seconds=time.median_seconds) if time else None,
            probability=stage.probability if stage else None,
            weighted=weighted,
            stale=sum(n for (_, s), n in stale.items() if s == stage_id),
        ))
    return rows


def time_in_stage(engine: Engine, process: str) -> list[TimeInStage]:
    """How long flows of ``process`` stay in each stage: count, total, mean and median of the
    completed stays, for the stages with at least one."""
    definitions = _definitions(engine, process)
    times = engine.store.time_in_stage(process)
    return [
        TimeInStage(
            stage=stage_id,
            name=stage.name if stage else stage_id,
            stays=t.stays,
            total=timedelta(seconds=t.total_seconds),
            mean=timedelta(seconds=t.total_seconds / t.stays),
            median=timedelta(seconds=t.median_seconds),
        )
        for stage_id, stage in _stages(definitions, set(times))
        if (t := times.get(stage_id)) is not None
    ]


def stale_flows(engine: Engine, process: str, *, now: datetime | None = None) -> Iterator[Flow]:
    """The active flows of ``process`` that have been in their stage longer than the stage's
    ``stale_after_days`` (of the version each flow runs), as of ``now``; streamed."""
    cutoffs = _cutoffs(_definitions(engine, process), now or engine.now())
    yield from engine.flows_of(engine.store.stale(process, cutoffs))


def status_counts(engine: Engine, process: str) -> dict[str, int]:
    """How many flows of ``process`` are active, finished and aborted."""
    _definitions(engine, process)  # an unknown process: UnknownProcessError
    counts = engine.store.status_counts(process)
    return {status: counts.get(status, 0) for status in STATUSES} | counts


# -- helpers -----------------------------------------------------------------------------------


def _side_by_side(store: Store, *reads: Callable[[], Any]) -> list[Any]:
    """The results of independent ``reads``, run in threads of their own when the store can
    serve them at once: each is an aggregate query over its own index, and a database runs
    them on as many cores as it has (SQLite and the drivers release the GIL while a query
    runs). Each read is one transaction either way, as when they ran one after another."""
    if not store.concurrent_reads:
        return [read() for read in reads]
    with ThreadPoolExecutor(max_workers=min(len(reads), max(2, os.cpu_count() or 1))) as pool:
        futures = [pool.submit(read) for read in reads]
        return [future.result() for future in futures]


def _definitions(engine: Engine, process: str) -> dict[int, ProcessDefinition]:
    """Every version of ``process`` the engine registered or its store keeps;
    `bpf.UnknownProcessError` when there is none."""
    found = {d.version: d for d in engine.processes(stored=True) if d.process == process}
    if not found:
        engine.process(process)  # raises, naming what is registered
    return found


def _stages(
    definitions: dict[int, ProcessDefinition], seen: set[str]
) -> list[tuple[str, Stage | None]]:
    """Stage ids in report order, each with its newest definition (None when none has it)."""
    out: dict[str, Stage | None] = {}
    for version in sorted(definitions, reverse=True):
        for stage in definitions[version].stages:
            out.setdefault(stage.id, stage)
    for stage_id in sorted(seen - out.keys()):
        out[stage_id] = None
    return list(out.items())


def _stage_of(definition: ProcessDefinition | None, stage_id: str) -> Stage | None:
    if definition is None or not definition.has_stage(stage_id):
        return None
    return definition.stage(stage_id)


def _cutoffs(
    definitions: dict[int, ProcessDefinition], now: datetime
) -> dict[tuple[int, str], datetime]:
    """When a flow must have entered each (version, stage) to be stale as of ``now``."""
    return {
        (version, stage.id): now - timedelta(days=stage.stale_after_days)
        for version, definition in definitions.items()
        for stage in definition.stages
        if stage.stale_after_days is not None
    }


__all__ = ["STATUSES", "FunnelRow", "TimeInStage", "funnel", "stale_flows", "status_counts",
           "time_in_stage"]
