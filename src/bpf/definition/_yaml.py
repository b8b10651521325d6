"""Reading YAML safely, remembering where every key and value was written.

PyYAML's loaders build Python objects and forget the marks; they also keep the last of two equal
keys without a word and expand aliases without limit. bpf reads the *event* stream of a
`yaml.SafeLoader` subclass instead (libyaml's when available) and builds plain values itself:

- every value and every key gets its 1-based ``(line, column)``, keyed by its path in the data;
- only plain tags are accepted (text, numbers, booleans, null, dates, lists, mappings);
- duplicate keys, keys that are not text and unknown aliases are reported, not ignored;
- size, depth and node count are capped, so an alias bomb or a deeply nested file is refused
  quickly and in little memory.

Fatal problems raise `DefinitionError` here; the others are returned for the loader to report
together with the schema and semantic problems. Reading the file, the size limit, decoding and
the positions of a read `Document` are `bpf.definition._yaml_source`'s.
"""

from __future__ import annotations

from typing import Any

import attrs
import yaml

from bpf._errors import DefinitionError, Problem
from bpf.definition._yaml_source import (
    Document,
    Path,
    Position,
    fatal,
    offset_position,
    position_of_mark,
    yaml_text,
)

#: Most nodes a definition may hold once its aliases are expanded.
MAX_NODES = 100_000
#: Deepest nesting of lists and mappings (real process files need about 8).
MAX_DEPTH = 100

_TAG = "tag:yaml.org,2002:"
# The tags a process definition may use; everything else (python/*, set, omap, binary, custom
# tags...) is refused: a definition is data, and these would build objects or surprise types.
_SCALAR_TAGS = {_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_SEQUENCE_TAG = _TAG + "seq"
_MAPPING_TAG = _TAG + "map"
_MERGE_TAG = _TAG + "merge"
_KINDS = {
    _TAG + "int": "a whole number", _TAG + "float": "a number", _TAG + "bool": "true or false",
    _TAG + "null": "null", _TAG + "timestamp": "a date",
}
_VALUE_TAG = _TAG + "value"

_LoaderBase: type = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Loader(_LoaderBase):  # type: ignore[misc, valid-type]
    """The safe loader whose parser and resolver bpf uses; its constructors build scalars only."""


@attrs.frozen
class Kind:
    """What kind of document a YAML file holds, for the words of its problems."""

    #: "a process definition"
    name: str
    #: "a process file"
    file: str
    #: what the document is, for an empty file: "a mapping with at least ..."
    shape: str
    #: what to write instead of a merge key (``<<``)
    instead_of_merge: str


#: A process definition file (the default).
PROCESS = Kind(
    "a process definition", "a process file",
    "a mapping with at least `process`, `name`, `entity` and `stages`",
    "write the keys out, or use `extends` to build on another process",
)


def read_yaml(text: str | bytes, source: str, kind: Kind = PROCESS) -> Document:
    """Read one YAML document; raise `DefinitionError` when it cannot be read at all.

    ``kind`` says what the document is, for the words of its problems.
    """
    text = yaml_text(text, source, kind.name)
    problems: list[Problem] = []
    root = _Composer(text, source, problems, kind).compose()
    builder = _Builder(source, problems)
    data = builder.build(root, (), 0, None) if root is not None else None
    if root is not None:
        builder.values.setdefault((), root.pos)
    return Document(data, builder.values, builder.keys, tuple(problems))


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG):] if tag.startswith(_TAG) else tag


# -- composing: events into a light node graph ---------------------------------------------------


@attrs.define(slots=True)
class _Scalar:
    value: Any
    pos: Position
    text: str


@attrs.define(slots=True)
class _Sequence:
    items: list[Any]
    pos: Position


@attrs.define(slots=True)
class _Mapping:
    flat: list[Any]  # key, value, key, value...
    pos: Position


@attrs.define(slots=True)
class _Alias:
    target: Any
    pos: Position
    name: str


_Node = _Scalar | _Sequence | _Mapping | _Alias


class _Composer:
    """Turn the event stream into nodes without recursion, so nesting costs no Python stack."""

    def __init__(self, text: str, source: str, problems: list[Problem], kind: Kind) -> None:
        self.text = text
        self.source = source
        self.problems = problems
        self.kind = kind

    def problem(self, pos: Position, message: str) -> None:
        self.problems.append(Problem(self.source, pos[0], pos[1], message))

    def fatal(self, pos: Position, message: str) -> DefinitionError:
        return fatal(self.source, pos, message, self.problems)

    def compose(self) -> _Node | None:
        loader = _Loader(self.text)
        try:
            return self._compose(loader)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            pos = position_of_mark(mark) if mark is not None else (1, 1)
            message = f"invalid YAML: {error.problem or error.context or 'syntax error'}"
            if error.context and error.problem and error.context_mark is not None:
                line, column = position_of_mark(error.context_mark)
                message += f" ({error.context} at line {line}, column {column})"
            raise self.fatal(pos, message) from None
        except yaml.YAMLError as error:
            # Reader errors carry an offset, not a mark (libyaml's counts UTF-8 bytes).
            offset = getattr(error, "position", 0) or 0
            text_offset = len(self.text.encode("utf-8")[:offset].decode("utf-8", "ignore"))
            raise self.fatal(offset_position(self.text, text_offset),
                             f"invalid YAML: {error}") from None
        finally:
            loader.dispose()

    def _compose(self, loader: Any) -> _Node | None:
        anchors: dict[str, _Node] = {}
        open_anchors: set[str] = set()
        stack: list[tuple[_Sequence | _Mapping, str | None]] = []
        root: _Node | None = None
        documents = 0
        nodes = 0
        while True:
            event = loader.get_event()
            if isinstance(event, yaml.StreamEndEvent):
                break
            if isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise self.fatal(position_of_mark(event.start_mark),
                                     f"a second YAML document starts here: {self.kind.file} holds "
                                     "exactly one document (remove this '---' and what follows, "
                                     "or split the file)")
                continue
            if isinstance(event, (yaml.StreamStartEvent, yaml.DocumentEndEvent)):
                continue
            if isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
                closed, anchor = stack.pop()
                if anchor is not None:
                    open_anchors.discard(anchor)
                    anchors[anchor] = closed
                continue

            pos = position_of_mark(event.start_mark)
            nodes += 1
            if nodes > MAX_NODES:
                raise self.fatal(pos, f"the file holds more than {MAX_NODES} values: "
                                 f"too large for {self.kind.name}")
            node: _Node
            if isinstance(event, yaml.AliasEvent):
                node = self._alias(event.anchor, pos, anchors, open_anchors)
            elif isinstance(event, yaml.ScalarEvent):
                node = self._scalar(loader, event, pos)
            else:
                if len(stack) >= MAX_DEPTH:
                    raise self.fatal(pos, f"lists and mappings are nested more than {MAX_DEPTH} "
                                     f"levels deep: too deep for {self.kind.name}")
                is_sequence = isinstance(event, yaml.SequenceStartEvent)
                self._check_collection_tag(event.tag, _SEQUENCE_TAG if is_sequence else
                                           _MAPPING_TAG, pos)
                node = _Sequence([], pos) if is_sequence else _Mapping([], pos)

            if not stack:
                root = node
            else:
                parent = stack[-1][0]
                if isinstance(parent, _Sequence):
                    parent.items.append(node)
                else:
                    parent.flat.append(node)
            anchor = getattr(event, "anchor", None) if not isinstance(event, yaml.AliasEvent) \
                else None
            if isinstance(node, (_Sequence, _Mapping)):
                stack.append((node, anchor))
                if anchor is not None:
                    open_anchors.add(anchor)
            elif anchor is not None:
                anchors[anchor] = node
        if documents == 0:
            raise self.fatal((1, 1), f"the file is empty: {self.kind.name} is "
                             f"{self.kind.shape}")
        return root

    def _alias(self, name: str, pos: Position, anchors: dict[str, _Node],
               open_anchors: set[str]) -> _Node:
        if name in open_anchors:
            self.problem(pos, f"the alias *{name} refers to a list or mapping that contains "
                         "it: recursive structures are not allowed")
            return _Scalar(None, pos, "")
        if name not in anchors:
            self.problem(pos, f"unknown alias *{name}: no anchor &{name} is defined before it")
            return _Scalar(None, pos, "")
        return _Alias(anchors[name], pos, name)

    def _scalar(self, loader: Any, event: Any, pos: Position) -> _Scalar:
        tag = event.tag
        if tag is None or tag == "!":
            tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _VALUE_TAG:  # a plain "=": YAML 1.1's value key, text for everyone else
            tag = _TAG + "str"
        if tag == _MERGE_TAG:
            self.problem(pos, "merge keys (<<) are not supported: "
                         f"{self.kind.instead_of_merge}")
            return _Scalar(event.value, pos, event.value)
        if tag not in _SCALAR_TAGS:
            self.problem(pos, f"the tag {_short_tag(tag)} is not allowed: {self.kind.name} "
                         "holds plain values only (text, numbers, true/false, dates, lists, "
                         "mappings)")
            return _Scalar(event.value, pos, event.value)
        node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
        try:
            value = yaml.SafeLoader.yaml_constructors[tag](loader, node)
        except Exception:  # e.g. 2024-02-30, or an integer of 10,000 digits
            kind = _KINDS.get(tag, _short_tag(tag))
            self.problem(pos, f"cannot read {event.value!r} as {kind}; quote it to keep it as "
                         "text")
            value = event.value
        return _Scalar(value, pos, event.value)

    def _check_collection_tag(self, tag: str | None, plain: str, pos: Position) -> None:
        if tag is not None and tag not in ("!", plain):
            self.problem(pos, f"the tag {_short_tag(tag)} is not allowed: {self.kind.name} "
                         "holds plain values only (text, numbers, true/false, dates, lists, "
                         "mappings)")


# -- building plain values, located --------------------------------------------------------------


class _Builder:
    """Build plain values from nodes, expanding aliases within the node budget."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.values: dict[Path, Position] = {}
        self.keys: dict[Path, Position] = {}
        self.count = 0

    def problem(self, pos: Position, message: str) -> None:
        self.problems.append(Problem(self.source, pos[0], pos[1], message))

    def build(self, node: _Node, path: Path, depth: int, at: Position | None,
              via: _Alias | None = None) -> Any:
        """The plain value of ``node`` at ``path``; ``via`` is the alias being expanded, if any."""
        self.count += 1
        if self.count > MAX_NODES or depth > MAX_DEPTH:
            # Blame the outermost alias whose expansion went over the limit, where it is used.
            culprit = via or node
            name = f" (*{via.name})" if via else ""
            what = (f"expands to more than {MAX_NODES} values" if self.count > MAX_NODES
                    else f"nests more than {MAX_DEPTH} levels deep")
            raise fatal(self.source, at or culprit.pos,
                         f"the document {what} through its aliases{name}: refused",
                         self.problems)
        if isinstance(node, _Alias):
            # An alias is located where it is used; what it expands to, where it was written.
            return self.build(node.target, path, depth + 1, at or node.pos, via or node)
        self.values[path] = at or node.pos
        if isinstance(node, _Scalar):
            return node.value
        if isinstance(node, _Sequence):
            return [self.build(item, (*path, i), depth + 1, None, via)
                    for i, item in enumerate(node.items)]
        return self._mapping(node, path, depth, via)

    def _mapping(self, node: _Mapping, path: Path, depth: int,
                 via: _Alias | None) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_at: dict[str, Position] = {}
        flat = node.flat
        for i in range(0, len(flat) - 1, 2):
            key_node, value_node = flat[i], flat[i + 1]
            self.count += 1
            key = self._key(key_node)
            if key is None:
                continue
            key_pos = key_node.pos
            if key in first_at:
                line, column = first_at[key]
                self.problem(key_pos, f"duplicate key {key!r}: it is already set at line {line}, "
                             f"column {column} (YAML would silently keep only the last one)")
            else:
                first_at[key] = key_pos
            self.keys[(*path, key)] = key_pos
            result[key] = self.build(value_node, (*path, key), depth + 1, None, via)
        return result

    def _key(self, node: _Node) -> str | None:
        target = node
        while isinstance(target, _Alias):
            target = target.target
        if isinstance(target, _Scalar):
            if isinstance(target.value, str):
                return target.value
            if target.value is None and target.text == "":
                self.problem(node.pos, "a key is missing before ':'")
            else:
                self.problem(node.pos, f"the key {target.text!r} is read by YAML as "
                             f"{_describe_plain(target.value)}: keys must be text, quote it")
            return None
        kind = "a list" if isinstance(target, _Sequence) else "a mapping"
        self.problem(node.pos, f"a key must be text, not {kind}")
        return None


def _describe_plain(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return f"the {type(value).__name__} {value!r}"
