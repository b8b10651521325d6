"""Persisted moves: SQLite (durable default) and PostgreSQL (one connection, 4 processes),
and the bulk path (`engine.batch()`), each beside the raw DB-API floor measured in the same run.

    python benchmarks/bench_store.py [--flows 2000] [--rounds 3] [--pg URL] [--no-write]

A move here is a full bpf forward move persisted in its own transaction (UPDATE of the flow
with the optimistic version check, INSERT of the history row, UPSERT of the record's last
change). The raw floor does one UPDATE and one INSERT per transaction with the DB-API driver.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from _common import FOUR_STAGES, table, write_section

import bpf
from bpf.store.sql import SQLStore

PG = os.environ.get("BPF_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
YAML = FOUR_STAGES.format(name="store")


def engine_on(store: object) -> bpf.Engine:
    engine = bpf.Engine(store)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine.register(bpf.loads_process(YAML))
    return engine


def started(engine: bpf.Engine, n: int, prefix: str) -> list[bpf.Flow]:
    with engine.batch():
        return [engine.start("store", {"id": f"{prefix}-{i}", "budgetamount": 1})
                for i in range(n)]


def moves_per_second(engine: bpf.Engine, flows: list[bpf.Flow]) -> float:
    t0 = time.perf_counter()
    for flow in flows:
        flow.next()
        flow.next()
        flow.next()
    return 3 * len(flows) / (time.perf_counter() - t0)


def app_moves_per_second(engine: bpf.Engine, flows: list[bpf.Flow]) -> float:
    """Moves through the application's connection: each in a transaction the application
    begins and commits (`engine.transaction(conn)`), as many commits as standalone moves."""
    app = engine.store.engine
    t0 = time.perf_counter()
    try:
        with app.connect() as conn:
            for flow in flows:
                for _ in range(3):
                    with conn.begin(), engine.transaction(conn):
                        flow.next()
    except Exception as exc:  # reported, so the other figures still come out
        print(f"moves through the application's connection failed: {type(exc).__name__}: {exc}")
        return float("nan")
    return 3 * len(flows) / (time.perf_counter() - t0)


def batch_per_second(engine: bpf.Engine, n: int, prefix: str) -> float:
    records = [{"id": f"{prefix}-{i}", "budgetamount": 1} for i in range(n)]
    t0 = time.perf_counter()
    for chunk in range(0, n, 1000):
        with engine.batch():
            for record in records[chunk:chunk + 1000]:
                flow = engine.start("store", record)
                flow.next()
                flow.next()
                flow.next()
    return 4 * n / (time.perf_counter() - t0)  # a start and three moves per record


# -- raw floors ----------------------------------------------------------------------------------


def raw_sqlite(path: Path, n: int, synchronous: str = "FULL") -> float:
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute(f"PRAGMA synchronous={synchronous}")
    con.execute("CREATE TABLE f (id TEXT PRIMARY KEY, stage TEXT, revision INT)")
    con.execute("CREATE TABLE h (id INTEGER PRIMARY KEY, flow TEXT, stage TEXT, at REAL)")
    con.executemany("INSERT INTO f VALUES (?, 'a', 1)", [(str(i),) for i in range(n)])
    t0 = time.perf_counter()
    for i in range(n):
        for _ in range(3):
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE f SET stage='b', revision=revision+1 WHERE id=?", (str(i),))
            con.execute("INSERT INTO h (flow, stage, at) VALUES (?, 'b', ?)", (str(i), time.time()))
            con.execute("COMMIT")
    rate = 3 * n / (time.perf_counter() - t0)
    con.close()
    return rate


def raw_sqlite_batched(path: Path, n: int) -> float:
    """The bulk floor: UPDATE + INSERT pairs with executemany, 1,000 moves per transaction."""
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("CREATE TABLE f (id TEXT PRIMARY KEY, stage TEXT, revision INT)")
    con.execute("CREATE TABLE h (id INTEGER PRIMARY KEY, flow TEXT, stage TEXT, at REAL)")
    con.executemany("INSERT INTO f VALUES (?, 'a', 1)", [(str(i),) for i in range(n)])
    t0 = time.perf_counter()
    for base in range(0, n, 1000):
        ids = [(str(i),) for i in range(base, min(n, base + 1000))]
        con.execute("BEGIN IMMEDIATE")
        con.executemany("UPDATE f SET stage='b', revision=revision+1 WHERE id=?", ids)
        con.executemany("INSERT INTO h (flow, stage, at) VALUES (?, 'b', ?)",
                        [(i, time.time()) for (i,) in ids])
        con.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    con.close()
    return rate


def _dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def in_schema(url: str, schema: str) -> str:
    """``url`` with ``schema`` its search path: the raw floor's tables go to the run's own
    schema, never to one others use (``public``)."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


# -- bpf's own tables, written by the bare driver -----------------------------------------------


def _sqlite_statements() -> dict[str, str]:
    from sqlalchemy.dialects import sqlite

    from bpf.store.sql.statements import Statements

    return Statements(sqlite.dialect(), None).sql


def _at(i: int) -> str:
    return f"2026-11-26 10:{i // 60_000_000 % 60:02d}:{i // 1_000_000 % 60:02d}.{i % 1_000_000:06d}"


def _schema_connection(path: Path) -> sqlite3.Connection:
    engine_on(f"sqlite:///{path}").close()  # bpf creates its tables
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute("PRAGMA foreign_keys=ON")
    return con


_STAGES = ("qualify", "develop", "propose", "close")


def _flow_row(i: int, moves: int) -> tuple:
    at = _at(i * 10 + moves)
    traversed = "[" + ", ".join(f'"{s}"' for s in _STAGES[:moves + 1]) + "]"
    return (f"f{i}", "store", 1, f"r{i}", _STAGES[moves], at, traversed, "active", _at(i * 10),
            None, None, 1 + moves, at, traversed, traversed, "opportunity")


def _history_row(i: int, k: int) -> tuple:
    return (f"f{i}", "store", 1, f"r{i}", "start" if k == 0 else "next",
            None if k == 0 else _STAGES[k - 1], _STAGES[k], "develop", _at(i * 10 + k), "maria",
            None if k == 0 else 1.5 + i % 97, 1, int(k > 0))


def _last_row(i: int, k: int) -> tuple:
    return ("opportunity", f"r{i}", f"f{i}", "store", 1, "next", _STAGES[k - 1], _STAGES[k],
            "develop", _at(i * 10 + k), "maria")


def schema_floor_moves(path: Path, n: int) -> float:
    """bpf's tables, indexes and statements for a move (BEGIN IMMEDIATE, UPDATE of the flow at
    its revision, INSERT of the history row, UPSERT of the record's last change, COMMIT), run
    by bare sqlite3 with every row built beforehand: what SQLite alone costs a bpf move."""
    sql = _sqlite_statements()
    con = _schema_connection(path)
    con.execute("BEGIN IMMEDIATE")
    con.executemany(sql["insert_flow"], [_flow_row(i, 0) for i in range(n)])
    con.executemany(sql["insert_flow_record"], [(f"f{i}", "opportunity", f"r{i}", 0)
                                                 for i in range(n)])
    con.executemany(sql["insert_history"], [_history_row(i, 0) for i in range(n)])
    con.execute("COMMIT")
    moves = []
    for i in range(n):
        for k in (1, 2, 3):
            flow = _flow_row(i, k)
            moves.append(((*flow[4:8], *flow[9:15], f"f{i}", k), _history_row(i, k),
                          _last_row(i, k)))
    t0 = time.perf_counter()
    for update, entry, last in moves:
        con.execute("BEGIN IMMEDIATE")
        con.execute(sql["update_flow"], (1, *update))
        con.execute(sql["insert_history"], entry)
        con.execute(sql["upsert_last"], last)
        con.execute("COMMIT")
    rate = len(moves) / (time.perf_counter() - t0)
    con.close()
    return rate


def schema_floor_bulk(path: Path, n: int) -> float:
    """What bpf writes for a batch of 1,000 records started and moved three times (each flow's
    row once, its record span, four history rows, the record's active flow and last change),
    by bare sqlite3 executemany with every row built beforehand; operations/s as the bulk row
    counts them."""
    sql = _sqlite_statements()
    con = _schema_connection(path)
    chunks = []
    for base in range(0, n, 1000):
        ids = range(base, min(n, base + 1000))
        chunks.append((
            [_flow_row(i, 3) for i in ids],
            [(f"f{i}", "opportunity", f"r{i}", 0) for i in ids],
            [_history_row(i, k) for i in ids for k in range(4)],
            [("opportunity", f"r{i}", f"f{i}") for i in ids],
            [_last_row(i, 3) for i in ids],
        ))
    t0 = time.perf_counter()
    for flows, spans, entries, active, last in chunks:
        con.execute("BEGIN IMMEDIATE")
        con.executemany(sql["insert_flow"], flows)
        con.executemany(sql["insert_flow_record"], spans)
        con.executemany(sql["insert_history"], entries)
        con.executemany(sql["upsert_active"], active)
        con.executemany(sql["upsert_last"], last)
        con.execute("COMMIT")
    rate = 4 * n / (time.perf_counter() - t0)
    con.close()
    return rate


# -- PostgreSQL floors ---------------------------------------------------------------------------


def raw_postgres_tables(url: str, n: int) -> None:
    import psycopg

    with psycopg.connect(_dsn(url), autocommit=False) as con:
        con.execute("DROP TABLE IF EXISTS bench_raw_f, bench_raw_h")
        con.execute("CREATE TABLE bench_raw_f (id TEXT PRIMARY KEY, stage TEXT, revision INT)")
        con.execute("CREATE TABLE bench_raw_h (id SERIAL PRIMARY KEY, flow TEXT, stage TEXT, "
                    "at TIMESTAMPTZ)")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO bench_raw_f VALUES (%s, 'a', 1)",
                            [(str(i),) for i in range(n)])
        con.commit()


def raw_postgres_drop(url: str) -> None:
    import psycopg

    with psycopg.connect(_dsn(url), autocommit=True) as con:
        con.execute("DROP TABLE IF EXISTS bench_raw_f, bench_raw_h")


def raw_postgres_moves(url: str, ids: range) -> float:
    """The floor: one UPDATE + one INSERT per transaction, three per row of ``ids``."""
    import psycopg

    with psycopg.connect(_dsn(url), autocommit=False) as con:
        t0 = time.perf_counter()
        for i in ids:
            for _ in range(3):
                con.execute("UPDATE bench_raw_f SET stage='b', revision=revision+1 WHERE id=%s",
                            (str(i),))
                con.execute("INSERT INTO bench_raw_h (flow, stage, at) VALUES (%s, 'b', now())",
                            (str(i),))
                con.commit()
        return 3 * len(ids) / (time.perf_counter() - t0)


def raw_postgres(url: str, n: int) -> float:
    raw_postgres_tables(url, n)
    try:
        return raw_postgres_moves(url, range(n))
    finally:
        raw_postgres_drop(url)


# -- PostgreSQL in several processes -------------------------------------------------------------


def _pg_worker(url: str, schema: str, n: int, worker: int, ready, go, out) -> None:
    engine = engine_on(SQLStore(url, schema=schema))
    flows = started(engine, n, f"w{worker}")
    ready.wait()
    go.wait()
    out.put(moves_per_second(engine, flows))
    engine.close()


def _raw_pg_worker(url: str, n: int, worker: int, ready, go, out) -> None:
    ready.wait()
    go.wait()
    out.put(raw_postgres_moves(url, range(worker * n, (worker + 1) * n)))


def raw_pg_processes(url: str, n: int, processes: int) -> float:
    """The floor in ``processes`` processes at once, each on its own rows (aggregate/s)."""
    raw_postgres_tables(url, n * processes)
    try:
        return _processes(_raw_pg_worker, (url, n), n, processes)
    finally:
        raw_postgres_drop(url)


def pg_processes(url: str, schema: str, n: int, processes: int) -> float:
    return _processes(_pg_worker, (url, schema, n), n, processes)


def _processes(target, args: tuple, n: int, processes: int) -> float:
    """Aggregate moves/s of ``processes`` workers started together, 3 moves per flow each."""
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Barrier(processes + 1), ctx.Barrier(processes + 1), ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args, w, ready, go, out))
               for w in range(processes)]
    for w in workers:
        w.start()
    ready.wait()
    t0 = time.perf_counter()
    go.wait()
    rates = [out.get() for _ in workers]
    wall = time.perf_counter() - t0
    for w in workers:
        w.join()
    del rates
    return 3 * n * processes / wall


def pg_schema(url: str) -> str:
    import sqlalchemy as sa

    schema = f"bpf_bench_{os.getpid()}"
    server = sa.create_engine(url)
    with server.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    server.dispose()
    return schema


def drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    server = sa.create_engine(url)
    with server.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    server.dispose()


def measure_sqlite(n: int) -> dict[str, float]:
    """One round of the SQLite figures, each database fresh."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        out = {
            "floor_full": raw_sqlite(tmp / "raw-full.db", n),
            "floor_batched": raw_sqlite_batched(tmp / "raw-batched.db", 20 * n),
            "schema_moves": schema_floor_moves(tmp / "schema-moves.db", n),
            "schema_bulk": schema_floor_bulk(tmp / "schema-bulk.db", 20 * n),
        }
        engine = engine_on(f"sqlite:///{tmp / 'full.db'}")
        out["full"] = moves_per_second(engine, started(engine, n, "s"))
        out["app"] = app_moves_per_second(engine, started(engine, n, "a"))
        out["bulk"] = batch_per_second(engine, 20 * n, "b")
        engine.close()
        out["floor_normal"] = raw_sqlite(tmp / "raw-normal.db", n, "NORMAL")
        engine = engine_on(f"sqlite:///{tmp / 'normal.db'}?synchronous=normal")
        out["normal"] = moves_per_second(engine, started(engine, n, "s"))
        engine.close()
    return out


def measure_postgres(url: str, n: int) -> dict[str, float]:
    """One round of the PostgreSQL figures, in a fresh schema."""
    schema = pg_schema(url)
    try:
        raw = in_schema(url, schema)
        out = {"floor_pg": raw_postgres(raw, n), "floor_pg4": raw_pg_processes(raw, n, 4)}
        engine = engine_on(SQLStore(url, schema=schema))
        out["one"] = moves_per_second(engine, started(engine, n, "p"))
        out["pg_app"] = app_moves_per_second(engine, started(engine, n, "pa"))
        out["pg_bulk"] = batch_per_second(engine, 5 * n, "pb")
        engine.close()
        out["four"] = pg_processes(url, schema, n, 4)
    finally:
        drop_schema(url, schema)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n = args.flows
    try:
        drop_schema(args.pg, "bpf_bench_probe")
        postgres = True
    except Exception as exc:  # the server may be absent on a user's machine
        print(f"PostgreSQL skipped: {exc}")
        postgres = False
    # Rounds alternate bpf and its floors, so a slow spell of the VM hits both; each figure
    # is the median of the rounds, and each ratio the median of the rounds' ratios.
    rounds = []
    for r in range(args.rounds):
        figures = measure_sqlite(n)
        if postgres:
            figures |= measure_postgres(args.pg, n)
        rounds.append(figures)
        print(f"round {r + 1}: " + ", ".join(f"{k} {v:,.0f}" for k, v in figures.items()))

    def m(key: str) -> str:
        values = sorted(f[key] for f in rounds)
        text = f"{statistics.median(values):,.0f}"
        return text if len(values) == 1 else f"{text} ({values[0]:,.0f}–{values[-1]:,.0f})"

    def ratio(a: str, b: str) -> str:
        return f"{statistics.median(f[a] / f[b] for f in rounds):.2f}"

    rows = [
        ["SQLite, WAL, synchronous=FULL (the durable default), 1 move per transaction",
         m("full"), m("floor_full"), ratio("full", "floor_full"), m("schema_moves"),
         ratio("full", "schema_moves"), "≥ 5,000"],
        ["SQLite, WAL, synchronous=FULL, 1 move per application transaction "
         "(`engine.transaction(conn)`)", m("app"), m("floor_full"), ratio("app", "floor_full"),
         "—", f"{ratio('app', 'full')}× a standalone move", "≥ 1.00× a standalone move"],
        ["SQLite, WAL, synchronous=NORMAL, 1 move per transaction", m("normal"),
         m("floor_normal"), ratio("normal", "floor_normal"), "—", "—", "—"],
        ["SQLite bulk path: `engine.batch()` of 1,000 records (start + 3 moves each)",
         m("bulk"), m("floor_batched") + " (batched 1,000)", ratio("bulk", "floor_batched"),
         m("schema_bulk"), ratio("bulk", "schema_bulk"), "≥ 100,000"],
    ]
    if postgres:
        rows += [
            ["PostgreSQL, one connection, 1 move per transaction", m("one"), m("floor_pg"),
             ratio("one", "floor_pg"), "—", "—", "≥ 1,500"],
            ["PostgreSQL, one connection, 1 move per application transaction", m("pg_app"),
             m("floor_pg"), ratio("pg_app", "floor_pg"), "—",
             f"{ratio('pg_app', 'one')}× a standalone move", "≥ 1.00× a standalone move"],
            ["PostgreSQL, 4 processes, 1 move per transaction (aggregate)", m("four"),
             m("floor_pg4") + f" (4 processes: {ratio('floor_pg4', 'floor_pg')}× its one "
             "connection)", ratio("four", "floor_pg4"), "—", "—",
             f"near-linear: bpf {ratio('four', 'one')}× its one connection"],
            ["PostgreSQL bulk path: `engine.batch()` of 1,000 records", m("pg_bulk"),
             m("floor_pg"), ratio("pg_bulk", "floor_pg"), "—", "—", "—"],
        ]
    body = table(rows, ["persisted", "operations/s", "raw DB-API floor (moves/s)",
                        "ratio to floor", "bpf's tables, bare driver", "ratio", "target"])
    body += (f"\n\nMedian (and range) of {args.rounds} rounds, each with fresh databases; "
             f"{n:,} flows × 3 forward moves per measurement; the bulk rows count a start and "
             "each move as one operation. The raw floor is one UPDATE + one INSERT per "
             "transaction with the bare driver (sqlite3 / psycopg), same durability settings; "
             "for the SQLite bulk row, the same pairs with executemany, 1,000 per transaction; for "
             "4 PostgreSQL processes, the floor in 4 processes at once. The machine has "
             f"{os.cpu_count()} cores, shared by the clients and the server. \"bpf's tables, bare "
             "driver\" runs the statements bpf runs, on bpf's own tables and indexes, with "
             "bare sqlite3 and every row built beforehand: what SQLite alone costs for what bpf "
             "writes, without the engine or any row building.\n")
    print(body)
    if not args.no_write:
        write_section("store", "Persisted moves", body,
                      f"python benchmarks/bench_store.py --flows {n} --rounds {args.rounds}")


if __name__ == "__main__":
    main()
