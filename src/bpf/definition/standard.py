"""The processes shipped with bpf (``processes/*.yaml``, packaged as ``bpf.processes``)."""

from __future__ import annotations

import difflib
import functools

from bpf._errors import UnknownProcessError
from bpf.definition.loader import shipped_names, shipped_process
from bpf.definition.model import ProcessDefinition


def standard_process(name: str) -> ProcessDefinition:
    """The shipped process called ``name`` (e.g. ``"opportunity-sales"``), loaded once.

    Raises `bpf.UnknownProcessError`, naming the shipped processes, when there is none.
    """
    names = shipped_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1) if isinstance(name, str) else []
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownProcessError(
            f"no shipped process {name!r}{hint}; shipped processes: {', '.join(names)}"
        )
    return shipped_process(name)


@functools.cache
def standard_processes() -> tuple[ProcessDefinition, ...]:
    """Every shipped process, sorted by name."""
    return tuple(sorted((shipped_process(n) for n in shipped_names()), key=lambda d: d.process))
