"""How users check that their processes behave: strategies, a stateful machine, one-call checks.

``bpf.testing`` needs Hypothesis (the ``test`` extra). It is imported lazily, so the pytest plugin
(`bpf.testing.plugin`, loaded in every pytest run) stays cheap and never needs it.

Where things are:

- ``_strategies``: records, actors and operations drawn from a definition;
- ``_world``: the oracle, what the definition says should happen (stages, refusals and why);
- ``_invariants``: the checks after every step, around a refusal and after a reopen;
- ``_driver``: applies one operation to real flows, checks it against the world, logs the step;
- ``_rules``: the Hypothesis rules that draw operations, and the invariant;
- ``_machine``: `FlowMachine`, the machine class for given definitions, and its settings;
- ``_engines``: the engine an example runs on (the user's factory, memory or a SQLite file);
- ``_failure``: the properties by name and `ProcessCheckFailed`, how a counterexample reads;
- ``_minimize``: cuts a failing run down by replaying variants of its operations;
- ``_expected``: `Refuses` and `Attempt`, the refusals a user's engine makes on purpose;
- ``_coverage``: what a run reached of a process, why it missed the rest, `ProcessNotCovered`;
- ``_check``: `check_process` and its `CheckReport`; ``plugin``: the pytest plugin.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bpf.testing._check import CheckReport, check_process
    from bpf.testing._coverage import ProcessNotCovered
    from bpf.testing._expected import Attempt, Refuses
    from bpf.testing._failure import PROPERTIES, ProcessCheckFailed
    from bpf.testing._machine import FlowMachine
    from bpf.testing._strategies import Operation, actors, operations, records

_LAZY = {
    "records": "bpf.testing._strategies",
    "actors": "bpf.testing._strategies",
    "operations": "bpf.testing._strategies",
    "Operation": "bpf.testing._strategies",
    "FlowMachine": "bpf.testing._machine",
    "ProcessCheckFailed": "bpf.testing._failure",
    "ProcessNotCovered": "bpf.testing._coverage",
    "Refuses": "bpf.testing._expected",
    "Attempt": "bpf.testing._expected",
    "PROPERTIES": "bpf.testing._failure",
    "check_process": "bpf.testing._check",
    "CheckReport": "bpf.testing._check",
}

__all__ = [
    "PROPERTIES",
    "Attempt",
    "CheckReport",
    "FlowMachine",
    "Operation",
    "ProcessCheckFailed",
    "ProcessNotCovered",
    "Refuses",
    "actors",
    "check_process",
    "operations",
    "records",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'bpf.testing' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
