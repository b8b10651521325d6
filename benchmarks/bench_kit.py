"""How well the test kit does its job: coverage over seeds, the planted-bug corpus, pace.

    python benchmarks/bench_kit.py [--seeds 20] [--part coverage|corpus|all]

- coverage: `check_process` with default settings on every shipped process
  (processes/*.yaml, processes/examples/), the test processes (tests/processes/) and the kit's
  own deal.yaml, once per seed: how many seeds entered every stage, took every branch and
  reached every outcome; examples per second; the slowest run; any failure (a false failure:
  these processes are correct);
- corpus: every planted bug of tests/testing/planted.py (broken processes, broken engines),
  once per seed: how many seeds found it (a `ProcessCheckFailed`, a `ProcessNotCovered`, or a
  `DefinitionError` at load).

Run from the repository root. The figures go into docs/testing.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import bpf
from bpf.testing import ProcessCheckFailed, ProcessNotCovered, check_process

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "testing"))

PROCESSES = [
    *sorted((ROOT / "processes").glob("*.yaml")),
    *sorted((ROOT / "processes" / "examples").glob("*.yaml")),
    *sorted((ROOT / "tests" / "processes").glob("*.yaml")),
    ROOT / "tests" / "testing" / "processes" / "deal.yaml",
]


def coverage(seeds: int) -> None:
    print(f"{'process':<32} {'covered':>9} {'ex/s':>7} {'slowest':>8}  failures")
    for path in PROCESSES:
        covered, paces, slowest, failures = 0, [], 0.0, []
        for seed in range(seeds):
            began = time.perf_counter()
            try:
                report = check_process(path, seed=seed, require_coverage=False)
            except ProcessCheckFailed as failure:
                failures.append(f"seed {seed}: {failure.property}")
                continue
            slowest = max(slowest, time.perf_counter() - began)
            covered += report.covered
            paces.append(report.examples_per_second)
            if not report.covered:
                failures.append(f"seed {seed} missed: {'; '.join(report.gaps)}")
        pace = statistics.median(paces) if paces else 0.0
        name = path.relative_to(ROOT).as_posix()
        print(f"{name:<32} {covered:>4}/{seeds:<4} {pace:>7.1f} {slowest:>7.1f}s  "
              + (" | ".join(failures) or "-"), flush=True)


def corpus(seeds: int) -> None:
    from planted import CORPUS

    print(f"{'planted bug':<44} {'found':>9}  how")
    total = found_all = 0
    for bug in CORPUS:
        found, how = 0, set()
        for seed in range(seeds):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", bpf.DefinitionWarning)
                    bug.check(seed)
            except ProcessCheckFailed as failure:
                found += 1
                how.add(f"failed ({failure.property})")
            except ProcessNotCovered:
                found += 1
                how.add("not covered")
            except bpf.DefinitionError:
                found += 1
                how.add("refused at load")
        total += 1
        found_all += found == seeds
        print(f"{bug.name:<44} {found:>4}/{seeds:<4}  {', '.join(sorted(how)) or '-'}",
              flush=True)
    print(f"found on every seed: {found_all} of {total} planted bugs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--part", choices=("coverage", "corpus", "all"), default="all")
    args = parser.parse_args()
    if args.part in ("coverage", "all"):
        coverage(args.seeds)
    if args.part in ("corpus", "all"):
        corpus(args.seeds)


if __name__ == "__main__":
    main()
