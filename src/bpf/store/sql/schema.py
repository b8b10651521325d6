"""The stored schema: created on first use, its version checked, older versions migrated
forward by small named steps."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bpf._errors import StoreError
from bpf.store.sql import events
from bpf.store.sql.connection import Database
from bpf.store.sql.tables import definitions, flow_records, flows, history, meta, metadata, records

#: The schema version this code writes. Stored in ``bpf_meta``; see `MIGRATIONS`.
#: 1: records by id alone. 2: records by (entity, id); the definitions table. 3: the outbox
#: (events, consumers: `bpf.store.sql.events`). 4: PostgreSQL numbers events as they are read
#: (the sequence ``bpf_event_pending``), not under a lock held until each write's commit.
SCHEMA_VERSION = 4

_PG_LOCK_KEY = 0x62706673  # "bpfs": serializes schema creation on PostgreSQL
_VERSION = sa.select(meta.c.value).where(meta.c.key == "schema_version")


def _stored_version(conn: Connection, db: Database) -> int | None:
    """The stored schema version (None: no bpf tables yet), checked to be one this bpf knows."""
    if not conn.dialect.has_table(conn, meta.name, schema=db.schema):
        return None
    value = conn.scalar(_VERSION)
    if value is None:
        return None
    try:
        stored = int(value)
    except ValueError:
        stored = -1
    if stored > SCHEMA_VERSION:
        raise StoreError(
            f"{db.url}: the bpf tables have schema version {stored}, written by a newer "
            f"bpf; this bpf knows versions up to {SCHEMA_VERSION}: upgrade bpf"
        )
    if stored != SCHEMA_VERSION and stored not in MIGRATIONS:
        raise StoreError(
            f"{db.url}: the bpf tables have schema version {value!r}, which no bpf wrote "
            f"(known: 1 to {SCHEMA_VERSION}): is bpf_meta damaged?"
        )
    return stored


def open_schema(db: Database) -> None:
    """Create the tables on first use; check (and migrate) the stored schema version.

    A database written by a newer bpf, or carrying a version no bpf wrote, is refused with
    `bpf.StoreError`. A read-only database is only read: it must hold the tables at this
    version already.
    """
    with db.transaction() as conn:  # a read first: most opens find the schema as it should be
        stored = _stored_version(conn, db)
    if stored == SCHEMA_VERSION:
        return
    if db.read_only:
        if stored is None:
            raise StoreError(f"{db.url}: no bpf tables in this database, opened read-only")
        raise StoreError(
            f"{db.url}: the bpf tables have schema version {stored} and need migrating to "
            f"{SCHEMA_VERSION}, which writes: open the database once writable"
        )
    # SQLite's foreign keys off: a migration there rebuilds tables that others reference.
    with db.transaction(write=True, foreign_keys=False) as conn:
        if not db.sqlite:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
            if db.schema is not None:
                conn.execute(sa.schema.CreateSchema(db.schema, if_not_exists=True))
        stored = _stored_version(conn, db)  # again: another process may have done it
        if stored is None:
            metadata.create_all(conn, checkfirst=True)
            events.create(conn)  # its first rows
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        for version in range(stored, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
        if stored != SCHEMA_VERSION:
            if db.sqlite:
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise StoreError(f"{db.url}: the migration broke foreign keys: {broken[:5]}")
            conn.execute(
                meta.update().where(meta.c.key == "schema_version")
                .values(value=str(SCHEMA_VERSION))
            )


def schema_version(conn: Connection) -> int:
    """The schema version stored in the database."""
    return int(conn.scalar(_VERSION))


# -- version 1 to 2: records by (entity, id) ----------------------------------------------------


def _index(table: sa.Table, name: str) -> sa.Index:
    return next(i for i in table.indexes if i.name == name)


def _v1_to_v2(conn: Connection) -> None:
    """Records become (entity, record id); the definitions table is added.

    Version 1 kept one ``bpf_records`` row per record id, whatever its entity: a lead 42 and an
    opportunity 42 shared it. Each row's entity is worked out from the records the flows span
    (``bpf_flow_records`` always had the entity): the active flow's span of that id, the
    primary one first; the last change's flow's span of that id, the latest it came to span
    first (a flow moves on to its later entities). An entity of that id whose state the
    shared row had lost gets it back from the flows: its active flow is the last one started
    on it, its last change the latest history entry on that id by a flow spanning that id
    under no other entity.
    """
    sqlite = conn.dialect.name == "sqlite"
    # bpf_flows: the primary record's entity, and the unique key with it.
    primary = (
        sa.select(flow_records.c.entity)
        .where(flow_records.c.flow_id == flows.c.id, flow_records.c.position == 0)
        .scalar_subquery()
    )
    report = _index(flows, "ix_bpf_flows_report")
    if sqlite:
        # SQLite cannot change a table's constraints: build the table anew, copy, swap (with
        # foreign keys off: see open_schema).
        columns = [c.name for c in flows.columns if c.name != "entity"]
        rebuilt = flows.to_metadata(sa.MetaData(), name="bpf_flows_v2")
        rebuilt.indexes.clear()
        conn.execute(sa.schema.CreateTable(rebuilt))
        conn.execute(rebuilt.insert().from_select(
            [*columns, "entity"], sa.select(*(flows.c[c] for c in columns), primary)
        ))
        conn.execute(sa.text("DROP TABLE bpf_flows"))
        conn.execute(sa.text("ALTER TABLE bpf_flows_v2 RENAME TO bpf_flows"))
        report.create(conn)
    else:
        conn.execute(sa.text("ALTER TABLE bpf_flows ADD COLUMN entity VARCHAR"))
        conn.execute(flows.update().values(entity=primary))
        conn.execute(sa.text("ALTER TABLE bpf_flows ALTER COLUMN entity SET NOT NULL"))
        conn.execute(sa.text(
            "ALTER TABLE bpf_flows DROP CONSTRAINT uq_bpf_flows_process_record"))
        conn.execute(sa.text(
            "ALTER TABLE bpf_flows ADD CONSTRAINT uq_bpf_flows_process_record "
            "UNIQUE (process, entity, record_id)"))
    # bpf_flow_records: the index serves (record id, entity) now.
    by_record = _index(flow_records, "ix_bpf_flow_records_record")
    conn.execute(sa.schema.DropIndex(by_record))
    by_record.create(conn)
    # bpf_records: one row per (entity, record id).
    rows = _v2_records(conn)
    records.drop(conn)
    records.create(conn)
    for i in range(0, len(rows), 500):
        conn.execute(records.insert(), rows[i:i + 500])
    definitions.create(conn, checkfirst=True)


def _v2_records(conn: Connection) -> list[dict[str, Any]]:
    """The version-2 rows of bpf_records, from the version-1 rows and the flows' spans."""
    r, s = records.c, flow_records.c
    last_columns = [c.name for c in records.columns if c.name.startswith("last_")]
    v1 = conn.execute(
        sa.select(r.record_id, r.active_flow_id, *(r[c] for c in last_columns))
    ).mappings().all()
    # (flow, record id) -> its spans' entities, by position; record id -> every span.
    spans: dict[tuple[str, str], list[str]] = {}
    by_id: dict[str, list[Any]] = {}
    ids = {row["record_id"] for row in v1}
    query = sa.select(s.flow_id, s.entity, s.record_id, s.position, s.id).order_by(s.id)
    for span in conn.execute(query):
        if span.record_id in ids:
            spans.setdefault((span.flow_id, span.record_id), []).append(span)
            by_id.setdefault(span.record_id, []).append(span)
    out: dict[tuple[str, str], dict[str, Any]] = {}

    def row(entity: str, record_id: str) -> dict[str, Any]:
        key = (entity, record_id)
        if key not in out:
            out[key] = {"entity": entity, "record_id": record_id, "active_flow_id": None,
                        **dict.fromkeys(last_columns)}
        return out[key]

    def entity_of(flow_id: str, record_id: str, latest: bool) -> str | None:
        found = sorted(spans.get((flow_id, record_id), ()), key=lambda x: x.position)
        if found:
            return (found[-1] if latest else found[0]).entity
        any_span = by_id.get(record_id)
        return any_span[0].entity if any_span else None

    for v in v1:
        rid = v["record_id"]
        if v["active_flow_id"] is not None:
            entity = entity_of(v["active_flow_id"], rid, latest=False)
            if entity is not None:
                row(entity, rid)["active_flow_id"] = v["active_flow_id"]
        if v["last_flow_id"] is not None:
            entity = entity_of(v["last_flow_id"], rid, latest=True)
            if entity is not None:
                row(entity, rid).update({c: v[c] for c in last_columns})
    # Ids of several entities shared one v1 row: give the others back what the flows tell.
    for rid, found in by_id.items():
        entities = {x.entity for x in found}
        if len(entities) < 2:
            continue
        for entity in sorted(entities):
            state = row(entity, rid)
            if state["active_flow_id"] is None:
                started = conn.execute(
                    sa.select(flows.c.id)
                    .where(flows.c.entity == entity, flows.c.record_id == rid)
                    .order_by(flows.c.started_at.desc(), flows.c.id.desc()).limit(1)
                ).scalar()
                state["active_flow_id"] = started
            if state["last_flow_id"] is None:
                alone = [x.flow_id for x in found if x.entity == entity and all(
                    y.entity == entity for y in spans[(x.flow_id, rid)])]
                if not alone:
                    continue
                h = history.c
                entry = conn.execute(
                    sa.select(h.flow_id, h.process, h.version, h.kind, h.from_stage,
                              h.to_stage, h.phase, h.at, h.actor)
                    .where(h.record_id == rid, h.flow_id.in_(alone))
                    .order_by(h.at.desc(), h.id.desc()).limit(1)
                ).first()
                if entry is not None:
                    state.update({f"last_{k}": v for k, v in entry._mapping.items()})
    return [v for v in out.values() if v["active_flow_id"] or v["last_flow_id"]]


#: Forward migrations of the stored schema: ``MIGRATIONS[n](connection)`` upgrades a version-n
#: schema to version n + 1, inside the transaction that then records the new version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v1_to_v2, 2: events.create, 3: events.create_pending,
}
