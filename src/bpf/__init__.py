"""bpf: declarative business process flows for Python.

Processes are YAML files (stages, steps, branches), loaded into frozen definitions; an `Engine`
runs flows of them on records, gates forward moves on required steps, keeps the pipeline phase
and the history, and persists flows in SQLite or PostgreSQL.
"""

from typing import TYPE_CHECKING, Any

from bpf._errors import (
    AccessDenied,
    BpfError,
    BpfWarning,
    Cancel,
    ConcurrencyError,
    DefinitionError,
    DefinitionWarning,
    EventsPrunedError,
    FlowError,
    FlowExistsError,
    FlowNotFoundError,
    HookError,
    PipelineFieldWarning,
    Problem,
    Reason,
    RecordError,
    RegistrationError,
    StageGateError,
    StoreError,
    TransitionError,
    UnknownProcessError,
    UnknownStageError,
)

if TYPE_CHECKING:
    from bpf._history import StageChange
    from bpf.definition.conditions import All, AnyOf, Compare, Condition, Not
    from bpf.definition.loader import load_process, loads_process
    from bpf.definition.model import Branch, Outcome, ProcessDefinition, Stage, Step
    from bpf.definition.standard import standard_process, standard_processes
    from bpf.runtime.aio import AsyncEngine
    from bpf.runtime.aio_flow import AsyncFlow
    from bpf.runtime.aio_outbox import AsyncConsumer
    from bpf.runtime.engine import Engine
    from bpf.runtime.flow import Actor, Flow, FlowEvent
    from bpf.store.base import Event

# The definitions and the engine are imported on first use: the pytest plugin
# (bpf.testing.plugin) is loaded in every pytest run of a project with bpf installed, and
# importing them (jsonschema, yaml, transitions, SQLAlchemy) would cost every run ~0.15 s.
_LAZY = {
    **dict.fromkeys(("All", "AnyOf", "Compare", "Condition", "Not"), "bpf.definition.conditions"),
    **dict.fromkeys(("load_process", "loads_process"), "bpf.definition.loader"),
    **dict.fromkeys(("Branch", "Outcome", "ProcessDefinition", "Stage", "Step"),
                    "bpf.definition.model"),
    **dict.fromkeys(("standard_process", "standard_processes"), "bpf.definition.standard"),
    "Engine": "bpf.runtime.engine",
    "AsyncEngine": "bpf.runtime.aio",
    "AsyncFlow": "bpf.runtime.aio_flow",
    "AsyncConsumer": "bpf.runtime.aio_outbox",
    **dict.fromkeys(("Actor", "Flow", "FlowEvent"), "bpf.runtime.flow"),
    "StageChange": "bpf._history",
    "Event": "bpf.store.base",
}
# Subpackages reachable as attributes after a plain ``import bpf``, as when it imported them.
_SUBMODULES = frozenset({"cli", "definition", "reports", "runtime", "store", "testing"})

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "Actor",
    "All",
    "AnyOf",
    "AsyncConsumer",
    "AsyncEngine",
    "AsyncFlow",
    "BpfError",
    "BpfWarning",
    "Branch",
    "Cancel",
    "Compare",
    "ConcurrencyError",
    "Condition",
    "DefinitionError",
    "DefinitionWarning",
    "Engine",
    "Event",
    "EventsPrunedError",
    "Flow",
    "FlowError",
    "FlowEvent",
    "FlowExistsError",
    "FlowNotFoundError",
    "HookError",
    "Not",
    "Outcome",
    "PipelineFieldWarning",
    "Problem",
    "ProcessDefinition",
    "Reason",
    "RecordError",
    "RegistrationError",
    "Stage",
    "StageChange",
    "StageGateError",
    "Step",
    "StoreError",
    "TransitionError",
    "UnknownProcessError",
    "UnknownStageError",
    "load_process",
    "loads_process",
    "standard_process",
    "standard_processes",
]


def _public(value: Any) -> Any:
    """``value``, shown as ``bpf.Name`` (reprs, tracebacks, pickles) when it is a class: as
    httpx does, users see the public face, not the private module that defines it."""
    if isinstance(value, type):
        value.__module__ = __name__
    return value


# Every module of bpf imports this package first, so the eagerly imported names are public
# before any of them can be raised or shown.
for _name in __all__:
    if _name not in _LAZY:
        _public(globals()[_name])
del _name


def __getattr__(name: str) -> Any:
    import importlib

    module = _LAZY.get(name)
    if module is not None:
        value = _public(getattr(importlib.import_module(module), name))
    elif name in _SUBMODULES:
        value = importlib.import_module(f"bpf.{name}")
    else:
        raise AttributeError(f"module 'bpf' has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
