"""``bpf import dynamics SOURCE... [--out DIR]``: Dynamics 365 process flows as bpf YAML."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import bpf
from bpf.cli._common import CliError

HELP = "convert processes of another tool into bpf YAML (dynamics: Dynamics 365 BPFs)"


def register(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import", parents=parents, help=HELP,
        description="Convert processes written for another tool into bpf process files.",
    )
    kinds = p.add_subparsers(dest="kind", metavar="KIND", required=True)
    dynamics = kinds.add_parser(
        "dynamics", parents=parents, help="Dynamics 365 business process flows",
        description="Convert Dynamics 365 business process flows into bpf YAML, one "
        "<process>.yaml per flow, and print what each lost. SOURCE is a BPF's .xaml (its "
        ".xaml.data.xml beside it is read when present), an unpacked solution folder or a "
        "solution .zip. Exit status: 0 when every flow converted (losses are warnings), 1 when "
        "a source is not a business process flow or is malformed, 2 on usage errors.",
        epilog="Docs: docs/dynamics.md.",
    )
    dynamics.add_argument("sources", nargs="+", metavar="SOURCE",
                          help="a Workflows/*.xaml, a solution folder or a solution .zip")
    dynamics.add_argument("--out", metavar="DIR", default=".",
                          help="where to write the YAML files (default: the current directory)")
    dynamics.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from bpf.interop import dynamics

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CliError(f"--out {args.out}: not a directory")
    missing = [s for s in args.sources if not Path(s).exists()]
    if missing:
        raise CliError(f"{missing[0]}: no such file or directory")
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    written: dict[str, str] = {}
    for source in args.sources:
        try:
            conversions = dynamics.convert(source)
        except bpf.DefinitionError as error:
            failed += 1
            for problem in error.problems:
                print(f"bpf: error: {problem}", file=sys.stderr)
            continue
        for conversion in conversions:
            target = out / conversion.filename
            if conversion.filename in written:
                failed += 1
                print(f"bpf: error: {conversion.source}: a flow named {conversion.process!r} was "
                      f"already converted from {written[conversion.filename]}: not written",
                      file=sys.stderr)
                continue
            written[conversion.filename] = conversion.source
            target.write_text(conversion.yaml, encoding="utf-8")
            definition = conversion.definition
            steps = [s for stage in definition.stages for s in stage.steps]
            required = sum(s.required for s in steps)
            branches = sum(len(s.next) - 1 for s in definition.stages if len(s.next) > 1)
            lost = len(conversion.losses)
            print(f"{target}: {definition.name} ({conversion.process}): "
                  f"{_count(len(definition.stages), 'stage')}, {_count(len(steps), 'step')} "
                  f"({required} required), {_count(branches, 'conditional branch', 'es')}, "
                  f"{_count(lost, 'loss', 'es')}")
            for loss in conversion.losses:
                print(f"  lost: {loss}")
    return 1 if failed else 0


def _count(n: int, word: str, plural: str = "s") -> str:
    return f"{n} {word}{'' if n == 1 else plural}"
