"""History values and the one rule of time in stage.

A flow's history is a list of `StageChange` entries. Every answer about how long a flow stayed
in a stage (`bpf.Flow.time_in_stage`, `bpf.reports.time_in_stage`, the stores' report queries,
``bpf history``) comes from `advance`, one step of the stay clock:

- an entry that enters a stage (start, next, previous, set_active, reactivate) ends the stay
  running before it, if any, and starts the clock on its ``to_stage``;
- finish and abandon end the stay and stop the clock until reactivate;
- a ``migrate`` entry is not a move in the business: the stay goes on, under the stage's id in
  the new version, and counts whole for the stage the flow later leaves.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from typing import NamedTuple

#: History kinds that change the active stage (and so the record's pipeline phase).
STAGE_KINDS = frozenset({"start", "next", "previous", "set_active", "migrate"})
#: History kinds after which the stay clock stops, until reactivate.
STOPPED = frozenset({"finish", "abandon"})


class StageChange(NamedTuple):
    """One entry of a flow's history: a stage change or a status change.

    ``kind`` is one of start, next, previous, set_active, migrate (stage changes) or finish,
    abandon, reactivate (status changes, where ``from_stage == to_stage``). ``record_id`` is
    the record of the stage entered, the one whose pipeline field the change writes.
    """

    __module__ = "bpf"  # shown as bpf.StageChange, its public name

    flow_id: str
    process: str
    version: int
    record_id: str
    kind: str
    from_stage: str | None
    to_stage: str
    phase: str
    at: datetime
    actor: str | None

    @property
    def is_stage_change(self) -> bool:
        return self.kind in STAGE_KINDS


def advance(
    since: datetime | None, kind: str, at: datetime
) -> tuple[timedelta | None, datetime | None]:
    """One step of the stay clock, for an entry of ``kind`` at ``at`` while the clock has run
    ``since`` (None: stopped). Returns the length of the stay the entry ends (None when it ends
    none) and when the clock runs from now on (None: stopped).

    A clock that went backwards gives a zero stay, never a negative one.
    """
    if kind == "migrate":
        return None, since
    ended = None if since is None else max(at - since, timedelta(0))
    return ended, (None if kind in STOPPED else at)


class Stay(NamedTuple):
    """One stay of a flow in a stage: from the entry that entered it to the one that ended it."""

    stage: str
    #: index in the history of the entry that started the stay
    entered: int
    started_at: datetime
    #: None while the stay goes on
    ended_at: datetime | None


def stays(entries: Iterable[StageChange]) -> Iterator[Stay]:
    """The stays of one flow's history, in order; the last one open (``ended_at`` None) while
    the flow's clock runs."""
    since: datetime | None = None
    stage: str | None = None
    entered = 0
    for i, entry in enumerate(entries):
        ended, next_since = advance(since, entry.kind, entry.at)
        if ended is not None and stage is not None and since is not None:
            yield Stay(stage, entered, since, entry.at if entry.at > since else since)
        if entry.kind == "migrate":
            stage = entry.to_stage  # the same stay, under its id in the new version
        elif next_since is not None:
            stage, entered = entry.to_stage, i
        since = next_since
    if since is not None and stage is not None:
        yield Stay(stage, entered, since, None)


def time_in_stage(
    entries: Iterable[StageChange], stage_id: str, now: datetime
) -> timedelta:
    """Total time one flow's history spent in ``stage_id``, across every visit; an open stay
    counts up to ``now``."""
    total = timedelta(0)
    for stay in stays(entries):
        if stay.stage == stage_id:
            end = now if stay.ended_at is None else stay.ended_at
            total += max(end - stay.started_at, timedelta(0))
    return total
