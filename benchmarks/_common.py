"""Shared by the benchmark scripts: timing, machine facts, and writing docs/performance.md.

Each script owns one section of docs/performance.md, between ``<!-- bench:NAME -->`` and
``<!-- /bench:NAME -->``, and rewrites only that section, so scripts can be rerun one at a time.
"""

from __future__ import annotations

import contextlib
import gc
import platform
import re
import statistics
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "performance.md"

#: A four-stage process with one required step, for the memory and store benchmarks.
FOUR_STAGES = """
process: {name}
name: {name}
entity: opportunity
pipeline_field: stepname
stages:
  - id: qualify
    name: Qualify
    category: Qualify
    steps: [{{field: budgetamount, label: Budget, type: money, required: true}}]
  - {{id: develop, name: Develop, category: Develop}}
  - {{id: propose, name: Propose, category: Propose}}
  - {{id: close, name: Close, category: Close}}
"""


def versions() -> str:
    names = ["bpf", "transitions", "python-statemachine", "SQLAlchemy", "psycopg", "hypothesis"]
    found = []
    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            found.append(f"{name} {metadata.version(name)}")
    return ", ".join(found)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return (
        f"Python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} cores ({cpu})"
    )


def per_call(fn: Callable[[], object], calls: int, *, repeat: int = 5) -> float:
    """Median over ``repeat`` runs of the seconds one call of ``fn`` takes (``fn`` is run
    ``calls`` times per run), with the garbage collector paused during each run."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            t0 = time.perf_counter()
            for _ in range(calls):
                fn()
            runs.append((time.perf_counter() - t0) / calls)
        finally:
            gc.enable()
    return statistics.median(runs)


def timed(fn: Callable[[], object], *, repeat: int = 5) -> float:
    """Median seconds of one whole run of ``fn`` over ``repeat`` runs."""
    runs = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t0)
    return statistics.median(runs)


def rss_bytes() -> int:
    """This process's resident set size now."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def us(seconds: float) -> str:
    return f"{seconds * 1e6:,.2f} µs"


def write_section(name: str, title: str, body: str, command: str) -> None:
    """Replace (or append) this script's section of docs/performance.md."""
    stamp = time.strftime("%Y-%m-%d")
    section = (
        f"<!-- bench:{name} -->\n## {title}\n\n"
        f"Measured {stamp} on {machine()}; {versions()}.\n"
        f"Rerun: `{command}`\n\n{body.strip()}\n<!-- /bench:{name} -->"
    )
    text = DOC.read_text() if DOC.exists() else "# Performance\n"
    pattern = re.compile(
        rf"<!-- bench:{re.escape(name)} -->.*?<!-- /bench:{re.escape(name)} -->", re.S
    )
    if pattern.search(text):
        text = pattern.sub(lambda _: section, text)
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text)
    print(f"wrote section {name!r} of {DOC}", file=sys.stderr)


def table(rows: list[list[str]], header: list[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)
