"""Dynamics 365 business process flows, converted into bpf processes.

`convert` reads a solution export (a ``Workflows/*.xaml``, an unpacked solution folder or a
solution ``.zip``) and gives one `Conversion` per business process flow in it: the bpf YAML,
the loaded definition, and the losses (what bpf could not represent). The XML is read with
defusedxml (no DTD, no entities), sizes are capped and a zip bomb is refused; every problem is a
`bpf.DefinitionError` located ``file:line:col``. See docs/dynamics.md.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path, PurePosixPath

import attrs

from bpf._errors import BpfError, DefinitionError, Problem
from bpf.definition.loader import loads_process
from bpf.definition.model import ProcessDefinition
from bpf.interop.dynamics._convert import slug, write
from bpf.interop.dynamics._flowdef import FlowDef
from bpf.interop.dynamics._source import (
    OptionSets,
    Row,
    Tree,
    Xml,
    fail,
    guid,
    open_source,
    option_sets_in,
    rows_in,
)
from bpf.interop.dynamics._xaml import read_flow

__all__ = ["Conversion", "convert"]

#: The workflow category of a business process flow (0 is a classic workflow, 3 an action...).
BPF_CATEGORY = "4"


@attrs.frozen
class Conversion:
    """One business process flow converted: its YAML, its definition and what it lost."""

    #: The Dynamics unique name (``bac_packagereviewprocess``), else a slug of the flow's name;
    #: the YAML is written as ``<process>.yaml``. The bpf process name is
    #: ``definition.process`` (the same, with ``-`` for ``_``: bpf names use dashes).
    process: str
    yaml: str
    definition: ProcessDefinition
    losses: list[str]
    #: The XAML the flow was read from.
    source: str

    @property
    def filename(self) -> str:
        """The name the YAML is written under."""
        return f"{self.process}.yaml"


def convert(path: str | os.PathLike[str]) -> list[Conversion]:
    """Convert every business process flow of ``path``: a BPF ``.xaml`` (its ``.xaml.data.xml``
    beside it is read when present), an unpacked solution folder, or a solution ``.zip``.

    Raises `bpf.DefinitionError`, located, when ``path`` is not a business process flow (or
    holds none), or is malformed or hostile.
    """
    source = os.fspath(path)
    try:
        return _Solution(open_source(Path(source))).convert()
    except BpfError:
        raise
    except Exception as error:  # a bug or a surprise: still bpf's error, the cause kept
        raise DefinitionError([Problem(source, 1, 1, "cannot convert: unexpected "
                                       f"{type(error).__name__}: {error}")]) from error


class _Solution:
    def __init__(self, tree: Tree) -> None:
        self.tree = tree
        self.parsed: dict[str, Xml] = {}

    def xml(self, path: str) -> Xml:
        if path not in self.parsed:
            self.parsed[path] = self.tree.read(path)
        return self.parsed[path]

    def rows(self) -> tuple[dict[str, Row], list[Row]]:
        """Process rows by the XAML path they sit beside, and all the others."""
        beside: dict[str, Row] = {}
        others: list[Row] = []
        for path in self.tree.paths:
            name = PurePosixPath(path).name.lower()
            if name.endswith(".xaml.data.xml"):
                found = rows_in(self.xml(path))
                if found:
                    beside[path[: -len(".data.xml")].lower()] = found[0]
            elif name.startswith("customizations"):
                others += rows_in(self.xml(path))
        return beside, others

    def option_sets(self) -> OptionSets:
        found: OptionSets = {}
        global_sets: dict[str, dict[int, str]] = {}
        references: dict[tuple[str, str], str] = {}
        for path in self.tree.paths:
            name = PurePosixPath(path).name.lower()
            if name.endswith(".xaml") or name.endswith(".data.xml"):
                continue
            option_sets_in(self.xml(path), global_sets, references, found)
        for column, name in references.items():
            if name in global_sets:
                found.setdefault(column, global_sets[name])
        return found

    def convert(self) -> list[Conversion]:
        tree = self.tree
        xamls = list(tree.chosen) or [p for p in tree.paths if p.lower().endswith(".xaml")]
        beside, others = self.rows()
        options: OptionSets | None = None
        conversions: list[Conversion] = []
        skipped = 0
        for path in xamls:
            explicit = bool(tree.chosen)
            xml = self.xml(path)
            flow_id = guid((xml.root.get("{http://schemas.microsoft.com/winfx/2006/xaml}Class")
                            or "").removeprefix("XrmWorkflow"))
            row = beside.get(path.lower()) or _matching(others, path, flow_id)
            category = row.text("Category") if row is not None else None
            if category not in (None, BPF_CATEGORY):
                if explicit:
                    raise row.xml.fail(row.element, "not a business process flow: its process "  # type: ignore[union-attr]
                                       f"row says category {category} "
                                       f"({_CATEGORIES.get(category or '', 'not 4')})")
                skipped += 1
                continue
            if not explicit and category is None and not _has_stages(xml):
                skipped += 1  # a workflow without a row and without stages: not a BPF
                continue
            flow = read_flow(xml, xml.fail)
            if options is None:
                options = self.option_sets()
            conversions.append(self.one(path, xml, flow, row, options))
        if not conversions:
            what = f" ({skipped} workflow{'s' if skipped != 1 else ''} of other kinds)" \
                if skipped else ""
            raise fail(tree.label.rstrip("!") or ".", "no business process flow here"
                       f"{what}: a BPF is a Workflows/*.xaml of category 4")
        names = [c.process for c in conversions]
        for name in names:
            if names.count(name) > 1:
                twice = [c.source for c in conversions if c.process == name]
                raise fail(twice[1], f"two business process flows are named {name!r} (also "
                           f"{twice[0]}): give them apart")
        return conversions

    def one(self, path: str, xml: Xml, flow: FlowDef, row: Row | None,
            options: OptionSets) -> Conversion:
        stem = re.sub(r"-[0-9A-Fa-f]{8}(-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}$", "",
                      PurePosixPath(path).name[: -len(".xaml")])
        if row is not None:
            name = (row.element.get("Name") or row.localized("LocalizedNames", "LocalizedName")
                    .get("1033") or stem)
            key = row.text("UniqueName") or slug(name, "_") or slug(stem, "_")
        else:
            name, key = stem, slug(stem, "_") or "dynamics_process"
        written = write(flow, row, options, key=key, name=name, source=self.tree.name(path))
        target = f"{key}.yaml"
        try:
            with warnings.catch_warnings():
                # Dynamics flows often branch on fields no step shows: not worth a warning here.
                warnings.filterwarnings("ignore", message=".*no step declares the field")
                definition = loads_process(written.yaml, source=target)
        except DefinitionError as error:
            raise DefinitionError([
                Problem(xml.source, 1, 1, f"converted, but bpf refuses the result ({target}:"
                        f"{p.line}): {p.message}") for p in error.problems
            ]) from None
        return Conversion(key, written.yaml, definition, list(written.losses),
                          self.tree.name(path))


_CATEGORIES = {"0": "a classic workflow", "1": "a dialog", "2": "a business rule",
               "3": "an action", "5": "a modern flow", "6": "a desktop flow"}


def _matching(rows: list[Row], path: str, flow_id: str | None) -> Row | None:
    name = PurePosixPath(path).name.lower()
    for row in rows:
        if row.xaml_name == name or (flow_id is not None and row.id == flow_id):
            return row
    return None


def _has_stages(xml: Xml) -> bool:
    return any("StageComposite" in (e.get("AssemblyQualifiedName") or "")
               for e in xml.root.iter())
