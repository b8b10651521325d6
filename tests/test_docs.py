"""Every code block of README.md and docs/*.md runs, so the documentation cannot rot.

Per document, in order, in a fresh temporary directory holding a copy of ``processes/`` and
``examples/``:

- a ```python block runs in the document's one namespace (blocks build on each other);
- a ```yaml block with a top-level ``process:`` key must load with `bpf.loads_process`;
- a ```console or ```sh block runs its ``bpf`` commands (lines after ``$ ``, or every line of a
  block without prompts) as real subprocesses of the installed console script; each must
  exit 0, or the status a trailing ``# exits N`` comment gives, and print every output line
  the block shows under it (but lines with ``...`` or a date). ``pip install`` and
  ``python -m pytest`` are skipped (this environment is the installed package, and this is the
  test run); any other program fails the test: write such blocks as ```text.
- ``<!-- file: NAME -->`` on the line before a block writes the block to NAME first, so later
  blocks and commands can use it.

```text blocks (and other languages) are not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import attrs
import pytest
import yaml

import bpf

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COPIED = ("processes", "examples")

_FENCE = re.compile(r"^(?P<fence>`{3,})(?P<lang>[\w+-]*)\s*$")
_FILE = re.compile(r"^<!--\s*file:\s*(?P<name>\S+)\s*-->\s*$")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EXITS = re.compile(r"#\s*exits?\s+(?P<code>\d+)\s*$")
SKIPPED = (("python", "-m", "pip", "install"), ("pip", "install"), ("python", "-m", "pytest"))


@attrs.frozen
class Block:
    lang: str
    text: str
    line: int  # of the opening fence, 1-based
    file: str | None  # from a <!-- file: NAME --> comment


def blocks(path: Path) -> list[Block]:
    """The fenced code blocks of a Markdown file, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence, start = match["fence"], i
        previous = next((lines[j] for j in range(i - 1, -1, -1) if lines[j].strip()), "")
        named = _FILE.match(previous)
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != fence:
            body.append(lines[i])
            i += 1
        found.append(Block(match["lang"].lower(), "\n".join(body) + "\n", start + 1,
                           named["name"] if named else None))
        i += 1
    return found


def commands(block: Block) -> list[tuple[str, list[str]]]:
    """The commands of a console block, each with the output the block shows under it.

    Commands are the lines after ``$ `` prompts (output lines follow them), or every line of a
    block without prompts; a trailing backslash continues a command on the next line.
    """
    lines = block.text.splitlines()
    prompted = any(line.startswith("$ ") for line in lines)
    out: list[tuple[str, list[str]]] = []
    continued = False
    for line in lines:
        if continued:
            out[-1] = (out[-1][0][:-1].rstrip() + " " + line.strip(), out[-1][1])
        elif prompted and line.startswith("$ "):
            out.append((line[2:].strip(), []))
        elif prompted:
            if out:
                out[-1][1].append(line)
        elif line.strip() and not line.lstrip().startswith("#"):
            out.append((line.strip(), []))
        continued = bool(out) and out[-1][0].endswith("\\")
    return out


def shown_lines_missing(shown: list[str], actual: str) -> list[str]:
    """The output lines a doc shows that the command did not print.

    Spacing is compared loosely; lines with ``...`` (elisions) or a date (which changes every
    run) are not compared.
    """
    printed = {" ".join(line.split()) for line in actual.splitlines()}
    return [
        line for line in shown
        if line.strip() and "..." not in line and not _DATE.search(line)
        and " ".join(line.split()) not in printed
    ]


def bpf_script() -> Path:
    return Path(sys.executable).parent / ("bpf.exe" if os.name == "nt" else "bpf")


def run_command(line: str, shown: list[str], cwd: Path, where: str) -> list[str]:
    """Run one documented command line; check the output the doc shows under it appeared;
    return the bpf commands it ran."""
    expected = 0
    exits = _EXITS.search(line)
    if exits:
        expected = int(exits["code"])
    parts: list[list[str]] = [[]]
    for token in shlex.split(line, comments=True):
        if token == "&&":
            parts.append([])
        else:
            parts[-1].append(token)
    ran = []
    output = ""
    for argv in parts:
        text = " ".join(argv)
        if not argv or any(tuple(argv[: len(s)]) == s for s in SKIPPED):
            continue
        if any(t in ("|", ">", ">>", "<", ";", "||") for t in argv):
            pytest.fail(f"{where}: `{text}`: pipes and redirections are not run; write the "
                        "block as ```text")
        if argv[0] == "bpf":
            argv = [str(bpf_script()), *argv[1:]]
        elif argv[:3] == ["python", "-m", "bpf.cli"]:
            argv = [sys.executable, *argv[1:]]
        else:
            pytest.fail(f"{where}: `{text}` is not a bpf command the doc test can run: "
                        "write the block as ```text, or make it self-contained")
        done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120,
                              check=False)
        assert done.returncode == expected, (
            f"{where}: `{text}` exited {done.returncode}, expected {expected}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
        ran.append(text)
        output += done.stdout + done.stderr
    missing = shown_lines_missing(shown, output)
    assert not missing, (
        f"{where}: `{line}` did not print these lines the doc shows:\n" + "\n".join(missing)
        + f"\n\nit printed:\n{output}"
    )
    return ran


def run_document(path: Path, workdir: Path) -> dict[str, Any]:
    """Run every block of one document in ``workdir``; what ran, for the checks."""
    for name in COPIED:
        shutil.copytree(ROOT / name, workdir / name,
                        ignore=shutil.ignore_patterns("__pycache__", "*.db"))
    namespace: dict[str, Any] = {"__name__": f"doc:{path.name}"}
    ran: dict[str, Any] = {"python": 0, "yaml": 0, "commands": []}
    relative = path.relative_to(ROOT)
    for block in blocks(path):
        where = f"{relative}:{block.line}"
        if block.file is not None:
            target = workdir / block.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        if block.lang in ("python", "py"):
            code = compile(block.text, where, "exec")
            with warnings.catch_warnings():
                # Pages show several processes sharing a pipeline field on purpose.
                warnings.simplefilter("ignore", bpf.PipelineFieldWarning)
                exec(code, namespace)
            ran["python"] += 1
        elif block.lang in ("yaml", "yml"):
            data = yaml.safe_load(block.text)
            if isinstance(data, dict) and "process" in data:
                bpf.loads_process(block.text, source=where)
                ran["yaml"] += 1
        elif block.lang in ("console", "sh", "shell", "bash"):
            for line, shown in commands(block):
                ran["commands"].extend(run_command(line, shown, workdir, where))
    return ran


@pytest.mark.parametrize("doc", DOCS, ids=[str(d.relative_to(ROOT)) for d in DOCS])
def test_every_block_of_the_document_runs(doc, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ran = run_document(doc, tmp_path)
    if doc.name == "README.md":
        assert "bpf demo" in ran["commands"], "the Quickstart's `bpf demo` did not run"
        assert ran["python"] >= 1


def test_the_doc_test_reads_blocks_commands_and_files(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Intro\n\n<!-- file: s.yaml -->\n```yaml\nsteps: []\n```\n\n"
        "```console\n$ bpf validate \\\n    processes/\n1 file valid\n"
        "$ bpf show nope  # exits 2\n```\n\n````text\n```python\nnot run\n```\n````\n"
    )
    found = blocks(page)
    assert [(b.lang, b.line, b.file) for b in found] == [
        ("yaml", 4, "s.yaml"), ("console", 8, None), ("text", 15, None)
    ]
    assert commands(found[1]) == [
        ("bpf validate processes/", ["1 file valid"]), ("bpf show nope  # exits 2", [])
    ]
    assert shown_lines_missing(["1 file  valid", "x ...", "at 2025-01-01", "gone"],
                               "1 file valid\n") == ["gone"]
    assert found[2].text == "```python\nnot run\n```\n"
