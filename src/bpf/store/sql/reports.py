"""The report queries: counts and time in stage answered by the database, from the flow rows
and the report columns of the history rows, without reading every flow.

Each gives what the memory store's default in `bpf.store.base.Store` gives for the same flows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from bpf.store.base import StageTime
from bpf.store.sql.connection import Database, retry_dropped
from bpf.store.sql.tables import flows, history


@retry_dropped
def stage_counts(db: Database, process: str, status: str | None) -> dict[tuple[int, str], int]:
    """See `bpf.store.Store.stage_counts`."""
    f = flows.c
    conditions = [f.process == process]
    if status is not None:
        conditions.append(f.status == status)
    statement = (
        sa.select(f.stage, f.version, sa.func.count())
        .where(*conditions).group_by(f.stage, f.version)
    )
    with db.reading("cannot count flows") as conn:
        return {(v, s): n for s, v, n in conn.execute(statement)}


def _count_by(db: Database, statement: Any) -> dict[str, int]:
    """``{key: count}`` from a two-column GROUP BY."""
    with db.reading("cannot count flows") as conn:
        return {k: n for k, n in conn.execute(statement)}


@retry_dropped
def status_counts(db: Database, process: str) -> dict[str, int]:
    """See `bpf.store.Store.status_counts`."""
    f = flows.c
    return _count_by(
        db, sa.select(f.status, sa.func.count()).where(f.process == process).group_by(f.status)
    )


@retry_dropped
def reached_counts(db: Database, process: str) -> dict[str, int]:
    """See `bpf.store.Store.reached_counts`: the entries that first entered a stage."""
    h = history.c
    return _count_by(db, (
        sa.select(h.to_stage, sa.func.count())
        .where(h.process == process, h.entered_first == 1).group_by(h.to_stage)
    ))


@retry_dropped
def advanced_counts(db: Database, process: str) -> dict[str, int]:
    """See `bpf.store.Store.advanced_counts`: the entries that first moved forward out of a
    stage."""
    h = history.c
    return _count_by(db, (
        sa.select(h.from_stage, sa.func.count())
        .where(h.process == process, h.advanced_first == 1).group_by(h.from_stage)
    ))


def stale_conditions(process: str, key: tuple[int, str], cutoff: datetime) -> list[Any]:
    """Active flows of ``process`` in (version, stage) ``key`` since before ``cutoff``."""
    f = flows.c
    version, stage = key
    return [f.process == process, f.status == "active", f.stage == stage, f.version == version,
            f.stage_started_at < cutoff]


@retry_dropped
def stale_counts(
    db: Database, process: str, cutoffs: Mapping[tuple[int, str], datetime]
) -> dict[tuple[int, str], int]:
    """See `bpf.store.Store.stale_counts`."""
    out: dict[tuple[int, str], int] = {}
    with db.reading("cannot count flows") as conn:
        for key, cutoff in cutoffs.items():
            n = conn.scalar(
                sa.select(sa.func.count()).select_from(flows)
                .where(*stale_conditions(process, key, cutoff))
            )
            if n:
                out[key] = n
    return out


@retry_dropped
def time_in_stage(db: Database, process: str) -> dict[str, StageTime]:
    """See `bpf.store.Store.time_in_stage`: each history row that ends a stay carries its
    length (``seconds``) and the stage left (``from_stage``)."""
    h = history.c
    # from_stage IS NOT NULL skips the start entries in the index range.
    conditions = [h.process == process, h.from_stage.is_not(None), h.seconds.is_not(None)]
    totals = (
        sa.select(h.from_stage, sa.func.count(), sa.func.sum(h.seconds))
        .where(*conditions).group_by(h.from_stage)
    )
    middle = (
        sa.select(h.seconds)
        .where(*conditions, h.from_stage == sa.bindparam("stage"))
        .order_by(h.seconds)
        .limit(sa.bindparam("n")).offset(sa.bindparam("skip"))
    )
    out: dict[str, StageTime] = {}
    with db.reading("cannot measure time in stage") as conn:
        for stage, count, total in conn.execute(totals).all():
            # The median from the (process, from_stage, seconds) index: skip to the middle.
            values = conn.scalars(
                middle, {"stage": stage, "n": 2 - count % 2, "skip": (count - 1) // 2}
            ).all()
            out[stage] = StageTime(count, float(total), sum(values) / len(values))
    return out
