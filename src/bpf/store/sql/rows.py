"""Rows to parameters and back: `FlowRow` and `bpf.StageChange` values into the tuples the
write statements take, and result rows into `FlowRow` values.

A history row also carries what the reports need without reading every flow: how long the stay
it ends lasted (``seconds``), and whether it is the flow's first entry into its stage
(``entered_first``) or first forward move out of the stage it leaves (``advanced_first``).
Those come from a `FlowState` the writer keeps per flow, advanced past each entry by
`bpf._history.advance`, the one rule of the stay clock: so the stored seconds are the stays of
`bpf._history.stays`, by construction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from json.encoder import encode_basestring_ascii as _quote
from typing import Any

from bpf._history import StageChange, advance
from bpf.store.base import FlowRow

#: An aware datetime as the driver takes it.
DateTimeIn = Callable[[datetime], Any]


class FlowState:
    """What the store knows of a flow beyond its row, for the report columns of its history:
    its revision, since when its stay clock runs (None: stopped), the stages it ever entered
    and those it ever left forward."""

    __slots__ = ("advanced", "entered", "revision", "since")

    def __init__(
        self, revision: int, since: datetime | None, entered: set[str], advanced: set[str]
    ) -> None:
        self.revision = revision
        self.since = since
        self.entered = entered
        self.advanced = advanced

    @classmethod
    def new(cls) -> FlowState:
        """A flow not stored yet."""
        return cls(0, None, set(), set())

    @classmethod
    def stored(
        cls, revision: int, status: str, changed_at: datetime | None, entered: str, advanced: str
    ) -> FlowState:
        """A flow's state from its stored columns (``changed_at`` an aware datetime)."""
        # The clock runs exactly while the flow is active: finish and abandon, which stop it,
        # are what end an active status, and reactivate, which restarts it, what restores one.
        return cls(revision, changed_at if status == "active" else None,
                   set(json.loads(entered)), set(json.loads(advanced)))

    def copy(self) -> FlowState:
        return FlowState(self.revision, self.since, set(self.entered), set(self.advanced))


# -- datetimes and lists as the drivers take them ------------------------------------------------

_last_datetime: tuple[datetime | None, str] = (None, "")


def sqlite_datetime(value: datetime) -> str:
    """The text SQLAlchemy's SQLite DateTime stores, for an aware datetime, in UTC."""
    global _last_datetime
    last = _last_datetime  # one read: threads may replace it
    if value is last[0]:  # a move writes one instant three or four times
        return last[1]
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: bpf stores aware UTC datetimes only")
    utc = value if value.tzinfo is UTC else value.astimezone(UTC)
    text = utc.isoformat(" ")[:-6]  # C-fast; drop the "+00:00"
    if not utc.microsecond:
        text += ".000000"
    _last_datetime = (value, text)
    return text


def aware(value: datetime) -> datetime:
    """PostgreSQL's driver takes aware datetimes as they are; naive ones are refused."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: bpf stores aware UTC datetimes only")
    return value


def driver_datetime(value: Any) -> datetime | None:
    """A datetime read on the driver's cursor (without the column type's conversion): SQLite
    gives naive UTC text, PostgreSQL an aware datetime."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    return None if value is None else value.astimezone(UTC)


def json_list(items: Iterable[str]) -> str:
    """``json.dumps(list(items))`` for strings, without the encoder's Python layers."""
    return "[" + ", ".join(map(_quote, items)) + "]"


# -- parameters of the write statements ----------------------------------------------------------


def history_params(entry: StageChange, state: FlowState, dt: DateTimeIn) -> tuple[Any, ...]:
    """The history row of ``entry`` (`HISTORY_ORDER`), advancing ``state`` past it."""
    kind = entry.kind
    from_stage = entry.from_stage
    ended, state.since = advance(state.since, kind, entry.at)
    entered_first = entry.to_stage not in state.entered
    advanced_first = kind == "next" and from_stage is not None and from_stage not in state.advanced
    if entered_first:
        state.entered.add(entry.to_stage)
    if advanced_first:
        state.advanced.add(from_stage)  # type: ignore[arg-type]
    return (
        entry.flow_id, entry.process, entry.version, entry.record_id, kind, from_stage,
        entry.to_stage, entry.phase, dt(entry.at), entry.actor,
        None if ended is None else ended.total_seconds(), int(entered_first), int(advanced_first),
    )


def last_params(entity: str, record_id: str, c: StageChange, dt: DateTimeIn) -> tuple[Any, ...]:
    """The bpf_records row of a record's last stage change (`LAST_ORDER`)."""
    return (
        entity, record_id, c.flow_id, c.process, c.version, c.kind, c.from_stage, c.to_stage,
        c.phase, dt(c.at), c.actor,
    )


def update_params(row: FlowRow, state: FlowState, expected: int, dt: DateTimeIn) -> tuple[Any, ...]:
    """A flow's UPDATE from revision ``expected`` to ``row`` (`UPDATE_ORDER`)."""
    completed = row.completed_at
    return (
        row.version, row.stage, dt(row.stage_started_at), json_list(row.traversed), row.status,
        None if completed is None else dt(completed), row.outcome, row.revision,
        # A stopped clock's time is never read back (see FlowState.stored): any will do.
        dt(state.since or row.stage_started_at),
        json_list(sorted(state.entered)), json_list(sorted(state.advanced)),
        row.id, expected,
    )


def insert_params(row: FlowRow, state: FlowState, dt: DateTimeIn) -> tuple[Any, ...]:
    """A new flow's row (`FLOW_COLUMNS`)."""
    completed = row.completed_at
    return (
        row.id, row.process, row.version, row.records[0][1], row.stage,
        dt(row.stage_started_at), json_list(row.traversed), row.status, dt(row.started_at),
        None if completed is None else dt(completed), row.outcome, row.revision,
        dt(state.since or row.stage_started_at),
        json_list(sorted(state.entered)), json_list(sorted(state.advanced)), row.records[0][0],
    )


# -- result rows into values ---------------------------------------------------------------------


def flow_rows(result: Iterable[Any], states: dict[str, FlowState]) -> list[FlowRow]:
    """FlowRows from rows of a flow joined with its records (`FLOW_ROW_COLUMNS`), each flow's
    rows consecutive; the store's state of each flow goes into ``states``."""
    out: list[FlowRow] = []
    current: Any = None
    spans: list[tuple[str, str]] = []
    for r in result:
        if current is None or r.id != current.id:
            if current is not None:
                out.append(_flow_row(current, spans))
            current, spans = r, []
            states[r.id] = FlowState.stored(r.revision, r.status, r.changed_at, r.entered,
                                            r.advanced)
        if (r.entity, r.record_id) not in spans:
            spans.append((r.entity, r.record_id))
    if current is not None:
        out.append(_flow_row(current, spans))
    return out


def _flow_row(r: Any, spans: list[tuple[str, str]]) -> FlowRow:
    return FlowRow(
        id=r.id, process=r.process, version=r.version, records=tuple(spans), stage=r.stage,
        stage_started_at=r.stage_started_at, traversed=tuple(json.loads(r.traversed)),
        status=r.status, started_at=r.started_at, completed_at=r.completed_at,
        outcome=r.outcome, revision=r.revision,
    )


def last_change(record_id: str, r: Any) -> StageChange:
    """A record's last stage change from its bpf_records columns (`LAST_COLUMNS`)."""
    return StageChange(
        r.last_flow_id, r.last_process, r.last_version, record_id, r.last_kind,
        r.last_from_stage, r.last_to_stage, r.last_phase, r.last_at, r.last_actor,
    )
