"""The ``bpf`` command: check, show and draw processes, try them, and read what flows did.

`main` returns the exit status: 0 when all went well, 1 when ``validate`` found problems or
``run`` met an unexpected refusal, 2 on bad input (a file, a database, a process or a record
that cannot be used) or bad usage. Bad input is one ``bpf: error: ...`` line on stderr;
``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from collections.abc import Sequence

import bpf
from bpf.cli import (
    _demo,
    _diagram,
    _events,
    _history,
    _import,
    _reports,
    _run,
    _show,
    _validate,
)
from bpf.cli._common import one_line

#: The subcommands, in the order ``bpf --help`` lists them.
COMMANDS = (_validate, _show, _diagram, _demo, _run, _reports, _history, _events, _import)

EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``bpf`` command and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="bpf",
        description="Business process flows: validate, show and draw process definitions, try "
        "them with scenarios, and read the funnel and the history of a database.",
        epilog="Run `bpf demo` for a tour. Docs: docs/cli.md.",
    )
    parser.add_argument("--version", action="version", version=f"bpf {bpf.__version__}")
    parser.add_argument("--debug", action="store_true", default=False,
                        help="show the traceback of an error")
    # --debug also after the subcommand: `bpf demo --debug`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        command.register(sub, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``bpf`` with ``argv`` (default: the process's arguments); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error argparse has printed
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return int(args.handler(args))
        except KeyboardInterrupt:
            print("bpf: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:  # `bpf history ... | head`: the reader has gone
            _silence_stdout()
            return EXIT_OK
        except (bpf.BpfError, OSError) as exc:
            return _fail(args, exc, one_line(exc) if isinstance(exc, bpf.BpfError)
                         else _os_message(exc))
        except Exception as exc:  # a bug: still one line, and the way to the traceback
            return _fail(args, exc, f"internal error: {type(exc).__name__}: {one_line(exc)} "
                         "(rerun with --debug for the traceback, and please report it)")


def _fail(args: argparse.Namespace, exc: BaseException, message: str) -> int:
    if getattr(args, "debug", False):
        traceback.print_exception(exc, file=sys.stderr)
    print(f"bpf: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _silence_stdout() -> None:
    """Point stdout at the null device, so flushing it at exit does not fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (captured in tests)
        pass


def _os_message(exc: OSError) -> str:
    if exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}"
    return str(exc)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    if issubclass(category, bpf.BpfWarning):
        print(f"bpf: warning: {message}", file=sys.stderr)
    else:
        print(warnings.formatwarning(message, category, filename, lineno, line),
              file=sys.stderr, end="")


__all__ = ["EXIT_BAD_INPUT", "EXIT_OK", "EXIT_PROBLEMS", "build_parser", "main"]
