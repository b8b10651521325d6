"""``bpf validate FILE|DIR...``: every problem of every process file, as ``file:line:col: ...``."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any

import bpf
from bpf.cli._common import PROCESS_SUFFIXES, CliError
from bpf.cli._output import Progress

HELP = "check process files: every problem as file:line:col: message"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "validate", parents=parents, help=HELP,
        description="Check process definition files. A directory is searched for *.yaml and "
        "*.yml files, recursively. Exit status: 0 when every file is valid, 1 when any has a "
        "problem (with --strict, also any warning), 2 when a path cannot be read.",
    )
    p.add_argument("paths", nargs="+", metavar="FILE|DIR", help="process files or directories")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="text (default) or json, for editors and CI")
    p.add_argument("--strict", action="store_true",
                   help="treat warnings as errors (a branch never taken, a stage never "
                   "entered, a condition on a field no step declares...): exit 1 on any")
    p.set_defaults(handler=run)


def is_scenario(path: Path) -> bool:
    """True for a `bpf run` scenario file (top-level ``steps:``, no ``process:``/``stages:``):
    a directory like examples/ holds both, and only the processes are validated."""
    try:
        with path.open("rb") as file:  # the head only: a huge file is validate's to refuse
            head = file.read(65536).decode("utf-8", errors="replace")
    except OSError:
        return False
    keys = {line.split(":", 1)[0] for line in head.splitlines()
            if line[:1].isalpha() and ":" in line}
    return "steps" in keys and not keys & {"process", "stages", "extends"}


def process_files(paths: list[str]) -> list[Path]:
    """The files the arguments name: files as given, directories searched for YAML
    (scenario files found there are left out)."""
    found: list[Path] = []
    for value in paths:
        path = Path(value)
        if path.is_dir():
            inside = sorted(p for p in path.rglob("*") if p.suffix in PROCESS_SUFFIXES
                            and p.is_file())
            if not inside:
                raise CliError(f"{value}: no .yaml or .yml files in this directory")
            processes = [p for p in inside if not is_scenario(p)]
            if not processes:
                raise CliError(f"{value}: only scenario files here, no process files")
            found.extend(processes)
        elif path.is_file():
            found.append(path)
        else:
            raise CliError(f"{value}: no such file or directory")
    return list(dict.fromkeys(found))


def check(path: Path) -> tuple[list[dict[str, Any]], str | None]:
    """Problems (errors and warnings) of one file, and the process name when it is valid."""
    found: list[dict[str, Any]] = []
    name = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", bpf.DefinitionWarning)
        try:
            definition = bpf.load_process(path)
            name = definition.process
        except bpf.DefinitionError as exc:
            found.extend(_entry(p, "error", str(path)) for p in exc.problems)
    for w in caught:
        if issubclass(w.category, bpf.DefinitionWarning):
            found.append(_entry(getattr(w.message, "problem", str(w.message)), "warning",
                                str(path)))
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    return found, name


def _entry(problem: Any, severity: str, file: str) -> dict[str, Any]:
    if isinstance(problem, bpf.Problem):
        return {"file": problem.source, "line": problem.line, "column": problem.column,
                "severity": severity, "message": problem.message}
    return {"file": file, "line": 1, "column": 1, "severity": severity, "message": str(problem)}


def run(args: argparse.Namespace) -> int:
    files = process_files(args.paths)
    progress = Progress("validating", len(files))
    results = []
    for i, path in enumerate(files, 1):
        progress.update(i)
        problems, name = check(path)
        if args.strict:
            for problem in problems:
                problem["severity"] = "error"
        valid = name is not None and not (args.strict and problems)
        results.append({"file": str(path), "process": name if valid else None,
                        "valid": valid, "problems": problems})
    progress.done()
    invalid = [r for r in results if not r["valid"]]
    if args.format == "json":
        json.dump({"valid": not invalid, "files": results}, sys.stdout, indent=2)
        print()
    else:
        for result in results:
            for p in result["problems"]:
                tag = "warning: " if p["severity"] == "warning" else ""
                print(f"{p['file']}:{p['line']}:{p['column']}: {tag}{p['message']}")
        errors = sum(1 for r in results for p in r["problems"] if p["severity"] == "error")
        files_word = "file" if len(results) == 1 else "files"
        if invalid:
            print(f"{errors} problem{'s' if errors != 1 else ''} in {len(invalid)} of "
                  f"{len(results)} {files_word}")
        else:
            names = ", ".join(str(r["process"]) for r in results)
            print(f"{len(results)} {files_word} valid"
                  + (f": {names}" if len(results) <= 5 else ""))
    return 1 if invalid else 0
