"""What several commands share: naming a process, opening a database, the CLI's own error."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Any

import bpf
from bpf._errors import BpfError
from bpf.definition.loader import shipped_names

if TYPE_CHECKING:
    from bpf.definition.model import ProcessDefinition

PROCESS_SUFFIXES = (".yaml", ".yml")


class CliError(BpfError):
    """Bad input to the command line: a file, a database or an argument it cannot use."""


def is_process_file(value: str) -> bool:
    """A NAME|FILE argument names a file when it is written as a path (it holds a '/' or a
    '\\', or ends with .yaml/.yml) or names a file that exists; otherwise it is a name."""
    return ("/" in value or "\\" in value or value.endswith(PROCESS_SUFFIXES)
            or Path(value).is_file())


def load_definition(value: str) -> ProcessDefinition:
    """The process a NAME|FILE argument of the command line names: a YAML file (see
    `is_process_file`), else a shipped process or example, by name (`shipped_definition`)."""
    if is_process_file(value):
        path = Path(value)
        if not path.is_file():
            raise CliError(f"{value}: no such file")
        return bpf.load_process(path)
    definition = shipped_definition(value)
    if definition is None:
        try:
            bpf.standard_process(value)  # raises, naming the shipped processes
        except bpf.UnknownProcessError as exc:
            names = example_names()
            raise bpf.UnknownProcessError(
                f"{exc}; examples: {', '.join(names)}" if names else str(exc)
            ) from None
    return definition  # type: ignore[return-value]


def shipped_definition(name: str) -> ProcessDefinition | None:
    """The shipped process or example called ``name``, or None.

    Only the names bpf ships are looked up, never a path built from ``name``: a name read
    from a database (`known_definition`) must not open a file.
    """
    if name in shipped_names():
        return bpf.standard_process(name)
    if name in example_names():
        with as_file(files("bpf.processes") / "examples" / f"{name}.yaml") as path:
            return bpf.load_process(path)
    return None


def example_names() -> list[str]:
    """The example processes shipped in ``bpf.processes.examples``."""
    folder = files("bpf.processes") / "examples"
    return sorted(e.name[: -len(".yaml")] for e in folder.iterdir() if e.name.endswith(".yaml"))


def database_url(value: str) -> str | None:
    """The store an ``--db`` value names: None for ``memory``, a URL, or a path to SQLite."""
    if value == "memory":
        return None
    if "://" in value:
        return value
    return f"sqlite:///{value}"


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL (None for other databases and in-memory SQLite)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix) and not url.startswith("sqlite+pysqlite:///"):
        return None
    path = url.split(":///", 1)[1].split("?", 1)[0]
    if path.startswith("file:"):  # an SQLite URI (uri=true), e.g. file:x.db?immutable=1
        path = path.removeprefix("file:")
    if path in ("", ":memory:"):
        return None
    return Path(path)


def add_database_to_read(parser: Any) -> None:
    """The ``--db URL`` argument of a command that reads what a demo or a run wrote; its value
    goes through `existing_database`."""
    parser.add_argument("--db", required=True, metavar="URL",
                        help="the database: sqlite:///file.db, a PostgreSQL URL, or an SQLite "
                        "path")


def existing_database(value: str) -> str:
    """The URL of a database to read, refusing an SQLite file that does not exist (SQLite
    would quietly create an empty one)."""
    url = database_url(value)
    if url is None:
        raise CliError("--db memory holds nothing to read: give the database a demo or a run "
                       "wrote, e.g. --db sqlite:///bpf-demo.db")
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        raise CliError(f"no database at {path}: run `bpf demo` or `bpf run ... --db {value}` "
                       "first, or check the path")
    return url


def one_line(error: BaseException) -> str:
    """The error as one line: the first line of its message, and how many more there are."""
    if isinstance(error, bpf.DefinitionError) and error.problems:
        first = str(error.problems[0])
        more = len(error.problems) - 1
        if more:
            first += f" (and {more} more problem{'s' if more > 1 else ''}: run `bpf validate`)"
        return first
    text = str(error).strip() or type(error).__name__
    lines = text.splitlines()
    return lines[0] + (f" (and {len(lines) - 1} more lines)" if len(lines) > 1 else "")


def open_engine(
    url: str | None,
    definitions: Iterable[ProcessDefinition],
    *,
    clock: Callable[[], datetime] | None = None,
    on_action: Callable[[str, Any], None] | None = None,
) -> bpf.Engine:
    """An engine on ``url`` with ``definitions`` registered (see `register_all`)."""
    engine = bpf.Engine(url, clock=clock)
    try:
        register_all(engine, definitions, on_action=on_action)
    except BaseException:
        engine.close()
        raise
    return engine


def register_all(
    engine: bpf.Engine,
    definitions: Iterable[ProcessDefinition],
    *,
    on_action: Callable[[str, Any], None] | None = None,
    quiet: bool = False,
) -> None:
    """Register ``definitions`` with ``engine``; ``quiet`` silences `bpf.PipelineFieldWarning`
    (for commands that only read).

    The stage actions the definitions name (``on_enter``/``on_exit``) are Python code the
    command line does not have: each is stood in for by a function that only reports, through
    ``on_action(name, event)``, that it ran.
    """

    def stand_in(name: str) -> Callable[[Any], None]:
        def action(event: Any) -> None:
            if on_action is not None:
                on_action(name, event)

        return action

    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore", bpf.PipelineFieldWarning)
        for definition in definitions:
            for stage in definition.stages:
                for name in stage.actions:
                    engine.actions.setdefault(name, stand_in(name))
            engine.register(definition)


def known_definition(
    process: str, version: int, engine: bpf.Engine | None = None
) -> ProcessDefinition | None:
    """The definition of ``process`` at ``version`` (stage names, order, probability for what
    a database holds): the one the engine's store keeps, else the shipped one, else None.

    ``process`` comes from the database: it is looked up in the store and among the shipped
    names only, never opened as a file.
    """
    if engine is not None:
        for stored in engine.processes(stored=True):
            if (stored.process, stored.version) == (process, version):
                return stored
    definition = shipped_definition(process)
    return definition if definition is not None and definition.version == version else None
