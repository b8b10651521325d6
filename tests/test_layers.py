"""The layers of bpf import only downward: the import-linter contracts in pyproject.toml hold.

cli → testing → reports | interop → runtime → store → definition → leaves (_clock | _history,
then _errors); a store never imports the runtime; no package's modules import each other in a
cycle. ``lint-imports`` reads the code without importing it, so this is quick.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"


def lint_imports(*, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the ``lint-imports`` console script on the repository's contracts."""
    script = Path(sys.executable).parent / ("lint-imports.exe" if os.name == "nt"
                                            else "lint-imports")
    if not script.exists():
        pytest.fail(f"import-linter is not installed next to {sys.executable}: "
                    "pip install -e '.[test]'", pytrace=False)
    env = dict(os.environ)
    if pythonpath is not None:  # where grimp finds the bpf package to read
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath),
                                                          env.get("PYTHONPATH")]))
    # --no-cache: leave no .import_linter_cache in the working tree.
    return subprocess.run(
        [str(script), "--no-cache", "--no-logo", str(PYPROJECT)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_every_import_goes_down_the_layers_and_no_package_has_a_cycle():
    done = lint_imports()
    assert done.returncode == 0, "lint-imports: a contract is broken\n" + done.stdout + done.stderr


@pytest.mark.parametrize(
    ("module", "upward", "contract"),
    [
        ("_history.py", "import bpf.runtime.engine", "bpf imports only downward"),
        ("store/memory.py", "from bpf.runtime import flow", "a store knows rows"),
        ("definition/model.py", "if TYPE_CHECKING:\n    import bpf.reports",
         "bpf imports only downward"),
    ],
)
def test_an_upward_import_breaks_the_contract(tmp_path, module, upward, contract):
    """The contracts can fail: the same check on a copy of bpf with one upward import planted
    (a TYPE_CHECKING one included) reports it."""
    copy = tmp_path / "bpf"
    shutil.copytree(ROOT / "src" / "bpf", copy,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    planted = copy / module
    text = planted.read_text(encoding="utf-8")
    if "TYPE_CHECKING" in upward and "from typing import" not in text:
        upward = "from typing import TYPE_CHECKING\n" + upward
    planted.write_text(text + "\n" + upward + "\n", encoding="utf-8")

    done = lint_imports(pythonpath=tmp_path)

    importer = "bpf." + ".".join(Path(module).with_suffix("").parts)
    assert done.returncode != 0, done.stdout
    assert contract in done.stdout
    assert f"- {importer} -> bpf." in done.stdout, done.stdout
