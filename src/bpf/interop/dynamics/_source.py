"""Reading a Dynamics solution safely: XML without entities or DTDs, capped sizes, no zip bomb.

A source (a ``.xaml``, an unpacked solution folder, a solution ``.zip``) is seen as a `Tree`:
relative paths and a capped reader. From it come the workflows to convert (`Workflow`: the XAML,
and its process row when the solution has one) and the option-set labels (`OptionSets`).
Everything that goes wrong is a `bpf.DefinitionError` located ``file:line:col``.
"""

from __future__ import annotations

import os
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any
from xml.etree.ElementTree import Element, ParseError, TreeBuilder

import attrs
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from bpf._errors import DefinitionError, Problem

#: Largest XML file read (a XAML, a process row, an Entity.xml, a customizations.xml).
MAX_XML_BYTES = 32 * 1024 * 1024
#: Most bytes read out of one solution zip, all members together.
MAX_ZIP_BYTES = 128 * 1024 * 1024
#: Most members a solution zip may list.
MAX_ZIP_MEMBERS = 20_000
#: Most files of a solution folder looked at.
MAX_FOLDER_FILES = 50_000
#: A member this many times larger than its compressed size is refused, past 1 MiB.
MAX_RATIO = 100

_GUID = re.compile(r"[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?"
                   r"[0-9a-fA-F]{12}")


def fail(source: str, message: str, line: int = 1, column: int = 1) -> DefinitionError:
    """The one error of a source that cannot be converted."""
    return DefinitionError([Problem(source, line, column, message)])


def guid(text: str | None) -> str | None:
    """A GUID as the XAML and the process row both can be compared: lowercase, no braces."""
    if not text:
        return None
    match = _GUID.search(text)
    if match is None:
        return None
    bare = match.group().replace("-", "").lower()
    return f"{bare[:8]}-{bare[8:12]}-{bare[12:16]}-{bare[16:20]}-{bare[20:]}"


def local(tag: Any) -> str:
    """An element's or attribute's name without its namespace."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


# -- XML ----------------------------------------------------------------------------------------


class _LocatingParser(DefusedXMLParser):  # type: ignore[misc]
    """defusedxml's parser (no DTD, no entities, no external references) remembering lines."""

    def __init__(self) -> None:
        super().__init__(target=TreeBuilder(), forbid_dtd=True, forbid_entities=True,
                         forbid_external=True)
        self.lines: dict[int, int] = {}

    def _start(self, tag: str, attr_list: Any) -> Element:  # expat's StartElementHandler
        element: Element = super()._start(tag, attr_list)
        self.lines[id(element)] = self.parser.CurrentLineNumber
        return element


@attrs.frozen
class Xml:
    """A parsed XML file: its root, and the line each element starts on."""

    source: str
    root: Element
    lines: dict[int, int] = attrs.field(repr=False)

    def line(self, element: Element) -> int:
        return self.lines.get(id(element), 1)

    def fail(self, element: Element | None, message: str) -> DefinitionError:
        """An error located at ``element``."""
        return fail(self.source, message, self.line(element) if element is not None else 1)


def parse_xml(data: bytes, source: str) -> Xml:
    """Parse XML safely; a DTD, an entity, or malformed XML is a located `DefinitionError`."""
    if len(data) > MAX_XML_BYTES:
        raise fail(source, f"the file is larger than {MAX_XML_BYTES // (1024 * 1024)} MiB: "
                   "refused (no solution file is that large)")
    parser = _LocatingParser()
    try:
        parser.feed(data)
        root = parser.close()
    except DefusedXmlException as error:
        line = getattr(error, "lineno", None) or parser.parser.CurrentLineNumber
        raise fail(source, "the XML declares a DTD or entities, which a solution file never "
                   f"does: refused ({type(error).__name__})", line or 1) from None
    except ParseError as error:
        line, column = error.position
        reason = str(error).split(":", 1)[0]
        raise fail(source, f"malformed XML: {reason}", line, column + 1) from None
    return Xml(source, root, parser.lines)


# -- where the files come from ------------------------------------------------------------------


@attrs.frozen
class Tree:
    """The files of one source: relative POSIX paths, and a capped reader for each."""

    label: str
    paths: tuple[str, ...]
    reader: Callable[[str], bytes] = attrs.field(repr=False)
    #: The XAML files the source names explicitly (a ``.xaml`` argument): only these convert.
    chosen: tuple[str, ...] = ()

    def name(self, path: str) -> str:
        """How a file is named in messages."""
        if self.label.endswith("!"):  # a zip member: archive.zip!Workflows/Flow.xaml
            return self.label + path
        return os.path.join(self.label, *path.split("/")) if self.label else path

    def read(self, path: str) -> Xml:
        return parse_xml(self.reader(path), self.name(path))


def open_source(path: Path) -> Tree:
    """The tree of files a SOURCE argument names."""
    shown = str(path)
    if path.is_dir():
        return _folder_tree(path, shown)
    if not path.is_file():
        raise fail(shown, "no such file or directory")
    if zipfile.is_zipfile(path):
        return _zip_tree(path, shown)
    if path.name.lower().endswith(".xaml"):
        return _xaml_tree(path)
    raise fail(shown, "not a Dynamics business process flow: give a Workflows/*.xaml file, an "
               "unpacked solution folder or a solution .zip")


def _file_reader(root: Path) -> Callable[[str], bytes]:
    def read(relative: str) -> bytes:
        target = root.joinpath(*relative.split("/"))
        try:
            with target.open("rb") as file:
                return file.read(MAX_XML_BYTES + 1)
        except OSError as error:
            raise fail(str(target), f"cannot read the file: {error.strerror or error}") from None
    return read


def _xaml_tree(path: Path) -> Tree:
    # The process row is beside the XAML (.xaml.data.xml), or in the customizations.xml of the
    # solution the Workflows/ folder belongs to; the option sets are in that solution too.
    folder = path.parent
    root = folder.parent if folder.name.lower() == "workflows" else folder
    found: list[str] = []
    for entry in _listdir(root):
        if entry.lower().startswith("customizations") and entry.lower().endswith(".xml"):
            found.append(entry)
    for group, pattern in (("Entities", "*/Entity.xml"), ("OptionSets", "*.xml")):
        base = root / group
        if base.is_dir():
            found += sorted(p.relative_to(root).as_posix() for p in base.glob(pattern)
                            if p.is_file())
    relative = path.relative_to(root).as_posix()
    beside = path.with_name(path.name + ".data.xml")
    if beside.is_file():
        found.append(beside.relative_to(root).as_posix())
    label = "" if root == Path(".") else str(root)
    return Tree(label, (relative, *found), _file_reader(root), chosen=(relative,))


def _listdir(folder: Path) -> list[str]:
    try:
        return sorted(e.name for e in folder.iterdir() if e.is_file())
    except OSError:
        return []


def _folder_tree(root: Path, shown: str) -> Tree:
    paths: list[str] = []
    for current, dirs, files in os.walk(root):
        dirs.sort()
        for file in sorted(files):
            paths.append(Path(current, file).relative_to(root).as_posix())
            if len(paths) > MAX_FOLDER_FILES:
                raise fail(shown, f"the folder holds more than {MAX_FOLDER_FILES:,} files: "
                           "give the solution folder itself, or a .xaml file")
    return Tree(shown, tuple(p for p in paths if is_wanted(p)), _file_reader(root))


def _zip_tree(path: Path, shown: str) -> Tree:
    try:
        archive = zipfile.ZipFile(path)
        members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise fail(shown, f"not a readable zip file: {error}") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise fail(shown, f"the zip lists {len(members):,} files, more than a solution holds "
                   f"({MAX_ZIP_MEMBERS:,}): refused")
    infos = {m.filename.lstrip("/"): m for m in members if not m.is_dir()}
    budget = [MAX_ZIP_BYTES]

    def read(member: str) -> bytes:
        info = infos[member]
        where = f"{shown}!{member}"
        too_big = info.file_size > MAX_XML_BYTES
        bomb = info.file_size > 1024 * 1024 and \
            info.file_size > MAX_RATIO * max(info.compress_size, 1)
        if too_big or bomb or info.file_size > budget[0]:
            raise fail(where, f"expands from {info.compress_size:,} to {info.file_size:,} "
                       "bytes: refused as a zip bomb (a solution file is smaller and compresses "
                       "less)")
        try:
            with archive.open(info) as stream:
                # Read no more than allowed, whatever the header claims.
                data = stream.read(min(MAX_XML_BYTES, budget[0]) + 1)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as error:
            raise fail(where, f"cannot read this member of the zip: {error}") from None
        if len(data) > min(MAX_XML_BYTES, budget[0]):
            raise fail(where, "expands beyond what its header says: refused as a zip bomb")
        budget[0] -= len(data)
        return data

    return Tree(f"{shown}!", tuple(p for p in infos if is_wanted(p)),
                lambda member: read(member))


def is_wanted(path: str) -> bool:
    """The files of a solution that matter here: workflows, process rows, tables, option sets."""
    parts = PurePosixPath(path).parts
    name = parts[-1].lower()
    parent = parts[-2].lower() if len(parts) > 1 else ""
    if parent == "workflows" and (name.endswith(".xaml") or name.endswith(".xaml.data.xml")):
        return True
    if name.startswith("customizations") and name.endswith(".xml"):
        return True
    if name == "entity.xml" and len(parts) > 2 and parts[-3].lower() == "entities":
        return True
    return parent == "optionsets" and name.endswith(".xml")


# -- the process rows and the option sets ---------------------------------------------------------


def children(element: Element, name: str) -> Iterator[Element]:
    """The direct children called ``name`` (namespace ignored)."""
    return (c for c in element if local(c.tag) == name)


def child(element: Element, name: str) -> Element | None:
    return next(children(element, name), None)


def child_text(element: Element, name: str) -> str | None:
    found = child(element, name)
    return found.text.strip() if found is not None and found.text else None


@attrs.frozen
class Row:
    """A ``<Workflow>`` process row: what the XAML does not say about its process."""

    xml: Xml = attrs.field(repr=False)
    element: Element = attrs.field(repr=False)

    @property
    def id(self) -> str | None:
        return guid(self.element.get("WorkflowId"))

    @property
    def xaml_name(self) -> str:
        return PurePosixPath(child_text(self.element, "XamlFileName") or "").name.lower()

    def text(self, name: str) -> str | None:
        return child_text(self.element, name)

    def localized(self, group: str, item: str) -> dict[str, str]:
        """Texts per language code, e.g. ``localized("LocalizedNames", "LocalizedName")``."""
        found = child(self.element, group)
        if found is None:
            return {}
        return {str(e.get("languagecode")): e.get("description") or "" for e in
                children(found, item)}

    def labels(self) -> dict[str, dict[str, str]]:
        """The stage and step labels of the row: id → language code → text."""
        found = child(self.element, "labels")
        if found is None:
            return {}
        labels: dict[str, dict[str, str]] = {}
        for entry in children(found, "steplabels"):
            key = guid(entry.get("id"))
            if key:
                labels[key] = {str(e.get("languagecode")): e.get("description") or ""
                               for e in children(entry, "label")}
        return labels


def rows_in(xml: Xml) -> list[Row]:
    """The process rows of a .data.xml, a customizations.xml, or an excerpt of one."""
    if local(xml.root.tag) == "Workflow":
        return [Row(xml, xml.root)]
    return [Row(xml, e) for e in xml.root.iter() if local(e.tag) == "Workflow"
            and child(e, "XamlFileName") is not None]


#: Option-set labels: (table, column) → value → label, for one chosen language.
OptionSets = dict[tuple[str, str], dict[int, str]]


def option_sets_in(xml: Xml, global_sets: dict[str, dict[int, str]],
                   references: dict[tuple[str, str], str], found: OptionSets) -> None:
    """Collect the option sets of an Entity.xml, an OptionSets/*.xml or a customizations.xml.

    Local option sets go into ``found``; global ones into ``global_sets`` by name, and the
    columns that use one into ``references``, to be joined once every file is read.
    """
    for element in xml.root.iter():
        tag = local(element.tag)
        if tag == "optionset" and element.get("Name") and child(element, "options") is not None:
            if child_text(element, "IsGlobal") == "1" or local(xml.root.tag) in (
                    "optionset", "optionsets"):
                global_sets[element.get("Name", "").lower()] = _options(element)
        elif tag == "entity" and element.get("Name"):
            table = element.get("Name", "").lower()
            attributes = child(element, "attributes")
            for attribute in children(attributes, "attribute") if attributes is not None else ():
                column = (child_text(attribute, "LogicalName") or
                          attribute.get("PhysicalName", "")).lower()
                inline = child(attribute, "optionset")
                if inline is not None and child(inline, "options") is not None:
                    found[(table, column)] = _options(inline)
                elif child_text(attribute, "OptionSetName"):
                    references[(table, column)] = (child_text(attribute, "OptionSetName")
                                                   or "").lower()


def _options(optionset: Element) -> dict[int, str]:
    values: dict[int, str] = {}
    options = child(optionset, "options")
    for option in children(options, "option") if options is not None else ():
        try:
            value = int(option.get("value", ""))
        except ValueError:
            continue
        labels = child(option, "labels")
        texts = {e.get("languagecode"): e.get("description") or "" for e in
                 children(labels, "label")} if labels is not None else {}
        values[value] = texts.get("1033") or next(iter(texts.values()), "") or str(value)
    return values
