"""Persisted moves: SQLite (durable default) and PostgreSQL (one connection, 4 processes),
and the bulk path (`engine.batch()`), each beside the raw DB-API floor measured in the same run.

    python benchmarks/bench_store.py [--flows 2000] [--pg URL] [--no-write]

A move here is a full bpf forward move persisted in its own transaction (UPDATE of the flow
with the optimistic version check, INSERT of the history row, UPSERT of the record's last
change). The raw floor does one UPDATE and one INSERT per transaction with the DB-API driver.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sqlite3
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


def raw_postgres(url: str, n: int) -> float:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=False) as con:
        con.execute("DROP TABLE IF EXISTS bench_raw_f, bench_raw_h")
        con.execute("CREATE TABLE bench_raw_f (id TEXT PRIMARY KEY, stage TEXT, revision INT)")
        con.execute("CREATE TABLE bench_raw_h (id SERIAL PRIMARY KEY, flow TEXT, stage TEXT, "
                    "at TIMESTAMPTZ)")
        with con.cursor() as cur:
            cur.executemany("INSERT INTO bench_raw_f VALUES (%s, 'a', 1)",
                            [(str(i),) for i in range(n)])
        con.commit()
        t0 = time.perf_counter()
        for i in range(n):
            for _ in range(3):
                con.execute("UPDATE bench_raw_f SET stage='b', revision=revision+1 WHERE id=%s",
                            (str(i),))
                con.execute("INSERT INTO bench_raw_h (flow, stage, at) VALUES (%s, 'b', now())",
                            (str(i),))
                con.commit()
        rate = 3 * n / (time.perf_counter() - t0)
        con.execute("DROP TABLE bench_raw_f, bench_raw_h")
        con.commit()
    return rate


# -- PostgreSQL in several processes -------------------------------------------------------------


def _pg_worker(url: str, schema: str, n: int, worker: int, ready, go, out) -> None:
    engine = engine_on(SQLStore(url, schema=schema))
    flows = started(engine, n, f"w{worker}")
    ready.wait()
    go.wait()
    out.put(moves_per_second(engine, flows))
    engine.close()


def pg_processes(url: str, schema: str, n: int, processes: int) -> float:
    ctx = mp.get_context("spawn")
    ready, go, out = ctx.Barrier(processes + 1), ctx.Barrier(processes + 1), ctx.Queue()
    workers = [ctx.Process(target=_pg_worker, args=(url, schema, n, w, ready, go, out))
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=2000)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n = args.flows
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        floor_full = raw_sqlite(tmp / "raw-full.db", n)
        floor_batched = raw_sqlite_batched(tmp / "raw-batched.db", 20 * n)
        engine = engine_on(f"sqlite:///{tmp / 'full.db'}")
        full = moves_per_second(engine, started(engine, n, "s"))
        bulk = batch_per_second(engine, 20 * n, "b")
        engine.close()
        floor_normal = raw_sqlite(tmp / "raw-normal.db", n, "NORMAL")
        engine = engine_on(f"sqlite:///{tmp / 'normal.db'}?synchronous=normal")
        normal = moves_per_second(engine, started(engine, n, "s"))
        engine.close()
    rows += [
        ["SQLite, WAL, synchronous=FULL (the durable default), 1 move per transaction",
         f"{full:,.0f}", f"{floor_full:,.0f}", f"{full / floor_full:.2f}", "≥ 5,000"],
        ["SQLite, WAL, synchronous=NORMAL, 1 move per transaction", f"{normal:,.0f}",
         f"{floor_normal:,.0f}", f"{normal / floor_normal:.2f}", "—"],
        ["SQLite bulk path: `engine.batch()` of 1,000 records (start + 3 moves each)",
         f"{bulk:,.0f}", f"{floor_batched:,.0f} (batched 1,000)", f"{bulk / floor_batched:.2f}",
         "≥ 100,000"],
    ]
    try:
        schema = pg_schema(args.pg)
    except Exception as exc:  # the server may be absent on a user's machine
        print(f"PostgreSQL skipped: {exc}")
        schema = None
    if schema is not None:
        try:
            floor_pg = raw_postgres(args.pg, n)
            engine = engine_on(SQLStore(args.pg, schema=schema))
            one = moves_per_second(engine, started(engine, n, "p"))
            pg_bulk = batch_per_second(engine, 5 * n, "pb")
            engine.close()
            four = pg_processes(args.pg, schema, n, 4)
        finally:
            drop_schema(args.pg, schema)
        rows += [
            ["PostgreSQL, one connection, 1 move per transaction", f"{one:,.0f}",
             f"{floor_pg:,.0f}", f"{one / floor_pg:.2f}", "≥ 1,500"],
            ["PostgreSQL, 4 processes, 1 move per transaction (aggregate)", f"{four:,.0f}",
             f"{floor_pg:,.0f}", f"{four / floor_pg:.2f}",
             f"near-linear: {four / one:.2f}× one connection"],
            ["PostgreSQL bulk path: `engine.batch()` of 1,000 records", f"{pg_bulk:,.0f}",
             f"{floor_pg:,.0f}", f"{pg_bulk / floor_pg:.2f}", "—"],
        ]
    body = table(rows, ["persisted", "operations/s", "raw DB-API floor (moves/s)",
                        "ratio to floor", "target"])
    body += (f"\n\n{n:,} flows × 3 forward moves per measurement; the bulk rows count a start and "
             "each move as one operation. The raw floor is one UPDATE + one INSERT per "
             "transaction with the bare driver (sqlite3 / psycopg), same durability settings; "
             "for the SQLite bulk row, the same pairs with executemany, 1,000 per transaction.\n")
    print(body)
    if not args.no_write:
        write_section("store", "Persisted moves", body,
                      f"python benchmarks/bench_store.py --flows {n}")


if __name__ == "__main__":
    main()
