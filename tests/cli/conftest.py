"""CLI fixtures: the command in-process (``main`` with captured output) and as a real program.

As click's ``testing.py`` does: most behaviour is checked in-process, where it is fast; what only
a real program shows (the console script, exit codes, no traceback, files written) runs it as
a subprocess.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from clitools import TINY, Result, bpf_script, run_program

from bpf.cli import main


@pytest.fixture
def bpf_main(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``bpf ARGS`` in-process."""

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def bpf_program() -> Callable[..., Result]:
    """Run the ``bpf`` console script as a real program."""
    script = bpf_script()
    if not script.exists():
        pytest.fail(f"the bpf console script is not installed at {script}: "
                    "pip install -e '.[test]'")

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
        return run_program([str(script), *map(str, args)], cwd=cwd, env=env)

    return run


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny-deal.yaml"
    path.write_text(TINY, encoding="utf-8")
    return path


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a file under the test's temporary directory."""

    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    return write
