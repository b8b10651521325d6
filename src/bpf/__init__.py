"""bpf: declarative business process flows for Python.

Processes are YAML files (stages, steps, branches), loaded into frozen definitions; an `Engine`
runs flows of them on records, gates forward moves on required steps, keeps the pipeline phase
and the history, and persists flows in SQLite or PostgreSQL.
"""

from bpf._errors import (
    AccessDenied,
    BpfError,
    BpfWarning,
    Cancel,
    ConcurrencyError,
    DefinitionError,
    DefinitionWarning,
    FlowError,
    FlowExistsError,
    FlowNotFoundError,
    HookError,
    PipelineFieldWarning,
    Problem,
    RecordError,
    RegistrationError,
    StageGateError,
    StoreError,
    TransitionError,
    UnknownProcessError,
    UnknownStageError,
)
from bpf.definition.conditions import All, AnyOf, Compare, Condition, Not
from bpf.definition.loader import load_process, loads_process
from bpf.definition.model import Branch, Outcome, ProcessDefinition, Stage, Step
from bpf.definition.standard import standard_process, standard_processes
from bpf.runtime.engine import Engine
from bpf.runtime.flow import Actor, Flow, FlowEvent, StageChange

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "Actor",
    "All",
    "AnyOf",
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
