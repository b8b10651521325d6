"""`SQLStore`: opens the database, reads rows, and hands writes to its `Writer` and report
questions to `bpf.store.sql.reports`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bpf._errors import RegistrationError, StoreError
from bpf._history import StageChange
from bpf.store.base import Claim, Event, FlowRow, Op, StageTime, Store, definition_clash
from bpf.store.sql import reports
from bpf.store.sql.connection import Database, engine_from_url, retry_dropped
from bpf.store.sql.outbox import Outbox
from bpf.store.sql.rows import FlowState, flow_rows, last_change
from bpf.store.sql.schema import open_schema
from bpf.store.sql.schema import schema_version as stored_version
from bpf.store.sql.statements import (
    ACTIVE_FLOW,
    GET_FLOW,
    HISTORY,
    ID_FLOWS,
    LAST_CHANGE,
    RECORD_FLOWS,
    flow_page,
)
from bpf.store.sql.tables import definitions, flows
from bpf.store.sql.writer import Writer

_PAGE = 500  # flows per page when streaming


class _InSchema:
    """The application's connection running bpf's reads in the store's schema, per statement
    (its own statements keep their schemas)."""

    def __init__(self, connection: Connection, db: Any) -> None:
        self._connection = connection
        self._options = {"schema_translate_map": {None: db.schema}}

    def execute(self, statement: Any, params: Any = None) -> Any:
        return self._connection.execute(statement, params, execution_options=self._options)

    def scalar(self, statement: Any, params: Any = None) -> Any:
        return self._connection.scalar(statement, params, execution_options=self._options)


class SQLStore(Store):
    """Flows in SQLite or PostgreSQL, through SQLAlchemy Core.

    ``target`` is a database URL (``"sqlite:///bpf.db"``, ``"postgresql+psycopg://user@host/db"``;
    a plain ``postgresql://`` URL uses psycopg 3 unless psycopg2 is installed) or a SQLAlchemy
    `Engine` of the caller's own, so bpf's tables live in the application's database.

    ``schema`` puts the tables in that PostgreSQL schema. ``synchronous`` is SQLite's
    ``PRAGMA synchronous`` for a URL-opened file: ``"full"`` (the default) makes every
    committed move survive a power cut; ``"normal"`` is faster in WAL mode and still survives
    a crash of the process, but may lose the last commits on a power cut. The URL may carry it
    as ``?synchronous=normal``. ``busy_timeout`` is how long (seconds) a SQLite writer waits
    for another process's transaction instead of failing.

    The tables are created on first use and the schema version is checked: a database written
    by a newer bpf is refused with `bpf.StoreError`. Every SQLAlchemy or driver error comes out
    as `bpf.StoreError`, naming the URL with its password hidden.
    """

    def __init__(
        self,
        target: str | sa.Engine,
        *,
        schema: str | None = None,
        synchronous: str | None = None,
        busy_timeout: float = 30.0,
        _open: bool = True,
    ) -> None:
        if isinstance(target, sa.Engine):
            engine, own = target, False
            self.url = target.url.render_as_string(hide_password=True)
        elif isinstance(target, str):
            engine, self.url = engine_from_url(target, synchronous, busy_timeout)
            own = True
        else:
            raise StoreError(
                f"SQLStore takes a database URL or a SQLAlchemy Engine, got {type(target).__name__}"
            )
        try:
            self._db = Database(engine, self.url, schema=schema, own=own)
        except BaseException:
            if own:
                engine.dispose()
            raise
        #: "sqlite" or "postgresql"
        self.dialect = self._db.dialect
        self.concurrent_reads = self._db.concurrent_reads
        #: True for a SQLite file opened read-only (``?mode=ro&uri=true``, ``immutable=1``):
        #: the store reads and never writes, not even to open (writes raise `bpf.StoreError`).
        self.read_only = self._db.read_only
        self._outbox = Outbox(self._db)
        notifier = self._outbox.notifier
        self._writer = Writer(self._db, None if notifier is None else notifier.committed)
        if _open:  # the asyncio store opens it later, awaited (`bpf.store.sql.aio`)
            self.open()

    def open(self) -> None:
        """Create the tables, or check the stored schema version."""
        try:
            with self._db.errors("cannot open the store"):
                open_schema(self._db)
        except BaseException:
            self.close()
            raise

    @property
    def engine(self) -> sa.Engine:
        """The SQLAlchemy Engine the store runs on (the caller's own, or the one made from the
        URL): for the application's own queries of bpf's tables."""
        return self._db.engine

    @retry_dropped
    def schema_version(self) -> int:
        """The schema version stored in the database."""
        with self._db.reading("cannot read the schema version") as conn:
            return stored_version(conn)

    def close(self) -> None:
        """Release connections (a caller's own Engine is left to the caller)."""
        self._writer.close()
        self._outbox.close()
        self._db.dispose()

    def __repr__(self) -> str:
        return f"<SQLStore {self.url}>"

    # -- writing ---------------------------------------------------------------------------------

    def write(self, ops: Sequence[Op], connection: Connection | None = None) -> None:
        """See `bpf.store.Store.write`. With ``connection``, through the application's
        transaction, in a SAVEPOINT (see `bpf.store.sql.writer.Writer.write_through`)."""
        if self.read_only:
            raise StoreError(
                f"{self.url}: cannot write: the store was opened read-only "
                "(mode=ro or immutable=1 in the URL)"
            )
        if connection is None:
            self._writer.write(ops)
        else:
            self._writer.write_through(ops, connection)

    # -- reading ---------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self, doing: str, connection: Connection | None) -> Iterator[Any]:
        """A read transaction of the store's own, or the application's ``connection`` inside
        its transaction (its statements in the store's schema, if it has one)."""
        if connection is None:
            with self._db.reading(doing) as conn:
                yield conn
            return
        with self._db.errors(doing):
            yield connection if self._db.schema is None else _InSchema(connection, self._db)

    def _rows(self, doing: str, statement: Any, params: Mapping[str, Any],
              connection: Connection | None = None) -> list[FlowRow]:
        """The flows ``statement`` reads; their states go to the writer (see `Writer.remember`):
        read through the application's transaction, for its writes through it until it ends
        (they may show its own changes, which may yet roll back)."""
        states: dict[str, FlowState] = {}
        with self._reading(doing, connection) as conn:
            found = flow_rows(conn.execute(statement, params), states)
        if connection is None:
            self._writer.remember(states)
        else:
            self._writer.remember_through(connection, states)
        return found

    @retry_dropped
    def record_flows(self, record_id: str, entity: str | None = None, *,
                     connection: Connection | None = None) -> list[FlowRow]:
        if entity is not None:
            return self._rows("cannot read flows", RECORD_FLOWS,
                              {"record_id": record_id, "entity": entity}, connection)
        found = self._rows("cannot read flows", ID_FLOWS, {"record_id": record_id}, connection)
        # A flow spanning two records of that id (a lead 42 and its opportunity 42) comes
        # once per span: keep its first, in start order.
        seen: set[str] = set()
        return [r for r in found if not (r.id in seen or seen.add(r.id))]

    @retry_dropped
    def get_flow(self, flow_id: str, *, connection: Connection | None = None
                 ) -> FlowRow | None:
        found = self._rows("cannot read a flow", GET_FLOW, {"flow_id": flow_id}, connection)
        return found[0] if found else None

    @retry_dropped
    def history(self, flow_id: str, *, connection: Connection | None = None
                ) -> list[StageChange]:
        with self._reading("cannot read history", connection) as conn:
            return [StageChange(*r) for r in conn.execute(HISTORY, {"flow_id": flow_id})]

    @retry_dropped
    def active_flow_id(self, record_id: str, entity: str, *,
                       connection: Connection | None = None) -> str | None:
        with self._reading("cannot read a record", connection) as conn:
            return conn.scalar(ACTIVE_FLOW, {"record_id": record_id, "entity": entity})

    @retry_dropped
    def last_change(self, record_id: str, entity: str, *,
                    connection: Connection | None = None) -> StageChange | None:
        with self._reading("cannot read a record", connection) as conn:
            r = conn.execute(LAST_CHANGE, {"record_id": record_id, "entity": entity}).first()
        return None if r is None else last_change(record_id, r)

    def iter_flows(
        self, process: str | None = None, *, version: int | None = None,
        status: str | None = None,
    ) -> Iterator[FlowRow]:
        conditions = []
        if process is not None:
            conditions.append(flows.c.process == process)
        if version is not None:
            conditions.append(flows.c.version == version)
        if status is not None:
            conditions.append(flows.c.status == status)
        return self._pages(conditions)

    def _pages(self, conditions: list[Any]) -> Iterator[FlowRow]:
        """Flows matching ``conditions``, a page per short transaction (keyset on the id), so a
        slow consumer holds no connection and never has every flow in memory."""
        after = ""
        while True:
            rows = self._rows("cannot read flows", flow_page(conditions, after, _PAGE), {})
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1].id

    # -- definitions ------------------------------------------------------------------------------

    def save_definition(self, process: str, version: int, text: str, fingerprint: str) -> None:
        """See `bpf.store.Store.save_definition`. A read-only store writes nothing: a
        definition it holds is checked, one it lacks is left unsaved (the engine reading it
        has the definition anyway)."""
        d = definitions.c
        key = (d.process == process, d.version == version)
        with self._db.errors("cannot save a definition"):
            with self._db.transaction(write=not self.read_only) as conn:
                stored = conn.scalar(sa.select(d.fingerprint).where(*key))
                if stored is None and not self.read_only:
                    conn.execute(definitions.insert().values(
                        process=process, version=version, text=text, fingerprint=fingerprint))
            if stored is not None and stored != fingerprint:
                raise RegistrationError(definition_clash(process, version, stored, fingerprint))

    @retry_dropped
    def definition_text(self, process: str, version: int) -> str | None:
        d = definitions.c
        with self._db.reading("cannot read a definition") as conn:
            return conn.scalar(
                sa.select(d.text).where(d.process == process, d.version == version))

    @retry_dropped
    def definitions(self) -> list[tuple[str, int, str]]:
        d = definitions.c
        with self._db.reading("cannot read the definitions") as conn:
            found = conn.execute(sa.select(d.process, d.version, d.fingerprint)
                                 .order_by(d.process, d.version))
            return [(p, v, f) for p, v, f in found]

    # -- the outbox (see bpf.store.sql.outbox) ---------------------------------------------------

    @retry_dropped
    def read_events(
        self, after: int | None = None, limit: int = 100, process: str | None = None
    ) -> list[Event]:
        return self._outbox.read(after, limit, process)

    def claim_events(
        self, consumer: str, worker: str, *, limit: int = 100, lease: float = 30.0,
        partition: int | None = None,
    ) -> Claim | None:
        return self._outbox.claim(consumer, worker, limit, lease, partition)

    def ack_events(
        self, consumer: str, worker: str, partition: int, position: int, *,
        release: bool = False,
    ) -> bool:
        return self._outbox.ack(consumer, worker, partition, position, release)

    def release_events(self, consumer: str, worker: str) -> None:
        self._outbox.release(consumer, worker)

    def prune_events(self, before: datetime) -> int:
        return self._outbox.prune(before)

    def wait_events(self, timeout: float) -> bool:
        return self._outbox.wait(timeout)

    # -- reports: queries (see bpf.store.sql.reports) -------------------------------------------

    def stage_counts(
        self, process: str, *, status: str | None = "active"
    ) -> dict[tuple[int, str], int]:
        return reports.stage_counts(self._db, process, status)

    def status_counts(self, process: str) -> dict[str, int]:
        return reports.status_counts(self._db, process)

    def reached_counts(self, process: str) -> dict[str, int]:
        return reports.reached_counts(self._db, process)

    def advanced_counts(self, process: str) -> dict[str, int]:
        return reports.advanced_counts(self._db, process)

    def stale_counts(
        self, process: str, cutoffs: Mapping[tuple[int, str], datetime]
    ) -> dict[tuple[int, str], int]:
        return reports.stale_counts(self._db, process, cutoffs)

    def stale(
        self, process: str, cutoffs: Mapping[tuple[int, str], datetime]
    ) -> Iterator[FlowRow]:
        for key, cutoff in cutoffs.items():
            yield from self._pages(reports.stale_conditions(process, key, cutoff))

    def time_in_stage(self, process: str) -> dict[str, StageTime]:
        return reports.time_in_stage(self._db, process)
