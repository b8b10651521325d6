"""The tables bpf keeps in a database, their columns, and the UTC datetime type they use.

``bpf_flows`` holds one row per flow, ``bpf_flow_records`` the records each flow spans,
``bpf_history`` every history entry, ``bpf_records`` each record's active flow and last stage
change, ``bpf_definitions`` the canonical text of each registered definition, ``bpf_meta`` the
schema version. A record is its (entity, record id): a lead 42 and an opportunity 42 are two
records (schema version 2; version 1 keyed records by id alone). Some columns are the store's
own, derived at write time for the report queries (see `bpf.store.sql.rows`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """An aware UTC datetime on both dialects: SQLite keeps naive UTC text, re-attached on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: bpf stores aware UTC datetimes only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")  # INTEGER PRIMARY KEY on SQLite

metadata = sa.MetaData()

meta = sa.Table(
    "bpf_meta", metadata,
    sa.Column("key", sa.String, primary_key=True),
    sa.Column("value", sa.String, nullable=False),
)

flows = sa.Table(
    "bpf_flows", metadata,
    sa.Column("id", sa.String, primary_key=True),
    sa.Column("process", sa.String, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),  # the primary record's id...
    sa.Column("stage", sa.String, nullable=False),
    sa.Column("stage_started_at", UTCDateTime, nullable=False),
    sa.Column("traversed", sa.Text, nullable=False),  # JSON list of stage ids
    sa.Column("status", sa.String, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("completed_at", UTCDateTime),
    sa.Column("outcome", sa.String),
    sa.Column("revision", sa.Integer, nullable=False),
    # Private to the store, for the report columns of bpf_history:
    sa.Column("changed_at", UTCDateTime, nullable=False),  # since when the stay clock runs
    sa.Column("entered", sa.Text, nullable=False),  # JSON list: stages ever entered
    sa.Column("advanced", sa.Text, nullable=False),  # JSON list: stages ever left forward
    sa.Column("entity", sa.String, nullable=False),  # ...and its entity (last: added by v2)
    sa.UniqueConstraint("process", "entity", "record_id", name="uq_bpf_flows_process_record"),
    # Serves stage counts, status counts and stale flows without touching the table.
    sa.Index("ix_bpf_flows_report", "process", "status", "stage", "version", "stage_started_at"),
)

flow_records = sa.Table(
    "bpf_flow_records", metadata,
    # Insertion order = the order flows came to span a record ("start order").
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("flow_id", sa.String, sa.ForeignKey("bpf_flows.id"), nullable=False),
    sa.Column("entity", sa.String, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("position", sa.Integer, nullable=False),
    sa.UniqueConstraint("flow_id", "position", name="uq_bpf_flow_records_position"),
    # (record_id, entity): serves a record's flows, and those of an id of any entity.
    sa.Index("ix_bpf_flow_records_record", "record_id", "entity"),
)

history = sa.Table(
    "bpf_history", metadata,
    sa.Column("id", _ID, primary_key=True, autoincrement=True),
    sa.Column("flow_id", sa.String, sa.ForeignKey("bpf_flows.id"), nullable=False),
    sa.Column("process", sa.String, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("record_id", sa.String, nullable=False),
    sa.Column("kind", sa.String, nullable=False),
    sa.Column("from_stage", sa.String),
    sa.Column("to_stage", sa.String, nullable=False),
    sa.Column("phase", sa.String, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String),
    # Derived at write time, for the reports:
    sa.Column("seconds", sa.Float),  # length of the stay in from_stage this entry ends
    sa.Column("entered_first", sa.SmallInteger, nullable=False),  # 1: first entry into to_stage
    sa.Column("advanced_first", sa.SmallInteger, nullable=False),  # 1: first "next" out of from
    sa.Index("ix_bpf_history_flow", "flow_id", "id"),
    sa.Index("ix_bpf_history_entered", "process", "entered_first", "to_stage"),
    sa.Index("ix_bpf_history_advanced", "process", "advanced_first", "from_stage"),
    sa.Index("ix_bpf_history_stay", "process", "from_stage", "seconds"),
)

records = sa.Table(
    "bpf_records", metadata,
    sa.Column("entity", sa.String, primary_key=True),
    sa.Column("record_id", sa.String, primary_key=True),
    sa.Column("active_flow_id", sa.String, sa.ForeignKey("bpf_flows.id")),
    # The latest stage change on the record, by any flow:
    sa.Column("last_flow_id", sa.String, sa.ForeignKey("bpf_flows.id")),
    sa.Column("last_process", sa.String),
    sa.Column("last_version", sa.Integer),
    sa.Column("last_kind", sa.String),
    sa.Column("last_from_stage", sa.String),
    sa.Column("last_to_stage", sa.String),
    sa.Column("last_phase", sa.String),
    sa.Column("last_at", UTCDateTime),
    sa.Column("last_actor", sa.String),
)

definitions = sa.Table(
    "bpf_definitions", metadata,
    sa.Column("process", sa.String, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("text", sa.Text, nullable=False),  # the canonical text of the definition
    sa.Column("fingerprint", sa.String, nullable=False),
)

#: The columns of a flow row, in the order `bpf.store.sql.rows` builds its parameters.
FLOW_COLUMNS = (
    "id", "process", "version", "record_id", "stage", "stage_started_at", "traversed", "status",
    "started_at", "completed_at", "outcome", "revision", "changed_at", "entered", "advanced",
    "entity",
)
#: The columns of a history entry as `bpf.StageChange` has them, in its field order.
HISTORY_COLUMNS = (
    "flow_id", "process", "version", "record_id", "kind", "from_stage", "to_stage", "phase",
    "at", "actor",
)
#: The columns of a record's last stage change, in `bpf.StageChange` field order (no record).
LAST_COLUMNS = (
    "last_flow_id", "last_process", "last_version", "last_kind", "last_from_stage",
    "last_to_stage", "last_phase", "last_at", "last_actor",
)
