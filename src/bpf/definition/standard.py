"""The processes shipped with bpf (``processes/*.yaml``, packaged as ``bpf.processes``)."""

from __future__ import annotations

import functools

from bpf._errors import UnknownProcessError
from bpf.definition.loader import shipped_names, shipped_process
from bpf.definition.model import ProcessDefinition
from bpf.definition.schema import did_you_mean


def standard_process(name: str) -> ProcessDefinition:
    """The shipped process called ``name`` (e.g. ``"opportunity-sales"``), loaded once.

    Raises `bpf.UnknownProcessError`, naming the shipped processes, when there is none.
    """
    names = shipped_names()
    if name not in names:
        raise UnknownProcessError(
            f"no shipped process {name!r}{did_you_mean(name, names)}; shipped processes: "
            f"{', '.join(names)}"
        )
    return shipped_process(name)


@functools.cache
def standard_processes() -> tuple[ProcessDefinition, ...]:
    """Every shipped process, sorted by name."""
    return tuple(sorted((shipped_process(n) for n in shipped_names()), key=lambda d: d.process))
