"""The SQL store itself: schema and its version, configuration, the caller's own engine, and
errors that name the database (password hidden) and the cause, never leaking SQLAlchemy's."""

from __future__ import annotations

import sys

import pytest
import sqlalchemy as sa
from storekit import PROCESS, sales

import bpf
from bpf.store import sql
from bpf.store.memory import MemoryStore
from bpf.store.sql import SQLStore
from bpf.store.sql import schema as sql_schema

TABLES = {"bpf_meta", "bpf_flows", "bpf_flow_records", "bpf_history", "bpf_records",
          "bpf_definitions", "bpf_events", "bpf_event_counter", "bpf_event_horizons",
          "bpf_consumers", "bpf_consumer_locks"}


def tables(url: str, schema: str | None = None) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names(schema=schema))
    finally:
        engine.dispose()


def execute(url: str, statement: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(statement))
    engine.dispose()


# -- schema ------------------------------------------------------------------------------------


def test_the_schema_is_created_on_first_use_and_carries_its_version(persistent_url):
    store = SQLStore(persistent_url)

    assert tables(persistent_url) >= TABLES
    assert store.schema_version() == sql.SCHEMA_VERSION == 4
    store.close()
    assert SQLStore(persistent_url).schema_version() == 4  # opened again: left as it is


def test_a_sqlite_file_is_created_on_first_use(tmp_path):
    path = tmp_path / "new.db"

    bpf.Engine(f"sqlite:///{path}").close()

    assert path.is_file()


def test_a_schema_written_by_a_newer_bpf_is_refused(persistent_url):
    SQLStore(persistent_url).close()
    newer = sql.SCHEMA_VERSION + 1
    execute(persistent_url,
            f"UPDATE bpf_meta SET value = '{newer}' WHERE key = 'schema_version'")

    with pytest.raises(bpf.StoreError, match=f"schema version {newer}, written by a newer bpf"):
        SQLStore(persistent_url)


@pytest.mark.parametrize("stored", ["0", "-1", "abc"])
def test_a_schema_version_no_bpf_wrote_is_a_store_error_naming_it(persistent_url, stored):
    SQLStore(persistent_url).close()
    execute(persistent_url, f"UPDATE bpf_meta SET value = '{stored}' WHERE key = 'schema_version'")

    with pytest.raises(bpf.StoreError, match=f"schema version '{stored}', which no bpf wrote"):
        SQLStore(persistent_url)


def test_an_older_schema_is_migrated_forward_by_its_named_steps(persistent_url, monkeypatch):
    SQLStore(persistent_url).close()
    steps = []

    def add_notes(conn):
        steps.append(1)
        conn.execute(sa.text("ALTER TABLE bpf_flows ADD COLUMN notes VARCHAR"))

    current = sql.SCHEMA_VERSION
    monkeypatch.setattr(sql_schema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setattr(sql_schema, "MIGRATIONS", {**sql_schema.MIGRATIONS, current: add_notes})

    assert SQLStore(persistent_url).schema_version() == current + 1
    assert SQLStore(persistent_url).schema_version() == current + 1
    assert steps == [1]


def test_sqlite_is_durable_by_default_in_wal_mode(tmp_path):
    def pragmas(url):
        store = SQLStore(url)
        with store.engine.connect() as conn:
            found = [conn.exec_driver_sql(f"PRAGMA {p}").scalar()
                     for p in ("journal_mode", "synchronous", "busy_timeout")]
        store.close()
        return found

    assert pragmas(f"sqlite:///{tmp_path / 'a.db'}") == ["wal", 2, 30000]  # 2: FULL
    assert pragmas(f"sqlite:///{tmp_path / 'b.db'}?synchronous=normal")[1] == 1
    assert pragmas(f"sqlite:///{tmp_path / 'c.db'}?timeout=2")[2] == 2000


def test_an_in_memory_sqlite_database_is_one_database_for_the_engine():
    with bpf.Engine("sqlite://") as engine:
        engine.register(sales(1))
        engine.start(PROCESS, {"id": "opp-1"})
        assert engine.flow("opp-1", PROCESS).stage.id == "qualify"


# -- the caller's own SQLAlchemy engine ---------------------------------------------------------


def test_the_tables_can_live_in_the_applications_own_database(persistent_url):
    app = sa.create_engine(persistent_url)
    with app.begin() as conn:
        conn.execute(sa.text("CREATE TABLE opportunity (id VARCHAR PRIMARY KEY, stepname VARCHAR)"))
    engine = bpf.Engine(app)
    engine.register(sales(1))

    engine.start(PROCESS, {"id": "opp-1"})
    engine.close()

    with app.connect() as conn:  # closing bpf's engine leaves the application's engine alone
        assert conn.execute(sa.text("SELECT count(*) FROM bpf_flows")).scalar() == 1
        assert conn.execute(sa.text("SELECT count(*) FROM opportunity")).scalar() == 0
    app.dispose()


@pytest.mark.postgres
def test_the_tables_can_live_in_a_postgresql_schema_of_their_own(postgres_url):
    # Two schemas of this test's own: the connection's search path (the fixture's) and the
    # one given to the store. The server's `public` schema is nobody's to check: an earlier
    # run or another user may have left tables there.
    searched = sa.make_url(postgres_url).query["options"].split("=")[1]
    schema = f"{searched}_own"
    try:
        engine = bpf.Engine(SQLStore(postgres_url, schema=schema))
        engine.register(sales(1))
        engine.start(PROCESS, {"id": "opp-1"})
        engine.close()

        assert tables(postgres_url, schema=schema) >= TABLES
        assert not TABLES & tables(postgres_url, schema=searched)
    finally:
        execute(postgres_url, f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# -- errors ------------------------------------------------------------------------------------


def test_a_bad_url_is_a_store_error():
    with pytest.raises(bpf.StoreError, match="not a url: not a database URL"):
        bpf.Engine("not a url")


def test_an_unsupported_database_is_a_store_error_with_the_password_hidden():
    with pytest.raises(bpf.StoreError) as raised:
        bpf.Engine("mysql://admin:s3cret@db.example.com/crm")

    assert str(raised.value).startswith("mysql://admin:***@db.example.com/crm: bpf stores flows")
    assert "s3cret" not in str(raised.value)


@pytest.mark.parametrize("scheme", ["postgresql+psycopg", "postgresql"])
def test_an_unreachable_database_is_one_store_error_with_url_and_cause(scheme):
    with pytest.raises(bpf.StoreError) as raised:
        bpf.Engine(f"{scheme}://admin:s3cret@127.0.0.1:1/crm")

    message = str(raised.value)
    assert message.startswith(f"{scheme}://admin:***@127.0.0.1:1/crm: cannot open the store: ")
    assert "OperationalError" in message and "refused" in message
    assert "s3cret" not in message
    assert not isinstance(raised.value, sa.exc.SQLAlchemyError)


def test_a_missing_postgresql_driver_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if psycopg were not installed

    with pytest.raises(bpf.StoreError, match=r"pip install 'bpf\[postgres\]'"):
        bpf.Engine("postgresql+psycopg://admin@127.0.0.1:1/crm")


def test_a_missing_sqlite_directory_is_a_store_error(tmp_path):
    with pytest.raises(bpf.StoreError, match=r"missing does not exist"):
        bpf.Engine(f"sqlite:///{tmp_path / 'missing' / 'bpf.db'}")


def test_an_unwritable_sqlite_path_is_a_store_error_with_the_cause():
    with pytest.raises(bpf.StoreError, match=r"/proc/bpf\.db: .*unable to open database file"):
        bpf.Engine("sqlite:////proc/bpf.db")


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database, " * 100)

    with pytest.raises(bpf.StoreError, match="file is not a database"):
        bpf.Engine(f"sqlite:///{path}")


def test_an_unknown_synchronous_mode_is_a_store_error(tmp_path):
    with pytest.raises(bpf.StoreError, match="synchronous='sometimes'"):
        bpf.Engine(f"sqlite:///{tmp_path / 'bpf.db'}?synchronous=sometimes")


def test_a_failure_after_opening_is_a_store_error_too(open_db_engine):
    engine = open_db_engine()
    engine.start(PROCESS, {"id": "opp-1"})
    execute(open_db_engine.url, "DROP TABLE bpf_history")

    with pytest.raises(bpf.StoreError, match="cannot read history") as raised:
        engine.flow("opp-1", PROCESS).history  # noqa: B018
    assert raised.value.__cause__ is not None
    with pytest.raises(bpf.StoreError, match="cannot write"):
        engine.start(PROCESS, {"id": "opp-2"})
    assert engine.flows("opp-2", entity="opportunity") == []


def test_only_a_store_with_a_connection_per_thread_reads_from_several_threads(tmp_path):
    # The reports run their queries side by side on stores that allow it; an in-memory
    # SQLite database is one shared connection (or one database per thread) and must not.
    on_file = SQLStore(f"sqlite:///{tmp_path / 'reads.db'}")
    in_memory = SQLStore("sqlite://")
    per_thread = SQLStore(sa.create_engine("sqlite://", poolclass=sa.pool.SingletonThreadPool))
    try:
        assert on_file.concurrent_reads
        assert not in_memory.concurrent_reads
        assert not per_thread.concurrent_reads
        assert not MemoryStore().concurrent_reads
    finally:
        for store in (on_file, in_memory, per_thread):
            store.close()


def test_the_single_move_statements_stay_in_psycopgs_cache_of_parsed_queries():
    """psycopg parses a query again on every execution once it takes more than 50 parameters
    or 4,096 bytes: the single-move statement must stay within both (docs/performance.md)."""
    from psycopg import _queries
    from sqlalchemy.dialects import postgresql

    from bpf.store.sql.statements import Statements

    statements = Statements(postgresql.psycopg.dialect(), "a_schema_with_a_long_name")
    for name in ("single_move", "single_move_event", "single_move_event_notify"):
        sql = statements.sql[name]
        assert sql.count("%s") <= _queries.MAX_CACHED_STATEMENT_PARAMS, name
        assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH, name
