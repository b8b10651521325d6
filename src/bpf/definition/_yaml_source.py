"""Where a YAML document comes from, and where each of its parts was written.

The text: read from a regular file within the size limit (`read_file`), decoded and checked
for binary content (`yaml_text`). The positions: 1-based ``(line, column)`` of every value and
key of a read `Document`, by its path, and the `Locator` that turns a path of a (possibly
merged) definition into a located `Problem`.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from bpf._errors import DefinitionError, Problem

#: Largest definition read, in bytes (or characters for text given directly).
MAX_BYTES = 1024 * 1024
Path = tuple[str | int, ...]
Position = tuple[int, int]

# Characters YAML does not allow in a stream (the C0 controls but tab and line breaks, DEL,
# C1 controls but NEL, surrogates, U+FFFE/FFFF): a file holding them is binary, not YAML text.
_NOT_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)

@attrs.frozen
class Document:
    """A YAML document read as plain values, with the position of every value and key."""

    data: Any
    values: Mapping[Path, Position]
    keys: Mapping[Path, Position]
    problems: tuple[Problem, ...] = ()


def yaml_text(text: str | bytes, source: str, what: str) -> str:
    """``text`` as the characters of a YAML stream: within the size limit, decoded from UTF-8
    (a byte-order mark dropped), holding no character YAML forbids; ``what`` the document is
    ("a process definition"), for the words of the problem. A `DefinitionError` otherwise."""
    if len(text) > MAX_BYTES:
        raise fatal(source, (1, 1), f"the file is larger than 1 MiB: {what} may "
                     f"be at most {MAX_BYTES:,} bytes")
    if isinstance(text, bytes):
        text = _decode(text, source)
    elif text.startswith("\ufeff"):
        text = text[1:]
    bad = _NOT_PRINTABLE.search(text)
    if bad:
        char = bad.group()
        what = "a NUL byte" if char == "\0" else f"the control character U+{ord(char):04X}"
        raise fatal(source, offset_position(text, bad.start()),
                     f"the file contains {what}: it is binary data, not YAML text")
    return text


def read_file(path: str | os.PathLike[str], source: str) -> bytes:
    """The bytes of the YAML file at ``path``, read with the size limit.

    Only a regular file is read: a device (``/dev/zero``), a pipe or a directory is refused
    before anything is read, so that reading can neither run forever nor block. At most
    ``MAX_BYTES + 1`` bytes are read, enough for `read_yaml` to refuse a larger file.
    """
    try:
        # O_NONBLOCK: opening a named pipe must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                     | getattr(os, "O_BINARY", 0))
    except OSError as error:
        raise fatal(source, (1, 1), f"cannot read the file: {error.strerror or error}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = ("a directory" if stat.S_ISDIR(mode) else
                "a named pipe" if stat.S_ISFIFO(mode) else
                "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else
                "a special file")
        # A directory is worded as open() words it.
        reason = "Is a directory" if kind == "a directory" else \
            f"it is {kind}, not a regular file"
        raise fatal(source, (1, 1), f"cannot read the file: {reason}")
    with os.fdopen(fd, "rb") as file:
        try:
            return file.read(MAX_BYTES + 1)
        except OSError as error:
            raise fatal(source, (1, 1),
                         f"cannot read the file: {error.strerror or error}") from None


def position_of_mark(mark: Any) -> Position:
    """The 1-based position of a PyYAML mark."""
    return (mark.line + 1, mark.column + 1)


# -- decoding ------------------------------------------------------------------------------------


def _decode(data: bytes, source: str) -> str:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    nul = data.find(b"\0")
    if nul >= 0:  # before decoding: a binary file is more often told by its NUL bytes
        raise fatal(source, byte_position(data, nul),
                     "the file contains a NUL byte: it is binary data, not YAML text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        byte = data[error.start]
        raise fatal(source, byte_position(data, error.start),
                     f"the file is not UTF-8 text: byte 0x{byte:02x} cannot be decoded "
                     "(is it a binary file?)") from None


def byte_position(data: bytes, offset: int) -> Position:
    line = data.count(b"\n", 0, offset) + 1
    start = data.rfind(b"\n", 0, offset) + 1
    return (line, len(data[start:offset].decode("utf-8", "replace")) + 1)


def offset_position(text: str, offset: int) -> Position:
    line = text.count("\n", 0, offset) + 1
    return (line, offset - (text.rfind("\n", 0, offset) + 1) + 1)


def fatal(source: str, pos: Position, message: str,
           problems: Iterable[Problem] = ()) -> DefinitionError:
    return DefinitionError([*problems, Problem(source, pos[0], pos[1], message)])



# -- locating problems ---------------------------------------------------------------------------


class Locator:
    """Where each part of a process definition was written, for its problems.

    A plain document locates a path where it was read. A merged (``extends``) definition maps
    its paths back to the extending document through ``origins`` (merged path prefix → path in
    the extending document); what was inherited untouched is located at the ``extends`` key,
    with a note naming the base.
    """

    def __init__(self, source: str, document: Document,
                 origins: Mapping[Path, Path] | None = None,
                 fallback: Position = (1, 1), note: str = "") -> None:
        self.source = source
        self.document = document
        self.origins = origins
        self.fallback = fallback
        self.note = note

    def _own_path(self, path: Path) -> Path | None:
        if self.origins is None:
            return path
        for n in range(len(path), -1, -1):
            prefix = path[:n]
            if prefix in self.origins:
                return self.origins[prefix] + path[n:]
        return None

    def position(self, path: Path, *, key: bool = False) -> tuple[Position, str]:
        """Where ``path`` (its key when ``key``) was written, and a note when inherited."""
        own = self._own_path(tuple(path))
        if own is None:
            return self.fallback, self.note
        if key and own in self.document.keys:
            return self.document.keys[own], ""
        values = self.document.values
        for n in range(len(own), -1, -1):
            if own[:n] in values:
                return values[own[:n]], ""
        return self.fallback, ""

    def problem(self, path: Path, message: str, *, key: bool = False) -> Problem:
        """A problem located at ``path``."""
        (line, column), note = self.position(path, key=key)
        return Problem(self.source, line, column, message + note)
