"""The bpf pytest plugin: ``--bpf-processes PATH`` and the ``bpf_engine`` fixtures.

``pytest --bpf-processes processes/`` adds one test per process YAML under ``processes/`` (a
folder, searched recursively, or one file), which runs `bpf.testing.check_process` on it with
the other processes of its entity running on the same records. The plugin is loaded in every
pytest run of a project that has bpf installed, so it imports nothing but pytest until one of
its tests or fixtures runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_PATTERNS = ("*.yaml", "*.yml")
_MARKER = "bpf_process: a process YAML property-tested by --bpf-processes"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("bpf", "bpf business process flows")
    group.addoption(
        "--bpf-processes", action="append", default=[], metavar="PATH",
        help="property-test every process YAML under PATH (a folder or a file); repeatable",
    )
    group.addoption(
        "--bpf-max-examples", type=int, default=100, metavar="N",
        help="examples (random operation sequences) per process; default 100",
    )
    group.addoption(
        "--bpf-steps", type=int, default=30, metavar="N",
        help="operations per example at most; default 30",
    )
    group.addoption(
        "--bpf-store", default="memory", metavar="memory|sqlite|URL",
        help="run the flows in memory (default), in a temporary SQLite file, or on the "
        "PostgreSQL database of URL (a schema per example); a database also checks that a new "
        "engine sees the same state",
    )
    group.addoption(
        "--bpf-seed", type=int, default=None, metavar="N",
        help="seed the checks, to reproduce a run",
    )
    group.addoption(
        "--bpf-no-coverage", action="store_true", default=False,
        help="do not fail a check that missed a stage, branch or outcome (it is still reported)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER)


#: The `CheckReport` of every check that passed, for the summary.
_REPORTS = pytest.StashKey[list[Any]]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    """One line per process checked: examples, stages, branches and outcomes reached, and
    the refusals by reason."""
    reports = config.stash.get(_REPORTS, [])
    if not reports:
        return
    terminalreporter.section("bpf process checks")
    for report in reports:
        refused = ", ".join(f"{reason} {n}" for reason, n in report.refusals.items())
        terminalreporter.write_line(f"{report}; refused: {refused or 'nothing'}")


def _process_files(config: pytest.Config) -> list[Path]:
    found: dict[Path, None] = {}
    for given in config.getoption("bpf_processes"):
        path = Path(given)
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
        if path.is_file():
            found[path.resolve()] = None
        elif path.is_dir():
            for pattern in _PATTERNS:
                for file in sorted(path.rglob(pattern)):
                    found[file.resolve()] = None
        else:
            raise pytest.UsageError(f"--bpf-processes {given}: no such file or folder")
    return sorted(found)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # Added first, so that -k, -m, --deselect and the like apply to these tests too.
    files = _process_files(config)
    if not files:
        return
    loaded = _Loaded(files)
    for path in files:
        node = ProcessFile.from_parent(session, path=path)
        node.loaded = loaded
        # genitems reports the collection as pytest's own does: counts, --collect-only.
        items.extend(session.genitems(node))


class _Loaded:
    """The definitions of the files given, each loaded once, with the error if it failed."""

    def __init__(self, files: list[Path]) -> None:
        self.files = files
        self._results: dict[Path, Any] | None = None

    def results(self) -> dict[Path, Any]:
        if self._results is None:
            from bpf import BpfError, load_process

            self._results = {}
            for file in self.files:
                try:
                    self._results[file] = load_process(file)
                except BpfError as exc:
                    self._results[file] = exc
        return self._results


class ProcessFile(pytest.File):
    """A process YAML given to ``--bpf-processes``."""

    loaded: _Loaded

    def collect(self) -> Iterator[pytest.Item]:
        item = ProcessItem.from_parent(self, name="check_process")
        item.add_marker("bpf_process")
        yield item


class ProcessItem(pytest.Item):
    """``check_process`` on one process YAML, with the other processes of its entity."""

    parent: ProcessFile

    def runtest(self) -> None:
        from bpf.testing._check import check_process

        results = self.parent.loaded.results()
        definition = results[self.path]
        if isinstance(definition, Exception):
            raise definition
        entity = definition.first_stage.entity
        others = [
            d for p, d in results.items()
            if p != self.path and not isinstance(d, Exception)
            and d.process != definition.process and d.first_stage.entity == entity
        ]
        option = self.config.getoption
        report = check_process(
            definition,
            others=others,
            max_examples=option("bpf_max_examples"),
            steps=option("bpf_steps"),
            store=option("bpf_store"),
            seed=option("bpf_seed"),
            require_coverage=not option("bpf_no_coverage"),
        )
        self.config.stash.setdefault(_REPORTS, []).append(report)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        from bpf import BpfError
        from bpf.testing._coverage import ProcessNotCovered
        from bpf.testing._failure import ProcessCheckFailed

        if isinstance(excinfo.value, (ProcessCheckFailed, ProcessNotCovered, BpfError)):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"check_process {self.path.name}"


@pytest.fixture
def bpf_engine() -> Any:
    """A fresh `bpf.Engine` with an in-memory store."""
    import bpf

    return bpf.Engine()


@pytest.fixture
def bpf_sqlite_engine(tmp_path: Path) -> Iterator[Any]:
    """A fresh `bpf.Engine` on a temporary SQLite file, closed after the test."""
    import bpf

    engine = bpf.Engine(f"sqlite:///{tmp_path / 'bpf.db'}")
    try:
        yield engine
    finally:
        engine.close()
