"""Loading YAML, the test kit's pace, and the funnel report over a million stored flows.

    python benchmarks/bench_misc.py [--flows 1000000] [--examples 200] [--no-write]

- loading and validating the shipped opportunity YAML (schema + semantic checks), in ms,
  beside a bare ``yaml.safe_load`` of the same text (the floor) in the same run;
- `bpf.testing.check_process` examples per second on the opportunity process;
- `bpf.reports.funnel` over N flows stored in SQLite (created through bpf's bulk path, spread
  over the four stages, some finished and aborted), in seconds.
"""

from __future__ import annotations

import argparse
import importlib.resources
import tempfile
import time
import warnings
from pathlib import Path

import yaml
from _common import per_call, table, write_section

import bpf
import bpf.reports


def yaml_load() -> tuple[float, float]:
    source = importlib.resources.files("bpf.processes") / "opportunity-sales.yaml"
    text = source.read_text()
    bpf.loads_process(text)  # warm caches (the compiled schema validator)
    full = per_call(lambda: bpf.loads_process(text, source="opportunity-sales.yaml"), 200)
    floor = per_call(lambda: yaml.safe_load(text), 200)
    return full, floor


def check_rate(examples: int) -> float:
    from bpf.testing import check_process

    definition = bpf.standard_process("opportunity-sales")
    t0 = time.perf_counter()
    check_process(definition, max_examples=examples)
    return examples / (time.perf_counter() - t0)


def funnel_seconds(n: int) -> tuple[float, float]:
    definition = bpf.standard_process("opportunity-sales")
    with tempfile.TemporaryDirectory() as tmp:
        engine = bpf.Engine(f"sqlite:///{Path(tmp) / 'funnel.db'}")
        engine.register(definition)
        actor = bpf.Actor("bench", roles={"salesperson"})
        t0 = time.perf_counter()
        chunk = 10_000
        for base in range(0, n, chunk):
            with engine.batch():
                for i in range(base, min(n, base + chunk)):
                    flow = engine.start("opportunity-sales", {"id": f"opp-{i}"}, actor=actor)
                    for _ in range(i % 4):
                        flow.next(actor=actor)
                    if i % 10 == 7:
                        flow.abandon(actor=actor)
        built = time.perf_counter() - t0
        bpf.reports.funnel(engine, "opportunity-sales")  # warm the page cache once
        seconds = min(
            _timed(lambda: bpf.reports.funnel(engine, "opportunity-sales")) for _ in range(3)
        )
        engine.close()
    return seconds, built


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--flows", type=int, default=1_000_000)
    parser.add_argument("--examples", type=int, default=200)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full, floor = yaml_load()
        rate = check_rate(args.examples)
        funnel, built = funnel_seconds(args.flows)
    body = table(
        [
            ["load + validate opportunity-sales.yaml", f"{full * 1e3:.2f} ms",
             f"`yaml.safe_load` alone: {floor * 1e3:.2f} ms ({full / floor:.1f}×)", "≤ 20 ms"],
            ["`check_process(opportunity-sales)`", f"{rate:,.1f} examples/s",
             f"{args.examples} examples, memory store", "—"],
            [f"`bpf.reports.funnel` over {args.flows:,} SQLite flows", f"{funnel:.2f} s",
             f"built through `engine.batch()` in {built:,.0f} s", "≤ 1 s"],
        ],
        ["what", "figure", "beside", "target"],
    )
    print(body)
    if not args.no_write:
        write_section("misc", "YAML, test kit and funnel", body,
                      f"python benchmarks/bench_misc.py --flows {args.flows} "
                      f"--examples {args.examples}")


if __name__ == "__main__":
    main()
