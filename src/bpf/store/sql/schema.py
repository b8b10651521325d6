"""The stored schema: created on first use, its version checked, older versions migrated
forward by small named steps."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bpf._errors import StoreError
from bpf.store.sql.connection import Database
from bpf.store.sql.tables import meta, metadata

#: The schema version this code writes. Stored in ``bpf_meta``; see `MIGRATIONS`.
SCHEMA_VERSION = 1

#: Forward migrations of the stored schema: ``MIGRATIONS[n](connection)`` upgrades a version-n
#: schema to version n + 1, inside the transaction that then records the new version.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {}

_PG_LOCK_KEY = 0x62706673  # "bpfs": serializes schema creation on PostgreSQL
_VERSION = sa.select(meta.c.value).where(meta.c.key == "schema_version")


def open_schema(db: Database) -> None:
    """Create the tables on first use; check (and migrate) the stored schema version.

    A database written by a newer bpf is refused with `bpf.StoreError`.
    """
    with db.transaction(write=True) as conn:
        if not db.sqlite:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
            if db.schema is not None:
                conn.execute(sa.schema.CreateSchema(db.schema, if_not_exists=True))
        stored = None
        if conn.dialect.has_table(conn, meta.name, schema=db.schema):
            value = conn.scalar(_VERSION)
            stored = int(value) if value is not None else None
        if stored is not None and stored > SCHEMA_VERSION:
            raise StoreError(
                f"{db.url}: the bpf tables have schema version {stored}, written by a newer "
                f"bpf; this bpf knows versions up to {SCHEMA_VERSION}: upgrade bpf"
            )
        if stored is None:
            metadata.create_all(conn, checkfirst=True)
            conn.execute(meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION)))
            return
        for version in range(stored, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
        if stored != SCHEMA_VERSION:
            conn.execute(
                meta.update().where(meta.c.key == "schema_version")
                .values(value=str(SCHEMA_VERSION))
            )


def schema_version(conn: Connection) -> int:
    """The schema version stored in the database."""
    return int(conn.scalar(_VERSION))
