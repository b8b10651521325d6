"""What the CLI tests share: paths, a small process, and running bpf as a real program."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

#: A small process written as an analyst would: roles, a gate, a branch with a condition.
TINY = textwrap.dedent(
    """\
    process: tiny-deal
    name: Tiny Deal
    entity: opportunity
    pipeline_field: stepname
    roles: [salesperson]
    stages:
      - id: qualify
        name: Qualify
        category: Qualify
        probability: 10
        steps:
          - {field: budgetamount, label: Estimated Budget, type: money, required: true}
          - {field: description, label: Capture Summary}
        next:
          - when: {field: budgetamount, gt: 100000}
            stage: review
          - stage: close
      - id: review
        name: Executive Review
        category: Develop
        probability: 50
        steps:
          - {field: executiveapproval, label: Executive Approval, type: boolean, required: true}
      - id: close
        name: Close
        category: Close
        probability: 90
    outcomes:
      won: {set: {statecode: won}}
      lost: {set: {statecode: lost}}
    """
)


@attrs.frozen
class Result:
    """What a run of ``bpf`` did: its exit status and what it printed."""

    code: int
    out: str
    err: str


def bpf_script() -> Path:
    """The ``bpf`` console script installed next to this Python."""
    name = "bpf.exe" if os.name == "nt" else "bpf"
    return Path(sys.executable).parent / name


def run_program(args: list[str], *, cwd: Path | None = None, timeout: float = 60,
                env: dict[str, str] | None = None) -> Result:
    """Run a program; its exit status and output."""
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def assert_png(path: Path) -> None:
    """``path`` is a real PNG image of sensible size (400 to 4000 pixels each way)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert 400 <= width <= 4000 and 400 <= height <= 4000, (width, height)
