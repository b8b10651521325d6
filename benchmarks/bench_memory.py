"""Memory: 1,000,000 flows with four moves each, in one in-memory engine.

    python benchmarks/bench_memory.py [--flows 1000000] [--no-write]

Reports the process's resident set size (RSS) before and after, per flow, with the records
themselves (a small dict each, created before the baseline) left out of the per-flow figure.
Target: ≤ 2 GB RSS for the whole run.
"""

from __future__ import annotations

import argparse
import gc
import time
import warnings

from _common import FOUR_STAGES, rss_bytes, table, write_section

import bpf

YAML = FOUR_STAGES.format(name="memory")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    n = args.flows

    engine = bpf.Engine()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        engine.register(bpf.loads_process(YAML))
    records = [{"id": f"opp-{i}", "budgetamount": 1000, "stepname": None} for i in range(n)]
    gc.collect()
    start_rss = rss_bytes()
    t0 = time.perf_counter()
    flows = [engine.start("memory", record) for record in records]
    started = time.perf_counter() - t0
    after_start = rss_bytes()
    t0 = time.perf_counter()
    for flow in flows:
        flow.next()
        flow.next()
        flow.next()
        flow.previous()
    moved = time.perf_counter() - t0
    gc.collect()
    end_rss = rss_bytes()
    total_history = sum(len(f.history) for f in flows[:1000]) * (n / 1000)

    per_start = (after_start - start_rss) / n
    per_flow = (end_rss - start_rss) / n
    body = table(
        [
            ["after starting", f"{per_start:,.0f} B", f"{after_start / 2**20:,.0f} MiB",
             f"{started:,.1f} s"],
            ["after four moves each (5 history entries)", f"{per_flow:,.0f} B",
             f"{end_rss / 2**20:,.0f} MiB", f"{moved:,.1f} s"],
        ],
        [f"{n:,} flows", "per flow", "process RSS", "wall time"],
    )
    verdict = (
        f"Target ≤ 2 GB RSS: **{end_rss / 2**30:.2f} GiB** "
        f"({'met' if end_rss <= 2 * 10**9 else 'MISSED'}); the records themselves take "
        f"{start_rss / 2**20:,.0f} MiB of that before any flow exists. "
        f"{total_history:,.0f} history entries in memory."
    )
    body = f"{body}\n\n{verdict}\n"
    print(body)
    if not args.no_write:
        write_section("memory", "Memory of a million flows", body,
                      f"python benchmarks/bench_memory.py --flows {n}")


if __name__ == "__main__":
    main()
