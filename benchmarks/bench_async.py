"""The asyncio engine beside the sync one, in the same run: in memory, on one PostgreSQL
connection, and 16 tasks moving different flows on a pool of 4 PostgreSQL connections.

    python benchmarks/bench_async.py [--flows 1000] [--rounds 3] [--pg URL] [--no-write]

A move is a full forward move (gate, branch, pipeline field, history), persisted in its own
transaction on PostgreSQL. Each round runs every configuration once (3 moves per flow); a
figure is the median of ``--rounds`` rounds, a ratio the median of its ratios within rounds.
With uvloop installed (``pip install uvloop``; uvicorn runs it when it is there), the
PostgreSQL figures are also taken on its event loop.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
import warnings

from _common import FOUR_STAGES, table, write_section

import bpf

PG = os.environ.get("BPF_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
YAML = FOUR_STAGES.format(name="store")


def definition() -> bpf.ProcessDefinition:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bpf.loads_process(YAML)


def sync_moves(url: str, n: int, prefix: str) -> float:
    engine = bpf.Engine(url)
    try:
        engine.register(definition())
        with engine.batch():
            flows = [engine.start("store", {"id": f"{prefix}-{i}", "budgetamount": 1})
                     for i in range(n)]
        t0 = time.perf_counter()
        for flow in flows:
            flow.next()
            flow.next()
            flow.next()
        return 3 * n / (time.perf_counter() - t0)
    finally:
        engine.close()


async def async_moves(url: str, n: int, prefix: str, tasks: int = 1,
                      writers: int | None = None) -> float:
    async with bpf.AsyncEngine(url, writers=writers) as engine:
        await engine.register(definition())
        async with engine.batch():
            flows = [await engine.start("store", {"id": f"{prefix}-{i}", "budgetamount": 1})
                     for i in range(n)]

        async def walk(mine: list[bpf.AsyncFlow]) -> None:
            for flow in mine:
                await flow.next()
                await flow.next()
                await flow.next()

        t0 = time.perf_counter()
        await asyncio.gather(*(walk(flows[i::tasks]) for i in range(tasks)))
        return 3 * n / (time.perf_counter() - t0)


def in_schema(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def with_schema(url: str, fn, *args):
    """``fn(url_in_a_fresh_schema, *args)``; the schema is dropped after (never public)."""
    import sqlalchemy as sa

    schema = f"bpf_bench_async_{os.getpid()}"
    server = sa.create_engine(url)
    with server.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    try:
        return fn(in_schema(url, schema), *args)
    finally:
        with server.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        server.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pg", default=PG)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n, rounds = args.flows, args.rounds

    def pg(extra: str, tasks: int, writers: int, prefix: str, run=asyncio.run):
        return lambda r: with_schema(args.pg, lambda u: run(
            async_moves(u + extra, n, f"{prefix}{r}", tasks, writers)))

    try:  # the event loop uvicorn runs when installed (uvicorn[standard])
        import uvloop
    except ImportError:
        uvloop = None
    # Without waiting for the WAL flush at each commit: what the pool gives when the server's
    # disk is out of the picture.
    off = "%20-csynchronous_commit%3Doff"
    runs = {
        "memory sync": lambda r: sync_moves("memory", n * 10, f"ms{r}"),
        "memory async": lambda r: asyncio.run(async_moves("memory", n * 10, f"ma{r}")),
        "pg sync": lambda r: with_schema(args.pg, sync_moves, n, f"ps{r}"),
        "pg async": pg("", 1, 1, "pa"),
        "pg pool": pg("", 16, 4, "pp"),
        "off one": pg(off, 1, 1, "oa"),
        "off pool": pg(off, 16, 4, "op"),
    }
    if uvloop is not None:
        runs["uv one"] = pg("", 1, 1, "ua", uvloop.run)
        runs["uv pool"] = pg("", 16, 4, "up", uvloop.run)
    # Every configuration once per round, rounds after one another: a passing load on the
    # shared machine falls on all of a round. A figure is the median of its rounds, a ratio
    # the median of the ratios within each round.
    got: dict[str, list[float]] = {name: [] for name in runs}
    for r in range(rounds):
        for name, fn in runs.items():
            got[name].append(fn(r))

    def rate(name: str) -> float:
        return statistics.median(got[name])

    def ratio(a: str, b: str, what: str) -> str:
        within = [x / y for x, y in zip(got[a], got[b], strict=True)]
        return f"{statistics.median(within):.2f}x {what}"

    rows = [
        ("memory", "sync move", rate("memory sync"), ""),
        ("memory", "async move", rate("memory async"), ratio("memory async", "memory sync",
                                                             "sync")),
        ("PostgreSQL, 1 connection", "sync move", rate("pg sync"), ""),
        ("PostgreSQL, 1 connection", "async move", rate("pg async"),
         ratio("pg async", "pg sync", "sync")),
        ("PostgreSQL, pool of 4", "16 tasks, different flows", rate("pg pool"),
         ratio("pg pool", "pg async", "one connection") + "; "
         + ratio("pg pool", "pg sync", "sync")),
        *([] if uvloop is None else [
            ("PostgreSQL, 1 connection, uvloop", "async move", rate("uv one"),
             ratio("uv one", "pg sync", "sync")),
            ("PostgreSQL, pool of 4, uvloop", "16 tasks, different flows", rate("uv pool"),
             ratio("uv pool", "uv one", "one connection") + "; "
             + ratio("uv pool", "pg sync", "sync")),
        ]),
        ("PG synchronous_commit=off, 1", "async move", rate("off one"), ""),
        ("PG synchronous_commit=off, 4", "16 tasks, different flows", rate("off pool"),
         ratio("off pool", "off one", "one connection")),
    ]
    print(f"{'store':30} {'what':28} {'moves/s':>10}  ratio")
    for store, what, rate, ratio in rows:
        print(f"{store:30} {what:28} {rate:10,.0f}  {ratio}")
    if not args.no_write:
        body = table([[s, w, f"{r:,.0f}", x] for s, w, r, x in rows],
                     ["store", "what", "moves/s", "ratio"])
        body += (
            "\n\nThe commits of different connections do not wait for each other: PostgreSQL "
            "events are numbered by their readers and notified after the commit "
            "(`bpf.store.sql.events`, `bpf.store.sql.notifier`), so a pool of connections "
            "multiplies the moves per second until the client's CPU runs out: one event loop "
            "does the client's work of every connection, on a 2-core machine it shares with "
            "the server.")
        write_section("async", "The asyncio engine", body,
                      f"python benchmarks/bench_async.py --flows {n} --rounds {rounds}")


if __name__ == "__main__":
    main()
