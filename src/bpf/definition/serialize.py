"""A definition as data again: the canonical text and fingerprint a store keeps.

`to_data` gives the YAML mapping of a `ProcessDefinition` (every stage's entity and phase
resolved, `extends` already applied), which `bpf.loads_process` reads back into an equal
definition. `canonical_text` is that mapping as sorted, compact JSON (JSON is YAML), and
`fingerprint` its SHA-256: two definitions under one name and version are the same exactly
when their fingerprints are.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import attrs

from bpf.definition.model import ProcessDefinition, Stage, Step

# Attributes that are not keys of the YAML (or are written another way).
_SKIP = frozenset({"source", "extends", "reactivate_set", "stages", "outcomes", "next",
                   "steps"})


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, tuple | list | frozenset | set):
        return [_plain(v) for v in value]
    return value


def _fields(obj: Any, always: frozenset[str] = frozenset()) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for field in attrs.fields(type(obj)):
        name = field.name
        if name.startswith("_") or name in _SKIP or not field.init:
            continue
        value = getattr(obj, name)
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if name not in always and value == default:
            continue
        data[name] = _plain(value)
    return data


def _step(step: Step) -> dict[str, Any]:
    return _fields(step, frozenset({"field", "label"}))


def _stage(stage: Stage) -> dict[str, Any]:
    data = _fields(stage, frozenset({"id", "name", "entity", "phase"}))
    if stage.steps:
        data["steps"] = [_step(s) for s in stage.steps]
    if stage.next:
        data["next"] = [
            {"stage": b.stage, **({"when": b.when.to_data()} if b.when is not None else {})}
            for b in stage.next
        ]
    return data


def to_data(definition: ProcessDefinition) -> dict[str, Any]:
    """The definition as the YAML mapping that describes it."""
    data = _fields(definition, frozenset({"process", "name", "entity", "version"}))
    data["stages"] = [_stage(s) for s in definition.stages]
    if definition.outcomes:
        data["outcomes"] = {name: {"set": _plain(o.set)} for name, o in
                            definition.outcomes.items()}
    if definition.reactivate_set:
        data["reactivate"] = {"set": _plain(definition.reactivate_set)}
    return data


def canonical_text(definition: ProcessDefinition) -> str:
    """The definition as sorted, compact JSON: the same definition always gives the same
    text."""
    return json.dumps(to_data(definition), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)


def fingerprint(definition: ProcessDefinition) -> str:
    """SHA-256 of `canonical_text`, in hex."""
    return hashlib.sha256(canonical_text(definition).encode("utf-8")).hexdigest()
